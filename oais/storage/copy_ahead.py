"""The process that copies a delivery's staged files into a location ahead of time.

    python -m oais.storage.copy_ahead [--nice=N] FOLDER

Started by ``LocalStorage.prepare`` (see there) while the ingest describes the delivery, ``N`` steps
nicer than the ingest (``os.nice``; ``oais.storage.local.COPY_AHEAD_NICENESS``). ``FOLDER``
is a new folder in the location's staging area holding ``job.json``::

    {"files": [[source, relative path, sha256, size], ...], "adopt": bool, "check_links": bool, "fsync": bool}

For every file, in order, the process writes ``FOLDER/files/<relative path>`` (the relative paths
are the sources' own below their common folder, so the copies keep the delivery's folders): a hard
link to the source when ``adopt`` allows it (the same rule as ``stage``'s), else a copy made by the
kernel (``sendfile``). Meanwhile ``FOLDER/progress`` holds the bytes copied (or linked) so far, a
decimal number rewritten in place at most ten times a second and once at the end of the copying.
Every copy is re-read and checked against its sha256, on two threads:
- a copy of ``EARLY_CHECK`` bytes or more (a FITS image of 1 MiB included) is made on one of those
  threads, while the main thread goes on with the next files: it is re-read window by window as it
  is written, and each window, once on the disk, leaves the page cache (``fileio.copy_reread``), so
  that the copy takes no more memory than two windows (see there for what that saves on a virtual
  machine), and two copies are made at once;
- the others are copied by the main thread, then re-read once all are written (re-reading small
  files beside the copying would hold up its many system calls on the interpreter lock, see below);
- a link (``adopt``) is re-read on those threads as soon as it is made when it holds
  ``EARLY_CHECK`` bytes or more, else with the small copies; with ``"check_links": false`` (absent:
  true) it is not re-read at all (``oais.storage.base``: the caller says so only when another
  location's checked copy of the same file has read every byte of it, a hard link being that file).
Then, with ``fsync``, it flushes the location's file system.
It ends by writing ``result.json`` (under a temporary name, then renamed): ``{"ok": true, "count":
n, "unread_links": k}`` (``k`` links left to another location's check), or ``{"ok": false, "error":
"..."}`` naming the first file that failed (in the order of the files) and why; ``main`` adds
``"nice"``, the niceness the process ran at. Nothing else is written.

It is a process of its own, not a thread, because the ingest's main thread is busy in Python all
that time (identifying formats, building PREMIS): a thread of the same interpreter waits up to the
interpreter's switch interval (5 ms) each time it takes the interpreter lock back after a system
call, and copying 20,000 files makes about 100,000 of them. Measured: copying and re-reading the
20,000 small files of the benchmark took 1.84 s in a thread alone and 9.51 s in a thread beside a
busy main thread.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

VERIFY_THREADS = 2
# A copy this large is made and re-read on a verify thread; a link this large is re-read there. It was
# 8 MiB: the 2,000 FITS files of 1 MiB of the benchmark were then copied one at a time by the main
# thread, into fresh page-cache pages, and the ingest waited for that copy after describing them;
# at 512 KiB they are copied two at a time, each dropped from the page cache once on the disk: 12.40-16.13 s
# -> 10.29-11.60 s for the ingest, four alternating rounds (docs/performance.md). Smaller files stay
# with the main thread: a copy made on a thread waits for the disk before it is done, and dropping
# the small copies by batches did not make the 20,000-file ingest faster (docs/performance.md).
EARLY_CHECK = 512 << 10


def run(folder: Path) -> dict[str, object]:
    """Do the job in ``folder``; returns what goes into ``result.json``."""
    import hashlib

    from oais.formats.digest import read_digest
    from oais.formats.fileio import copy_data, copy_reread
    from oais.storage.local import _adopt, _sync_tree

    job = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    files: list[tuple[str, str, str, int]] = [tuple(f) for f in job["files"]]
    out = folder / "files"
    out.mkdir()
    made = {""}
    targets: list[Path] = []
    later: list[int] = []  # the small copies and links, re-read once all are written
    check_links = job.get("check_links", True)

    def check(i: int) -> str | None:
        source, _rel, expected, _size = files[i]
        try:
            found = read_digest(targets[i], "sha256")[1]
        except OSError as exc:
            return f"cannot re-read the copy of {source}: {exc.strerror or exc}"
        return None if found == expected else _mismatch(source, found, expected)

    def copy_check(i: int) -> str | None:
        source, _rel, expected, _size = files[i]
        h = hashlib.sha256()
        try:
            with (open(source, "rb", buffering=0) as src, open(targets[i], "xb", buffering=0) as dst,
                  open(targets[i], "rb", buffering=0) as back):
                copy_reread(src.fileno(), dst.fileno(), back.fileno(), h.update, copied)
        except OSError as exc:
            return f"cannot copy {source}: {exc.strerror or exc}"
        found = h.hexdigest()
        return None if found == expected else _mismatch(source, found, expected)

    with ThreadPoolExecutor(VERIFY_THREADS, thread_name_prefix="verify-ahead") as pool:
        early: dict[int, Future[str | None]] = {}  # copies and links of EARLY_CHECK bytes or more, beside the next ones
        with _Progress(folder / "progress") as copied:
            for i, (source, rel, _sha256, size) in enumerate(files):
                target = out / rel
                try:
                    parent = os.path.dirname(rel)
                    if parent not in made:
                        os.makedirs(out / parent, exist_ok=True)
                        made.add(parent)
                    linked = job["adopt"] and _adopt(Path(source), target)
                    if linked:
                        copied(size)
                    elif size >= EARLY_CHECK:
                        targets.append(target)
                        early[i] = pool.submit(copy_check, i)
                        continue
                    else:
                        with open(source, "rb", buffering=0) as src, open(target, "xb", buffering=0) as dst:
                            copy_data(src.fileno(), dst.fileno(), copied)
                except OSError as exc:
                    for future in early.values():
                        future.cancel()
                    return {"ok": False, "error": f"cannot copy {source}: {exc.strerror or exc}"}
                targets.append(target)
                if linked and not check_links:
                    continue
                if size >= EARLY_CHECK:
                    early[i] = pool.submit(check, i)
                else:
                    later.append(i)
            wait(early.values())  # copies still being made report their progress until then
        checked = dict(zip(later, pool.map(check, later)))
        for i in sorted([*early, *later]):  # the first failure in the order of the files
            problem = early[i].result() if i in early else checked[i]
            if problem is not None:
                return {"ok": False, "error": problem}
    if job["fsync"]:
        try:
            _sync_tree(out, targets)
        except OSError as exc:
            return {"ok": False, "error": f"cannot flush the copies to disk: {exc.strerror or exc}"}
    return {"ok": True, "count": len(files), "unread_links": len(files) - len(early) - len(later)}


def _mismatch(source: str, found: str, expected: str) -> str:
    """The failure of a copy (made or linked) whose re-read gives another sha256."""
    return f"the copy of {source} does not match after writing (sha256 {found[:16]}…, expected {expected[:16]}…)"


class _Progress:
    """Bytes copied so far, kept in a file the ingest reads while it waits (see the module docstring)."""

    EVERY = 0.1  # seconds between two rewrites

    def __init__(self, path: Path) -> None:
        self.lock = threading.Lock()  # the verify threads report the large copies' progress too
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.done = 0
        self.last = 0.0

    def __enter__(self) -> _Progress:
        return self

    def __call__(self, n: int) -> None:
        with self.lock:
            if self.fd < 0:
                return
            self.done += n
            now = time.monotonic()
            if now - self.last >= self.EVERY:
                self._write()
                self.last = now

    def _write(self) -> None:
        os.pwrite(self.fd, b"%20d" % self.done, 0)

    def __exit__(self, *_exc: object) -> None:
        with self.lock:
            try:
                self._write()
            finally:
                os.close(self.fd)
                self.fd = -1


def main(argv: list[str]) -> int:
    nice = 0
    if argv and argv[0].startswith("--nice="):
        nice_text, argv = argv[0].removeprefix("--nice="), argv[1:]
        nice = int(nice_text) if nice_text.isdigit() else -1
    if len(argv) != 1 or nice < 0:
        print("usage: python -m oais.storage.copy_ahead [--nice=N] FOLDER", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    reached = os.nice(nice)  # before any copying
    result = {**run(folder), "nice": reached}
    tmp = folder / "result.json.tmp"
    tmp.write_text(json.dumps(result), encoding="utf-8")
    os.rename(tmp, folder / "result.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
