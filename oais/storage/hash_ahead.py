"""Hashing a location's stored files ahead of an audit, in a process of its own.

    python -m oais.storage.hash_ahead ROOT [ROOT ...]

``oais audit`` of a whole location (or of every location) starts this process first, before it
imports the catalog's libraries and plans its work: those imports take 0.3-0.9 s of one core, while
the other core would be idle. The process walks each OCFL storage root (not following symlinked
folders, and leaving out names holding a newline) and hashes every regular file on two threads with
sha256 (:func:`oais.formats.digest.read_digest`, the audit's own reading), keeping the results in
memory. It never writes anywhere but its standard output.

Protocol (binary; paths as the file system gives them, ``os.fsencode``):

* the parent writes ``stop\\n``: the process takes no new file and writes one line
  ``= SIZE SHA256 PATH`` per file hashed, one line ``~ PATH`` per file being hashed, then ``.``; then
  one ``=`` line for each file being hashed as it ends (none for a file it could not read), then
  ``$``, and exits;
* ``all\\n``: the same once every file is hashed (no ``~`` line);
* the end of its standard input (the parent is gone): it exits at once.

A file that cannot be read is left out: the audit reads it itself and reports why. ``HashAhead`` is
the parent's side; the audit (``oais.services.audit``) uses a digest from it only for a unit whose
path it names exactly, and compares it with the catalog as it would its own.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # the process itself imports neither (it starts in about 0.05 s)
    import subprocess
    from concurrent.futures import Future

THREADS = 2
REPORT_TIMEOUT = 30.0  # seconds for the process to report once asked (it reports from memory)

Found = tuple[int, str]
"""``(size, sha256 hex)`` of a file."""


# -- the process ---------------------------------------------------------------------------------
def _walk(roots: Sequence[str]) -> Iterator[str]:
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                if "\n" not in name and "\n" not in folder:
                    yield os.path.join(folder, name)


class _Hasher:
    """The process's state: files hashed, files being hashed, and whether to take more."""

    def __init__(self, roots: Sequence[str]) -> None:
        self.paths = _walk(roots)
        self.lock = threading.Lock()
        self.done: dict[str, Found] = {}
        self.busy: set[str] = set()
        self.stopping = False
        self.finished: list[tuple[str, Found | None]] = []  # files ended after the stop
        self.changed = threading.Condition(self.lock)

    def _next(self) -> str | None:
        with self.lock:
            if self.stopping:
                return None
            path = next(self.paths, None)
            if path is not None:
                self.busy.add(path)
            return path

    def work(self) -> None:
        from oais.formats.digest import read_digest

        while (path := self._next()) is not None:
            found: Found | None
            try:
                found = read_digest(path, "sha256")
            except OSError:
                found = None
            with self.changed:
                self.busy.discard(path)
                if self.stopping:
                    self.finished.append((path, found))
                elif found is not None:
                    self.done[path] = found
                self.changed.notify_all()


def _line(kind: bytes, path: str, found: Found | None = None) -> bytes:
    head = kind if found is None else b"%s %d %s" % (kind, found[0], found[1].encode("ascii"))
    return head + b" " + os.fsencode(path) + b"\n"


def main(argv: Sequence[str]) -> int:
    hasher = _Hasher(list(argv))
    threads = [threading.Thread(target=hasher.work, daemon=True) for _ in range(THREADS)]
    for t in threads:
        t.start()
    command = sys.stdin.buffer.readline().strip()
    if command not in (b"stop", b"all"):
        os._exit(0)  # the parent is gone (or asked nothing we know): nothing to report
    if command == b"all":
        for t in threads:
            t.join()
    out = sys.stdout.buffer
    with hasher.changed:
        hasher.stopping = True
        busy = sorted(hasher.busy)
        for path, found in hasher.done.items():
            out.write(_line(b"=", path, found))
        for path in busy:
            out.write(_line(b"~", path))
    out.write(b".\n")
    out.flush()
    reported = 0
    while True:
        with hasher.changed:
            while reported == len(hasher.finished) and hasher.busy:
                hasher.changed.wait()
            ended, reported = hasher.finished[reported:], len(hasher.finished)
            last = not hasher.busy
        for path, ended_with in ended:
            if ended_with is not None:
                out.write(_line(b"=", path, ended_with))
        out.flush()
        if last:
            break
    out.write(b"$\n")
    out.flush()
    return 0


