"""Staging a folder of many files in worker processes instead of threads.

    python -P -m sip.stage_workers DEST LIMIT SHARE WHICH SOURCE    (started by ``copy_in_processes``)

``sip.receive_folder`` stages a folder holding ``PROCESS_MIN_FILES`` regular files or more, of at
most ``PROCESS_MAX_MEAN`` bytes on average, in ``PROCESSES`` processes of their own. Its threads
hold the interpreter lock between the system calls of each file (open, fstat, read, the two digests,
write, utime, close: about ten per file), so on many small files they mostly hand the lock over to
each other. Staging the 20,000 small files of the benchmark (0.65 GiB) in-process, alternating:
5.0-6.0 s with 7.7-10.0 s of CPU on four threads, 3.6-4.6 s with 6.1-8.4 s of CPU in two processes
(``docs/performance.md``). On the 2,000 FITS files of about 1 MiB the two took the same time
(3.5-4.0 s), and larger files keep the threads, which hash one file while another waits for the disk.

Each worker stages whole batches (``receive_folder._batches``) with the threads' own code
(``receive_folder._copy_regular``): the same checks (the file must still be the regular file the scan
saw), the same issues, the same digests, no partial file left behind. The parent hands out the
batches in scan order, at most ``AHEAD`` per worker not yet answered, so a worker never waits for it;
it gathers each batch's issues and digests, and returns the issues in scan order, as the threads do.
When not even one worker can be started (``WorkersUnavailable``), nothing has been staged and the
threads stage the folder.

Protocol, one JSON array per line (the scan has refused any name that is not UTF-8, SIP-E004):

* parent to worker, one line per batch: ``[k, [[rel, source, st_dev, st_ino, st_size], ...]]``, the
  files as the scan saw them; the end of the input: no more batches, the worker exits;
* worker to parent, one line per batch: ``[k, [[rel, size, sha256, sha512], ...], [issue, ...]]``,
  each issue ``[code, severity, message, path]``; or ``["refused", issue]`` when the byte limit is
  passed, after which the worker stages nothing more and exits.

**The byte limit** (SIP-E006). The scan refuses a folder whose declared bytes pass the limit; a file
can still be larger when opened than when scanned (it grew meanwhile). The threads share one count
of the real bytes staged. Each worker counts its own: it may stage its files' scanned sizes plus
``SHARE`` bytes, where ``SHARE`` is the room the declared bytes leave under the limit divided between
the workers. The workers together never stage more than the limit; a delivery whose files grow by
more than one worker's share while they are staged is refused, with the message naming the limit in
force, even when the other worker's files did not grow.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from oais.domain.fixity import Fixity
from oais.domain.issues import Issue, IssueCode, Severity
from sip.receive_common import DeliveryRefused, _Budget

if TYPE_CHECKING:  # receive_folder imports this module
    from sip.receive_folder import _Planned

PROCESSES = 2
PROCESS_MIN_FILES = 512  # fewer files: the threads (starting a process costs about 0.1 s)
PROCESS_MAX_MEAN = 256 << 10  # larger files on average: the threads (see the module docstring)
AHEAD = 2  # batches handed to a worker and not yet answered


class WorkersUnavailable(OSError):
    """No worker process could be started; nothing was staged (the caller uses its threads)."""


class _Identity(NamedTuple):
    """The two fields of the scan's ``lstat`` that ``_copy_regular`` compares with the opened file
    (``receive_folder.FileIdentity``)."""

    st_dev: int
    st_ino: int


def use_processes(count: int, total_bytes: int) -> bool:
    """Whether a folder of ``count`` regular files holding ``total_bytes`` is staged in processes (on
    POSIX systems, which the parent's non-blocking pipes need; with a Python interpreter to start)."""
    return (os.name == "posix" and bool(sys.executable) and count >= PROCESS_MIN_FILES
            and total_bytes <= PROCESS_MAX_MEAN * count)


def _issue_row(issue: Issue) -> list[str | None]:
    return [issue.code.value, issue.severity.value, issue.message, issue.path]


def _issue(row: Sequence[Any]) -> Issue:
    code, severity, message, path = row
    return Issue(IssueCode(code), Severity(severity), message, path)


def worker_command(dest: Path, budget: _Budget, share: int) -> list[str]:
    """The command that starts one worker (``-P``: the current folder, perhaps the delivery itself,
    is never put on the module path)."""
    return [sys.executable, "-P", "-m", "sip.stage_workers", str(dest), str(budget.limit), str(share),
            budget.which, budget.source]


class _Worker:
    def __init__(self, command: list[str]) -> None:
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.stderr)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin: IO[bytes] | None = self.process.stdin
        self.stdout: IO[bytes] = self.process.stdout
        os.set_blocking(self.stdin.fileno(), False)
        os.set_blocking(self.stdout.fileno(), False)
        self.pending = bytearray()  # batches not yet written to its input
        self.waiting = 0  # batches handed to it and not answered
        self.received = bytearray()  # its output not yet read as whole lines

    def close_input(self) -> None:
        if self.stdin is not None:
            try:
                self.stdin.close()
            except OSError:  # BrokenPipeError: it exited; that is found when its output ends
                pass
            self.stdin = None
        self.pending.clear()

    def failure(self) -> str:
        self.stderr.seek(0)
        tail = self.stderr.read()[-600:].decode("utf-8", "replace").strip()
        return f"a staging process exited with status {self.process.returncode}" + (f": {tail}" if tail else "")


