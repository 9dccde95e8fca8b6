"""Hashing a location's stored files ahead of an audit, in a process of its own.

    python -m oais.storage.hash_ahead ROOT [ROOT ...]

``oais audit`` of a whole location (or of every location) starts this process first, before it
imports the catalog's libraries and plans its work: those imports take 0.3-0.9 s of one core, while
the other core would be idle. The process walks each OCFL storage root (not following symlinked
folders, and leaving out names holding a newline) and hashes every regular file on two threads with
sha256, keeping the results in memory, each file read as the audit reads it
(:func:`oais.formats.digest.read_digest`). It never writes anywhere but its standard output.

Protocol (binary; paths as the file system gives them, ``os.fsencode``):

* the parent writes ``stop\\n``: the process takes no new file and writes one line
  ``= SIZE SHA256 PATH`` per file hashed, one line ``~ PATH`` per file being hashed, then ``.``; then
  one line for each file being hashed as it ends (``=`` as above, or ``! PATH`` when it could not
  read it), then ``$``, and exits;
* ``more\\n``: as ``stop``, but after its ``.`` line the process reads ``+ PATH`` lines up to a line
  ``end``, and hashes those files too (two threads, in that order), reporting each with an ``=`` or
  ``!`` line before the ``$``. The audit asks it for the large files (``Digests.more_from``) it has
  not reported yet, so that its own process does not hash beside its main thread. Small files it
  reads itself: passing them through the pipes costs more than reading them;
* ``all\\n``: as ``stop``, once every file is hashed (no ``~`` line);
* the end of its standard input (the parent is gone): it exits at once.

A file that cannot be read is not reported with a digest: the audit reads it itself and reports
why. ``HashAhead`` is the parent's side; the audit (``oais.services.audit``) uses a digest from it
only for a unit whose path it names exactly, and compares it with the catalog as it would its own.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence

from oais.formats.digest import read_digest

TYPE_CHECKING = False  # not ``typing``'s: the process imports only what it hashes with (see CHILD)
if TYPE_CHECKING:
    import subprocess
    from concurrent.futures import Future
    from typing import IO

THREADS = 2
REPORT_TIMEOUT = 30.0  # seconds for the process to report once asked (it reports from memory)
LARGE = 1 << 20  # files of this size or more: the audit asks this process for them (``Digests.more_from``)

# The process runs without the site module (``-S``: no site-packages, no .pth files), with the folder
# holding the ``oais`` package first on its path: it needs nothing else, and starts hashing about
# 25 ms sooner (Python starts in 8 ms instead of 24 here; this module and its one import add 10 ms).
# ``-P``: the current folder is not on its path, so a ``hashlib.py`` lying where the archivist runs
# the command is never imported.
CHILD = ("-S", "-P", "-c", "import sys; sys.path.insert(0, sys.argv[1]); from oais.storage.hash_ahead import main; "
         "sys.exit(main(sys.argv[2:]))", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

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


def _digest(path: str) -> Found:
    """``(size, sha256)`` of the regular file at ``path``, read as the audit reads it
    (:func:`oais.formats.digest.read_digest`: one reused buffer per thread).

    Large files were once hashed through a mapping of the file instead. On an AMD EPYC host that
    spared about a tenth of the CPU time of the copy into a buffer; on an Intel Xeon host of the same
    kind of machine, hashing the mapped pages took 30 % more time than copying them into the buffer,
    which stays in the CPU's cache (2 GiB on two threads: 0.93-0.99 s against 0.71-0.72 s). The
    buffer costs little where the mapping wins and saves much where it loses (docs/performance.md).

    Raises ``OSError`` when the file cannot be read or is not a regular file."""
    return read_digest(path, "sha256")  # which refuses a file that is not regular, by name


class _Hasher:
    """The process's state: files hashed, files being hashed, files asked for, and whether to take
    more of the walk."""

    def __init__(self, roots: Sequence[str]) -> None:
        self.paths = _walk(roots)
        self.lock = threading.Lock()
        self.done: dict[str, Found] = {}
        self.busy: set[str] = set()
        self.stopping = False
        self.asked: deque[str] = deque()  # after the stop, files the parent asked for (``more``)
        self.finished: list[tuple[str, Found | None]] = []  # files ended after the stop
        self.changed = threading.Condition(self.lock)

    def _next(self) -> str | None:
        with self.lock:
            if not self.stopping:
                path = next(self.paths, None)
            else:
                path = self.asked.popleft() if self.asked else None
            if path is not None:
                self.busy.add(path)
            return path

    def work(self) -> None:
        while (path := self._next()) is not None:
            found: Found | None
            try:
                found = _digest(path)
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
    stdin = sys.stdin.buffer
    command = stdin.readline().strip()
    if command not in (b"stop", b"all", b"more"):
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
    if command == b"more":
        asked = []
        while (line := stdin.readline()) != b"end\n":
            if not line.endswith(b"\n"):
                os._exit(0)  # the parent is gone
            if line.startswith(b"+ "):
                asked.append(os.fsdecode(line[2:-1]))
        with hasher.changed:
            hasher.asked.extend(asked)
        for _ in range(THREADS):  # those of the walk may have ended already
            threading.Thread(target=hasher.work, daemon=True).start()
    reported = 0
    while True:
        with hasher.changed:
            while reported == len(hasher.finished) and (hasher.busy or hasher.asked):
                hasher.changed.wait()
            ended, reported = hasher.finished[reported:], len(hasher.finished)
            last = not hasher.busy and not hasher.asked
        for path, ended_with in ended:
            out.write(_line(b"=", path, ended_with) if ended_with is not None else _line(b"!", path))
        out.flush()
        if last:
            break
    out.write(b"$\n")
    out.flush()
    return 0


# -- the parent's side ---------------------------------------------------------------------------
class Digests:
    """What the process reported: ``done`` (path -> found) and ``pending`` (path -> a future of what
    it finds, None when it could not read the file or ended before reporting it). ``more`` (when the
    process was stopped with ``more``): a function that asks it to hash further files, returning a
    future of each, as in ``pending``; call it once (the process then ends when they are hashed), for
    files of ``more_from`` bytes or more: a smaller file costs more to pass through the pipes than to
    read in the audit's own process."""

    def __init__(self) -> None:
        self.done: dict[str, Found] = {}
        self.pending: dict[str, Future[Found | None]] = {}
        self.more: Callable[[Sequence[str]], dict[str, Future[Found | None]]] | None = None
        self.more_from = LARGE