# -- the parent's side ---------------------------------------------------------------------------
class Digests:
    """What the process reported: ``done`` (path -> found) and ``pending`` (path -> a future of what
    it finds, None when it could not read the file or ended before reporting it)."""

    def __init__(self) -> None:
        self.done: dict[str, Found] = {}
        self.pending: dict[str, Future[Found | None]] = {}


class HashAhead:
    """The parent's side of the process (see the module docstring)."""

    def __init__(self, process: "subprocess.Popen[bytes]") -> None:
        self.process = process
        self._digests: Digests | None = None
        self._reader: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"HashAhead(pid {self.process.pid})"

    @classmethod
    def start(cls, roots: Sequence[str | os.PathLike[str]]) -> HashAhead | None:
        """Start hashing the files under ``roots``; None when no process can be started (no
        interpreter to run, as in some embedded ones, or no root): the audit then reads every file."""
        import subprocess

        if not sys.executable or not roots:
            return None
        try:
            process = subprocess.Popen([sys.executable, "-m", __name__, *(os.fspath(r) for r in roots)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError:
            return None
        return cls(process)

    def digests(self, *, finish: bool = False, timeout: float = REPORT_TIMEOUT) -> Digests:
        """Stop the hashing (with ``finish``: let it hash every file first) and return what it found;
        the files it was still hashing are ``pending``, resolved as it ends them. Called once; later
        calls return the same object. A process that has not reported within ``timeout`` seconds
        (without ``finish``) is ended: its digests then stop at what it reported, and the audit reads
        the rest itself."""
        if self._digests is not None:
            return self._digests
        digests = self._digests = Digests()
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(b"all\n" if finish else b"stop\n")
            stdin.flush()
        except OSError:  # the process is gone: nothing ahead
            return digests
        reported = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(stdout, digests, reported),
                                        name="hash-ahead", daemon=True)
        self._reader.start()
        if not reported.wait(None if finish else timeout):
            self.close()  # e.g. stuck reading a file system that does not answer
        return digests

    @staticmethod
    def _read(stdout: IO[bytes], digests: Digests, reported: threading.Event) -> None:
        """The process's report into ``digests`` (``reported`` set at its ``.`` line), then the files
        it was still hashing as it ends them; at the end of its output, every file it did not report
        is resolved to None."""
        from concurrent.futures import Future

        pending: dict[str, Future[Found | None]] = {}
        try:
            for line in iter(stdout.readline, b""):
                if not line.endswith(b"\n") or line == b"$\n":
                    break
                if line == b".\n":
                    reported.set()
                elif line.startswith(b"= "):
                    path, found = _parse_done(line)
                    if path is None:
                        continue
                    if not reported.is_set():
                        digests.done[path] = found
                    elif (future := pending.pop(path, None)) is not None:
                        future.set_result(found)
                elif line.startswith(b"~ ") and not reported.is_set():
                    pending[os.fsdecode(line[2:-1])] = digests.pending[os.fsdecode(line[2:-1])] = Future()
        except (OSError, ValueError):  # the pipe closed under the reader
            pass
        finally:
            for future in pending.values():  # never reported: the audit reads these itself
                future.set_result(None)
            reported.set()

    def close(self) -> None:
        """End the process if it still runs (it holds no file open for writing: nothing to clean)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self._reader is not None:  # it reads to the end of the output, which the end of the process closes
            self._reader.join()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


def _parse_done(line: bytes) -> tuple[str | None, Found]:
    """``(path, (size, sha256))`` from an ``=`` line; ``(None, ...)`` for a line that is not one."""
    parts = line[:-1].split(b" ", 3)
    if len(parts) != 4 or not parts[1].isdigit() or len(parts[2]) != 64:
        return None, (0, "")
    return os.fsdecode(parts[3]), (int(parts[1]), parts[2].decode("ascii"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
