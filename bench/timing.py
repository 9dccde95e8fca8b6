"""Timing helpers: medians, alternating contenders, peak RSS of a child process.

Method (see docs/performance.md):

* every contender (ours or a reference) runs ``runs`` times, interleaved in the same process run:
  run 1 is ours, ref1, ref2; run 2 is ref1, ref2, ours; run 3 is ref2, ours, ref1; ... so that
  drift of the machine (other jobs, thermal, page-cache pressure) hits both sides alike;
* before every timed command: ``sync`` (untimed), so dirty pages left by the previous command are
  not written back on the next one's clock. Page caches are NOT dropped (that needs root and
  ``/proc/sys/vm/drop_caches``, is not reliable on a shared or virtual machine, and would measure
  the disk rather than our code): inputs are generated just before and are read from page cache,
  by us and by the references alike;
* the result is the median of the runs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def log(message: str) -> None:
    """Progress on stderr: never a ``bench:`` line."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class CommandFailed(RuntimeError):
    pass


def run(cmd: Sequence[str], *, capture: bool = True, env: dict[str, str] | None = None,
        timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; raise CommandFailed (with its stderr) unless it exits 0."""
    proc = subprocess.run(list(cmd), stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-5:]
        raise CommandFailed(f"{' '.join(cmd[:4])} ... exited {proc.returncode}: {' | '.join(tail)}")
    return proc


@dataclass
class ChildResult:
    seconds: float
    returncode: int
    max_rss_kib: int  # ru_maxrss of the child (and of its waited-for descendants), KiB on Linux
    stdout: str
    stderr: str


def run_measured(cmd: Sequence[str], env: dict[str, str] | None = None) -> ChildResult:
    """Run ``cmd`` as one child; wall time and peak RSS from ``os.wait4``.

    The child's output goes to temporary files (not pipes) so that waiting with ``wait4`` can
    never dead-lock on a full pipe.
    """
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, text=True)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
        out.seek(0)
        err.seek(0)
        return ChildResult(seconds, proc.returncode, int(usage.ru_maxrss), out.read(), err.read())


@dataclass
class Contender:
    """One side of a comparison. ``prepare(i)`` (untimed) returns a context for ``timed(ctx)``
    (the only timed part, which may return extra facts as a dict), then ``cleanup(ctx, i)``
    (untimed)."""

    name: str
    timed: Callable[[Any], dict[str, Any] | None]
    prepare: Callable[[int], Any] = lambda i: None
    cleanup: Callable[[Any, int], None] = lambda ctx, i: None
    seconds: list[float] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def median(self) -> float:
        return median(self.seconds)


def alternate(runs: int, contenders: Sequence[Contender], label: str = "") -> None:
    """Run every contender ``runs`` times, rotating their order each run; fills ``.seconds``."""
    n = len(contenders)
    for i in range(runs):
        k = i % n
        for c in list(contenders[k:]) + list(contenders[:k]):
            ctx = c.prepare(i)
            os.sync()
            t0 = time.perf_counter()
            extra = c.timed(ctx)
            dt = time.perf_counter() - t0
            c.seconds.append(dt)
            c.facts.append(extra or {})
            c.cleanup(ctx, i)
            log(f"{label} run {i + 1}/{runs}: {c.name} {dt:.2f} s")