def copy_in_processes(dest: Path, batches: Sequence[Sequence[_Planned]], budget: _Budget, declared: int
                      ) -> list[Issue]:
    """Stage ``batches`` (files of the scan, their folders already made in ``dest``) in worker
    processes; the issues of the files that could not be staged, in scan order. The digests go to
    ``budget.digests`` and the bytes to ``budget.bytes``, as ``_copy_regular`` does. Raises
    ``DeliveryRefused`` when the byte limit is passed (after the workers have ended, so no partial file
    is left), ``RuntimeError`` when a worker fails (an internal error, not the delivery's), and
    ``WorkersUnavailable``, before anything is staged, when no worker process can be started."""
    slack = max(budget.limit - budget.bytes - declared, 0)
    count = min(PROCESSES, len(batches))
    share = slack // max(count, 1)
    workers: list[_Worker] = []
    try:
        for _ in range(count):
            try:
                workers.append(_Worker(worker_command(dest, budget, share)))
            except OSError as exc:  # no process to be had (limits, memory): the others, else none
                if not workers:
                    raise WorkersUnavailable(str(exc)) from exc
                break
        answers, refusal = _run(workers, batches)
    except BaseException:
        for w in workers:  # the parent itself failed (or was interrupted): stop the workers
            w.process.kill()
        raise
    finally:
        failures = []
        for w in workers:
            w.close_input()
            w.process.wait()
            w.stdout.close()
            if w.process.returncode != 0:
                failures.append(w.failure())
            w.stderr.close()
    if refusal is not None:
        raise DeliveryRefused([refusal])
    if failures or len(answers) != len(batches):
        raise RuntimeError(failures[0] if failures else
                           f"the staging processes answered {len(answers)} batches of {len(batches)}")
    issues: list[Issue] = []
    for k in range(len(batches)):
        done, found = answers[k]
        for rel, size, sha256, sha512 in done:
            budget.digests[dest.joinpath(*PurePosixPath(rel).parts)] = Fixity(size, sha256, sha512)
            budget.bytes += size
        issues.extend(_issue(row) for row in found)
    return issues


