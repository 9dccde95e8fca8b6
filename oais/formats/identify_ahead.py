"""Format identification of a delivery's files in a process of its own, while the delivery is staged.

    python -m oais.formats.identify_ahead

``oais ingest`` starts this process while it stages a delivery of many files (``IdentifyAhead``: at
the 256th staged file). The process loads fido's PRONOM signatures (about half a second) and reads,
on its standard input, the paths of staged files, each ended by a NUL byte, as the staging threads
finish writing them (``IdentifyAhead.announce``).
It identifies each with :func:`oais.formats.identify.identify_many`, the function the ingest would
call itself, and writes one JSON line per file on its standard output: ``[PATH, FORMAT]``, ``FORMAT``
as :func:`format_to_json` gives it. At the end of its input it exits. It never writes anywhere else.

Why: staging copies and hashes on four threads that spend most of their time in the kernel, and
leaves about half a core idle; identifying 20,000 small files takes 3-6 s of one core in Python.
Measured on the 20,000-file benchmark: staging took 7.9-8.4 s alone and 8.4-9.1 s beside this
process, which had identified every file by the time staging ended.

What the ingest relies on: a path it was told about is identified exactly as in the ingest's own
process (same function, same signatures); a file that was not announced, or that the process could
not identify (unreadable, the process killed), is identified by the ingest itself
(``describe_delivery(identified=...)``), which reports any problem as it always did. Announcing never
waits: the pipe is enlarged, and a path that does not fit in it at once is simply not announced.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from oais.formats.identify import (FITS, GZIP, JSON_, PDF, PNG, TAR, TEXT, UNKNOWN, XML, ZIP, FormatId, fido_tool,
                                   identify_many)

PIPE_SIZE = 1 << 20  # the announcements' pipe: about 15,000 staged paths before the process reads any
_CONSTANTS = {c: c for c in (UNKNOWN, FITS, GZIP, ZIP, TAR, PDF, PNG, XML, JSON_, TEXT)}


def format_to_json(fmt: FormatId) -> dict[str, Any]:
    """``fmt`` as a JSON object (``format_from_json`` gives it back, equal)."""
    return {"puid": fmt.puid, "mime": fmt.mime, "name": fmt.name, "tool": fmt.tool,
            "inner": None if fmt.inner is None else format_to_json(fmt.inner),
            "alternatives": list(fmt.alternatives)}


def format_from_json(data: dict[str, Any]) -> FormatId:
    """The ``FormatId`` of ``format_to_json``; the module's constants (``FITS``...) come back as themselves."""
    fmt = FormatId(data["puid"], data["mime"], data["name"], data["tool"],
                   None if data["inner"] is None else format_from_json(data["inner"]),
                   tuple(data["alternatives"]))
    return _CONSTANTS.get(fmt, fmt)


class IdentifyAhead:
    """The ingest's side: tell the process of each staged file, collect what it found.

    The process is started by the :data:`START_AFTER`-th announcement, with the paths announced
    before it: a delivery of a few (large) files is identified by the ingest itself, as starting a
    Python process and loading the signatures would cost more CPU than they save (the ingest of the
    eight 256 MiB files, whose staging is bound by hashing on both cores, took 14.4 s instead of
    12.7 s, medians of four alternating runs, with the process started for every delivery)."""

    START_AFTER = 256

    def __init__(self, scratch: Path, start_after: int | None = None) -> None:
        """``scratch``: a folder (the staging area) for the process's output, a file without a name:
        a file, not a pipe, so the process never waits for the ingest; without a name, so nothing is
        left behind, whatever happens."""
        self._scratch = scratch
        self._start_after = self.START_AFTER if start_after is None else start_after
        self._lock = threading.Lock()  # announcements (staging threads) against starting and closing
        self._waiting: list[bytes] | None = []  # announced before the start; None once started or given up
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None
        self._fd: int | None = None  # the process's input, while it is open

    @property
    def pid(self) -> int | None:
        """The process's id once started."""
        return None if self._proc is None else self._proc.pid

    def announce(self, path: Path) -> None:
        """Tell the process that ``path`` is staged (safe from several threads). It is left out when
        the pipe is full or the process gone: the ingest then identifies that file itself."""
        data = os.fsencode(path) + b"\0"
        if b"\0" in data[:-1] or len(data) > select.PIPE_BUF:  # a write up to PIPE_BUF is never split
            return
        with self._lock:
            if self._waiting is not None:
                self._waiting.append(data)
                if len(self._waiting) < self._start_after:
                    return
                waiting, self._waiting = self._waiting, None
                if not self._start():
                    return
            else:
                waiting = [data]
            for item in waiting:
                if self._fd is None:
                    return
                try:
                    os.write(self._fd, item)  # all of it or, on a full pipe, nothing (BlockingIOError)
                except OSError:
                    pass

    def _start(self) -> bool:
        try:
            self._out = tempfile.TemporaryFile(dir=self._scratch)
            # -P: never a module of the current folder (it may be the delivery itself; see copy_ahead)
            self._proc = subprocess.Popen([sys.executable, "-P", "-m", __name__], stdin=subprocess.PIPE,
                                          stdout=self._out, stderr=subprocess.DEVNULL)
        except OSError:
            return False  # every file is identified by the ingest
        assert self._proc.stdin is not None
        self._fd = self._proc.stdin.fileno()
        os.set_blocking(self._fd, False)  # announcing never waits for the process (see announce)
        try:
            fcntl.fcntl(self._fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
        except OSError:
            pass  # the system's default pipe size: fewer paths fit before the process reads them
        return True

    def results(self) -> dict[Path, FormatId]:
        """Once every file is announced: the formats found, by path, after the process has ended
        (none if it never started)."""
        self._close_input()
        if self._proc is None or self._out is None:
            return {}
        if self._proc.wait() != 0:
            return {}  # killed or failed: what it wrote may be cut short; the ingest identifies every file
        self._out.seek(0)
        found: dict[Path, FormatId] = {}
        for line in self._out:
            try:
                path, fmt = json.loads(line)
                found[Path(path)] = format_from_json(fmt)
            except (ValueError, TypeError, KeyError):
                break  # not its output: what follows is identified by the ingest
        return found

    def close(self) -> None:
        """Stop the process if it still runs, and free what it used (always call it)."""
        self._close_input()
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
        if self._out is not None:
            self._out.close()

    def _close_input(self) -> None:
        with self._lock:
            self._waiting = None  # no start after this
            if self._fd is not None and self._proc is not None and self._proc.stdin is not None:
                self._fd = None
                self._proc.stdin.close()


def _paths(stream: IO[bytes]) -> Iterator[bytes]:
    """The NUL-ended paths read from ``stream``, as they come, up to its end."""
    pending = b""
    while chunk := os.read(stream.fileno(), 1 << 16):
        *done, pending = (pending + chunk).split(b"\0")
        yield from done


def main() -> int:
    fido_tool()  # load the signatures before the first path arrives
    out = sys.stdout
    for raw in _paths(sys.stdin.buffer):
        path = Path(os.fsdecode(raw))
        try:
            fmt = identify_many([path])[path]
        except Exception:  # noqa: BLE001 - the ingest identifies this file itself and reports the problem
            continue
        out.write(json.dumps([os.fsdecode(raw), format_to_json(fmt)]) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