class HashAhead:
    """The parent's side of the process (see the module docstring)."""

    def __init__(self, process: "subprocess.Popen[bytes]") -> None:
        self.process = process
        self._digests: Digests | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._waiting: dict[str, Future[Found | None]] = {}  # reported after the ``.`` line
        self._ended = False  # the reader reached the end of the output

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
            process = subprocess.Popen([sys.executable, *CHILD, *(os.fspath(r) for r in roots)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError:
            return None
        return cls(process)

    def digests(self, *, finish: bool = False, more: bool = False, timeout: float = REPORT_TIMEOUT) -> Digests:
        """Stop the hashing (with ``finish``: let it hash every file first) and return what it found;
        the files it was still hashing are ``pending``, resolved as it ends them. With ``more``, the
        process then hashes the files named through ``Digests.more``. Called once; later calls
        return the same object. A process that has not reported within ``timeout`` seconds (without
        ``finish``) is ended: its digests then stop at what it reported, and the audit reads the rest
        itself."""
        if self._digests is not None:
            return self._digests
        digests = self._digests = Digests()
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(b"all\n" if finish else b"more\n" if more else b"stop\n")
            stdin.flush()
        except OSError:  # the process is gone: nothing ahead
            return digests
        reported = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(stdout, digests, reported),
                                        name="hash-ahead", daemon=True)
        self._reader.start()
        if not reported.wait(None if finish else timeout):
            self.close()  # e.g. stuck reading a file system that does not answer
        elif more and not finish:
            digests.more = self._ask
        return digests

    def _ask(self, paths: Sequence[str]) -> dict[str, Future[Found | None]]:
        """Ask the process to hash ``paths`` (after the files it was hashing); a future of each. A
        future resolves to None when the process could not read the file, or ended without saying."""
        from concurrent.futures import Future

        futures: dict[str, Future[Found | None]] = {}
        with self._lock:
            for path in paths:  # each known to the reader before the process can answer
                if path not in futures:
                    futures[path] = self._waiting.setdefault(path, Future())
            if self._ended:  # nothing more will be read from the process
                self._waiting = {}
                for future in futures.values():
                    if not future.done():
                        future.set_result(None)
                return futures
        lines = [b"+ " + os.fsencode(p) + b"\n" for p in futures if "\n" not in p]
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.writelines(lines)
            stdin.write(b"end\n")
            stdin.flush()
        except OSError:  # the process is gone: the reader resolves every future at the end of its output
            pass
        for path in futures:
            if "\n" in path:  # a name the protocol cannot carry: the audit reads it itself
                self._resolve(path, None)
        return futures

    def _resolve(self, path: str, found: Found | None) -> None:
        with self._lock:
            future = self._waiting.pop(path, None)
        if future is not None:
            future.set_result(found)

    def _read(self, stdout: IO[bytes], digests: Digests, reported: threading.Event) -> None:
        """The process's report into ``digests`` (``reported`` set at its ``.`` line), then the files
        it was still hashing, or was asked for, as it ends them; at the end of its output, every file
        it did not report is resolved to None."""
        from concurrent.futures import Future

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
                    else:
                        self._resolve(path, found)
                elif line.startswith(b"! ") and reported.is_set():
                    self._resolve(os.fsdecode(line[2:-1]), None)
                elif line.startswith(b"~ ") and not reported.is_set():
                    path = os.fsdecode(line[2:-1])
                    with self._lock:
                        self._waiting[path] = digests.pending[path] = Future()
        except (OSError, ValueError):  # the pipe closed under the reader
            pass
        finally:
            with self._lock:
                self._ended = True
                never, self._waiting = list(self._waiting.values()), {}
            for future in never:  # never reported: the audit reads these itself
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
