"""Timing helpers: medians, alternating contenders, peak RSS of a child process.

Method (see docs/performance.md):

* every contender (ours or a reference) runs ``runs`` times, interleaved in the same process run:
  run 1 is ours, ref1, ref2; run 2 is ref1, ref2, ours; run 3 is ref2, ours, ref1; ... so that
  drift of the machine (other jobs, thermal, page-cache pressure) hits both sides alike;
* before every timed command: ``sync``, then a wait until the disk is quiet (both untimed; see
  :func:`quiet_disk`), so that neither dirty pages nor the discards of an earlier deletion are
  written back on the next command's clock. Page caches are NOT dropped (that needs root and
  ``/proc/sys/vm/drop_caches``, is not reliable on a shared or virtual machine, and would measure
  the disk rather than our code): inputs are generated just before and are read from page cache,
  by us and by the references alike;
* with ``warm`` (``bench/run.py --warm GIB``), right before every timed command: a child process
  writes into every page of that much memory and exits (untimed; :func:`touch_memory`), so that
  both sides meet the same memory regime (docs/performance.md, *Two memory regimes*);
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


PSI_IO = "/proc/pressure/io"
QUIET_SHARE = 0.02  # the disk is quiet when tasks waited on it less than 2 % of a sampling window ...
QUIET_WINDOW = 0.5  # ... of this many seconds
QUIET_MAX_WAIT = 45.0  # and a timed command starts after this long at most, quiet or not


def _io_stall_us() -> int | None:
    """Microseconds that some task has waited on I/O since boot (Linux pressure stall information)."""
    try:
        with open(PSI_IO, encoding="ascii") as f:
            first = f.readline().split()
    except OSError:
        return None
    fields = dict(part.split("=", 1) for part in first[1:] if "=" in part)
    return int(fields["total"]) if "total" in fields else None


def quiet_disk(max_wait: float = QUIET_MAX_WAIT) -> float:
    """Wait until no task waits on I/O for more than :data:`QUIET_SHARE` of a :data:`QUIET_WINDOW`
    window, at most ``max_wait`` seconds; returns the seconds waited.

    ``sync`` returns once the data are written, but this file system (mounted with online
    ``discard``) goes on sending discards for the files deleted before, for up to 20-30 s after
    gigabytes are removed; the command timed next would share the disk with them. Where pressure
    stall information is not available (not Linux, or an old kernel), nothing is waited for.
    """
    start = time.perf_counter()
    before = _io_stall_us()
    if before is None:
        return 0.0
    while time.perf_counter() - start < max_wait:
        time.sleep(QUIET_WINDOW)
        now = _io_stall_us()
        if now is None or now - before < QUIET_SHARE * QUIET_WINDOW * 1e6:
            break
        before = now
    return time.perf_counter() - start


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
    cpu: list[tuple[float, float]] = field(default_factory=list)  # (user, system) s of each run's processes

    @property
    def median(self) -> float:
        return median(self.seconds)


# Rounds whose system times differ by more than a second and this factor met memory in two regimes
# (page-cache pages faulted in from the host or not: docs/performance.md, *Two memory regimes*).
TWO_REGIMES_FACTOR = 2.5


def two_regimes(system: Sequence[float]) -> tuple[float, float] | None:
    """``(lowest, highest)`` of the rounds' system times ``system`` when they met memory in two
    regimes, so that their median mixes cold and warm rounds; None otherwise (or for one round)."""
    if len(system) < 2:
        return None
    lo, hi = min(system), max(system)
    return (lo, hi) if hi - lo > 1.0 and hi > TWO_REGIMES_FACTOR * lo else None


def children_cpu() -> tuple[float, float]:
    """User and system seconds of this process's children that have ended and been waited for (with
    their own waited-for descendants: ``getrusage(RUSAGE_CHILDREN)``), so far.

    Every timed command runs as such children, so the difference around a run is its CPU time. A
    system time far above a command's usual is the mark of new page-cache pages faulted in from the
    host on a virtual machine that gives free memory back (docs/performance.md, *Two memory regimes*).
    """
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime, usage.ru_stime


def read_tree(root: str | os.PathLike[str]) -> int:
    """Read every regular file under ``root`` once (untimed), so that a command timed next finds them in
    the page cache; returns the bytes read. Symbolic links are not followed."""
    total = 0
    buf = bytearray(1 << 20)
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb", buffering=0) as f:
                while n := f.readinto(buf):
                    total += n
    return total


def touch_memory(nbytes: int) -> float:
    """Write into every page of ``nbytes`` of memory in a child process, which then exits and frees
    them; returns the seconds it took.

    On a virtual machine whose host takes back the memory the guest frees (free page reporting), the
    command that next grows the page cache into such memory pays a fault in the host for every page
    (the cold regime); memory freed a moment ago is still backed (the warm regime). Touched right
    before each timed command, every round of either side meets the warm regime, instead of some
    rounds meeting one and some the other by chance (docs/performance.md, *Two memory regimes*).
    """
    code = "import sys; n = int(sys.argv[1]); b = bytearray(n); b[::4096] = b'\\x01' * len(range(0, n, 4096))"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-S", "-c", code, str(nbytes)], check=True)
    return time.perf_counter() - t0


def alternate(runs: int, contenders: Sequence[Contender], label: str = "", warm: int = 0) -> None:
    """Run every contender ``runs`` times, rotating their order each run; fills ``.seconds``. With
    ``warm`` (bytes), :func:`touch_memory` runs right before each timed command."""
    n = len(contenders)
    for i in range(runs):
        k = i % n
        for c in list(contenders[k:]) + list(contenders[:k]):
            ctx = c.prepare(i)
            os.sync()
            waited = quiet_disk()
            if waited > 2 * QUIET_WINDOW:
                log(f"{label} run {i + 1}/{runs}: waited {waited:.1f} s for the disk to go quiet before {c.name}")
            if warm:  # last, so that the memory it frees has no time to go back to the host
                touched = touch_memory(warm)
                log(f"{label} run {i + 1}/{runs}: {warm / (1 << 30):g} GiB of memory touched and freed in "
                    f"{touched:.1f} s before {c.name}")
            before = children_cpu()
            t0 = time.perf_counter()
            extra = c.timed(ctx)
            dt = time.perf_counter() - t0
            user, system = (a - b for a, b in zip(children_cpu(), before))
            c.seconds.append(dt)
            c.facts.append(extra or {})
            c.cpu.append((user, system))
            c.cleanup(ctx, i)
            log(f"{label} run {i + 1}/{runs}: {c.name} {dt:.2f} s (its processes' CPU: user {user:.2f} s, "
                f"system {system:.2f} s)")