def _run(workers: list[_Worker], batches: Sequence[Sequence[_Planned]]
         ) -> tuple[dict[int, tuple[list[Any], list[Any]]], Issue | None]:
    """Hand the batches out and gather the answers until every worker's output has ended."""
    answers: dict[int, tuple[list[Any], list[Any]]] = {}
    refusal: Issue | None = None
    following = 0  # the next batch to hand out
    sel = selectors.DefaultSelector()

    def feed(w: _Worker) -> None:
        nonlocal following
        while w.stdin is not None and w.waiting < AHEAD and following < len(batches):
            files = [[rel.as_posix(), path, st.st_dev, st.st_ino, st.st_size] for rel, path, st in batches[following]]
            w.pending += json.dumps([following, files]).encode("utf-8") + b"\n"
            w.waiting += 1
            following += 1
        watch(w)

    def watch(w: _Worker) -> None:
        """Wait for its input to take more while batches are pending; close it after the last one."""
        if w.stdin is None:
            return
        if w.pending:
            _register(sel, w.stdin, w)
        elif following >= len(batches):
            stop_input(w)
        else:
            _unregister(sel, w.stdin)

    def stop_input(w: _Worker) -> None:
        if w.stdin is not None:
            _unregister(sel, w.stdin)
        w.close_input()

    for each in workers:
        sel.register(each.stdout, selectors.EVENT_READ, each)
        feed(each)
    open_outputs = len(workers)
    while open_outputs:
        for key, _events in sel.select():
            w: _Worker = key.data
            if key.events & selectors.EVENT_READ:
                chunk = os.read(w.stdout.fileno(), 1 << 16)
                if not chunk:
                    sel.unregister(w.stdout)
                    open_outputs -= 1
                    stop_input(w)
                    continue
                w.received += chunk
                *lines, rest = w.received.split(b"\n")
                w.received = bytearray(rest)
                for line in lines:
                    answer = json.loads(line)
                    if answer[0] == "refused":
                        refusal = refusal or _issue(answer[1])
                        following = len(batches)  # nothing more for anyone
                        for other in workers:
                            stop_input(other)
                        continue
                    answers[answer[0]] = (answer[1], answer[2])
                    w.waiting -= 1
                feed(w)
            elif w.stdin is not None:
                try:
                    written = os.write(w.stdin.fileno(), w.pending)
                except BlockingIOError:
                    continue
                except BrokenPipeError:  # it exited: found when its output ends
                    stop_input(w)
                    continue
                del w.pending[:written]
                watch(w)
    sel.close()
    return answers, refusal


def _register(sel: selectors.BaseSelector, stream: IO[bytes], w: _Worker) -> None:
    try:
        sel.get_key(stream)
    except KeyError:
        sel.register(stream, selectors.EVENT_WRITE, w)


def _unregister(sel: selectors.BaseSelector, stream: IO[bytes]) -> None:
    try:
        sel.unregister(stream)
    except KeyError:
        pass


# -- the worker ------------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    from sip.receive_common import _WriteFailed
    from sip.receive_folder import _copy_regular, _Unreadable

    dest, limit, share, which, source = argv
    dest_path = Path(dest)
    budget = _Budget(int(limit), which, source)
    budget.bytes = int(limit) - int(share)  # see "The byte limit" in the module docstring
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        k, files = json.loads(line)
        found: list[list[str | None]] = []
        staged: list[tuple[str, Path]] = []
        for rel, path, dev, ino, size in files:
            budget.bytes -= size
            target_rel = PurePosixPath(rel)
            try:
                _copy_regular(path, dest_path, target_rel, _Identity(dev, ino), budget)
            except (_WriteFailed, _Unreadable) as exc:
                found.append(_issue_row(exc.issue))
                continue
            except DeliveryRefused as exc:
                out.write(json.dumps(["refused", _issue_row(exc.issues[0])]).encode("utf-8") + b"\n")
                out.flush()
                return 0
            staged.append((rel, dest_path.joinpath(*target_rel.parts)))
        done = []
        for rel, target in staged:
            fx = budget.digests.pop(target)
            done.append([rel, fx.size, fx.sha256, fx.sha512])
        out.write(json.dumps([k, done, found]).encode("utf-8") + b"\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
