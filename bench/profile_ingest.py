#!/usr/bin/env python3
"""Where does ``oais ingest`` (or ``oais audit``) spend its time? A profile of one run on a workload.

    python bench/profile_ingest.py [--workload small] [--scale 1] [--top 15] [--out FILE]
                                   [--command ingest|audit] [--py-spy PATH]

Generates the workload (``bench/workloads.py``), initialises a fresh archive home and profiles one
``oais ingest`` of it (with ``--command audit``: ingests it unprofiled, then profiles one
``oais audit --location replica-a``). Two profilers:

* default, cProfile (``python -m cProfile -o FILE -m oais.cli ...``): exact call counts, but its
  per-call overhead inflates code that makes millions of small calls (fido's signature loop) about
  2x, and it sees only the main thread (audit hashes in worker threads);
* ``--py-spy PATH`` (a py-spy binary, e.g. ``pip install --target /tmp/pyspy py-spy`` then
  ``--py-spy /tmp/pyspy/bin/py-spy``): sampling at 100 Hz with ``--idle``, so waits in fsync, reads
  and child processes count as the wall time they take; every thread. Prints the share of samples
  per function, by own time (leaf frame) and inclusive.

Prints the top functions by own time and by cumulative (inclusive) time.
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import workloads as wl  # bench/ is on sys.path: Python puts a script's folder there


def _print_collapsed(path: Path, top: int) -> None:
    """Top functions of py-spy's collapsed stacks (``frame;frame;... count``): own and inclusive share."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
    for title, table in (("own time (leaf frame)", own), ("inclusive time", incl)):
        print(f"\n## top {top} by {title}, share of {total} samples (all threads)\n")
        for frame, n in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            print(f"{100 * n / total:6.1f}%  {frame}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", choices=["small", "large", "fits"], default="small")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--out", type=Path, help="keep the profile here (default: a temporary file)")
    p.add_argument("--command", choices=["ingest", "audit"], default="ingest")
    p.add_argument("--py-spy", dest="py_spy", help="path of a py-spy binary: sample instead of cProfile")
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="oais-profile-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k not in ("OAIS_HOME", "OAIS_CATALOG_URL")}
    try:
        src = work / a.workload
        {"small": wl.make_small, "large": wl.make_large, "fits": wl.make_fits}[a.workload](src, a.scale)
        files, size = wl.tree_bytes(src)
        home = work / "home"
        subprocess.run([sys.executable, "-m", "oais.cli", "init", "--home", str(home)], check=True,
                       capture_output=True, env=env)
        ingest = ["ingest", str(src), "--dataset", "profile", "--home", str(home), "--json"]
        args = ingest
        if a.command == "audit":
            subprocess.run([sys.executable, "-m", "oais.cli", *ingest], check=True, capture_output=True, env=env)
            args = ["audit", "--location", "replica-a", "--home", str(home), "--json"]
        prof = a.out or work / ("ingest.txt" if a.py_spy else "ingest.prof")
        if a.py_spy:
            cmd = [a.py_spy, "record", "--idle", "--threads", "--nolineno", "-r", "100", "-f", "raw", "-o", str(prof),
                   "--", sys.executable, "-m", "oais.cli", *args]
        else:
            cmd = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "oais.cli", *args]
        os.sync()
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            print(r.stderr[-2000:], file=sys.stderr)
            return 1
        print(f"# oais {a.command} of the {a.workload} workload ({files} files, {size / 2**20:.1f} MiB) under "
              f"{'py-spy' if a.py_spy else 'cProfile'}: {wall:.1f} s wall")
        if a.py_spy:
            _print_collapsed(prof, a.top)
            if a.out:
                print(f"\nprofile kept in {a.out}")
            return 0
        for key in ("tottime", "cumulative"):
            buf = io.StringIO()
            stats = pstats.Stats(str(prof), stream=buf)
            stats.strip_dirs().sort_stats(key).print_stats(a.top)
            text = buf.getvalue()
            print(f"\n## top {a.top} by {key}\n")
            print(text[text.index("   ncalls"):].rstrip() if "   ncalls" in text else text)
        if a.out:
            print(f"\nprofile kept in {a.out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
