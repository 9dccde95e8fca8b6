#!/usr/bin/env python3
"""oais-archive benchmarks: ``make bench [SCALE=x]``.

    python bench/run.py --scale X [--only NAME,...] [--runs N] [--workdir DIR] [--keep] [--results FILE]

Generates the workloads of ``bench/workloads.py`` (deterministic, scaled by X), times our commands
against references over the same files, alternating in the same run (``bench/timing.py``), and
prints one line per result::

    bench: NAME = VALUE  (reference: words)

A ratio is reference time / our time (above 1: we are faster); a name ending in ``_ms`` or ``_mb``
is a time in milliseconds or a size in MB (10^6 bytes). Progress goes to stderr; only the result
lines go to stdout. The exit status is 1 when a measurement could not be made (its line then reads
``= failed``). Speed is never asserted: see docs/performance.md for the figures and the targets.

Everything is written under the work folder (default: a new folder under /tmp, removed at the end
unless --keep). Free space is checked first; when it is short, the scale is reduced with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import workloads as wl  # bench/ is on sys.path: Python puts a script's folder there
from timing import (
    CommandFailed, Contender, alternate, log, median, read_tree, run, run_measured, two_regimes,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

GiB = 1 << 30

# name -> (phase, what it is compared with)
METRICS: dict[str, tuple[str, str]] = {
    "ingest_large_vs_cp2": ("large", "cp -r to two folders, then sync"),
    "ingest_large_vs_ocflpy": ("large", "ocfl-py 2.1 building one object (sha512), then sync"),
    "ingest_small_vs_cp2": ("small", "cp -r to two folders, then sync"),
    "ingest_small_vs_ocflpy": ("small", "ocfl-py 2.1 building one object (sha512), then sync"),
    "audit_large_vs_openssl2": ("large", "two openssl dgst -sha256 processes over the same stored files"),
    "audit_small_vs_bagit": ("small", "bagit.py --validate --processes 2 of a sha256 bag of the same files "
                                      "(sha256: the digest our audit verifies)"),
    "ingest_fits_vs_cp2": ("fits", "cp -r to two folders, then sync"),
    "search_1m_ms": ("search", "target <= 50 ms"),
    "help_ms": ("help", "target <= 250 ms"),
    "ingest_4g_peak_mb": ("one_big", "target <= 200 MB"),
}
REQUIRED = [n for n in METRICS if n != "ingest_fits_vs_cp2"]  # the list; fits is extra

# Disk needed per unit of SCALE, per phase (bytes): source + kept archive + the largest run.
DISK_PER_SCALE = {"large": 6 * 2 * GiB, "small": 7 * 0.7 * GiB, "fits": 4 * 2 * GiB,
                  "one_big": 4 * 4 * GiB, "search": 1.5 * GiB, "help": 0}
# ... and what each run of a phase writes, all contenders together (kept until the phase ends, when there is room)
DISK_KEPT_PER_RUN = {"large": 10 * GiB, "small": 3.5 * 0.7 * GiB, "fits": 8 * GiB}
DISK_MARGIN = 1 * GiB


@dataclass
class Bench:
    scale: float
    runs: int
    work: Path
    selected: set[str]
    env: dict[str, str]
    results: dict[str, Any] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    # Bytes of memory touched and freed before each timed ingest or copy (``--warm``). Not before the
    # audits, which read files already in the page cache and add no page to it: there, touching memory
    # only risks evicting the replica they read.
    warm: int = 0
    defer_removal: bool = True
    _trashed: int = 0

    @property
    def python(self) -> str:
        return sys.executable

    @property
    def oais(self) -> list[str]:
        script = Path(sys.executable).parent / "oais"
        return [str(script)] if script.exists() else [sys.executable, "-m", "oais.cli"]

    def wants(self, *names: str) -> bool:
        return any(n in self.selected for n in names)

    def emit(self, name: str, value: str, words: str, **raw: Any) -> None:
        if name not in self.selected:
            return
        print(f"bench: {name} = {value}  (reference: {words})", flush=True)
        self.results[name] = {"value": value, "reference": words, **raw}

    def fail(self, names: list[str], exc: BaseException) -> None:
        for name in names:
            if name in self.selected and name not in self.results:
                self.failed.append(name)
                print(f"bench: {name} = failed  (reference: {METRICS[name][1]}; error: {exc})", flush=True)
                self.results[name] = {"value": "failed", "error": str(exc)}

    def discard(self, path: Path) -> None:
        """Remove what a timed run wrote: moved aside now, deleted when the phase ends (:meth:`empty_trash`).

        Deleting gigabytes makes this file system (mounted with online ``discard``) send discards to
        the disk for many seconds, which slowed whichever run came next by up to half (``cp -r`` ×2 of
        the 20,000 files: 16-21 s on a quiet disk, 27-29 s right after a deletion). Kept until the
        end of the phase, nothing a run wrote is deleted while another run is timed. Without room
        for that (``defer_removal`` false), it is deleted at once."""
        if not path.exists():
            return
        if not self.defer_removal:
            shutil.rmtree(path, ignore_errors=True)
            return
        trash = self.work / "trash"
        trash.mkdir(exist_ok=True)
        self._trashed += 1
        path.rename(trash / str(self._trashed))

    def empty_trash(self) -> None:
        """Delete what the runs of a phase wrote, then wait for the disk to take it in (untimed)."""
        shutil.rmtree(self.work / "trash", ignore_errors=True)
        os.sync()

    def fresh_home(self, name: str) -> Path:
        home = self.work / "homes" / name
        if home.exists():
            shutil.rmtree(home)
        run([*self.oais, "init", "--home", str(home), "--json"], env=self.env)
        return home


def _gib(n: float) -> str:
    return f"{n / GiB:.2f} GiB" if n >= GiB / 10 else f"{n / (1 << 20):.1f} MiB"


def _ratio(ours: Contender, ref: Contender) -> str:
    return f"{ref.median / ours.median:.3g}"


def _times(ours: Contender, ref: Contender, b: Bench, what: str, warm: int = 0) -> str:
    """The words after a ratio: both medians; with several rounds, the best against the best too, and
    which side's rounds met memory in two regimes (its median then mixes cold and warm rounds); with
    ``warm``, that each command ran after that many bytes of memory were touched and freed."""
    words = f"{ref.name} {ref.median:.2f} s / ours {ours.median:.2f} s, median of {b.runs} alternating runs"
    if min(len(ours.seconds), len(ref.seconds)) > 1:
        words += f"; best against best {min(ref.seconds) / min(ours.seconds):.3g}"
        mixed = [m for m in (_two_regimes(ref), _two_regimes(ours)) if m]
        if mixed:
            words += f" ({'; '.join(mixed)}: cold and warm memory in one median)"
    if warm:
        words += f"; each command after {warm / GiB:g} GiB of memory touched and freed"
    return f"{words}; {what}"


def _two_regimes(side: Contender) -> str | None:
    """"NAME's system time LO-HI s" when ``side``'s rounds met memory in two regimes, else None."""
    regimes = two_regimes([s for _, s in side.cpu])
    return None if regimes is None else f"{side.name}'s system time {regimes[0]:.1f}-{regimes[1]:.1f} s"


# -- contenders -------------------------------------------------------------------------------
def ingest_contender(b: Bench, src: Path, kind: str, keep_last: bool, kept: dict[str, Any]) -> Contender:
    def prepare(i: int) -> Path:
        return b.fresh_home(f"{kind}-{i}")

    def timed(home: Path) -> dict[str, Any]:
        r = run_measured([*b.oais, "ingest", str(src), "--dataset", f"bench-{kind}", "--home", str(home), "--json"],
                         env=b.env)
        os.sync()
        if r.returncode != 0:
            raise CommandFailed(f"oais ingest {kind} exited {r.returncode}: "
                                f"{r.stderr.strip()[-500:]} {r.stdout[-300:]}")
        out = json.loads(r.stdout)
        if out.get("disposition") != "accepted":
            raise CommandFailed(f"oais ingest {kind}: {out.get('disposition')}: {out.get('issues', [])[:3]}")
        kept["replica_a"] = next(x["path"] for x in out["replicas"] if x["location"] == "replica-a")
        return {"rss_mb": r.max_rss_kib * 1024 / 1e6, "issues": len(out.get("issues", []))}

    def cleanup(home: Path, i: int) -> None:
        if keep_last and i == b.runs - 1:
            kept["home"] = home
        else:
            b.discard(home)

    return Contender("oais ingest", timed, prepare, cleanup)


def cp2_contender(b: Bench, src: Path) -> Contender:
    dest = b.work / "cp2"

    def prepare(i: int) -> Path:
        b.discard(dest)
        dest.mkdir(parents=True)
        return dest

    def timed(d: Path) -> None:
        run(["cp", "-r", str(src), str(d / "a")])
        run(["cp", "-r", str(src), str(d / "b")])
        run(["sync"])

    return Contender("cp -r x2 + sync", timed, prepare, lambda d, i: b.discard(d))


def ocflpy_contender(b: Bench, src: Path) -> Contender:
    parent = b.work / "ocflpy"

    def prepare(i: int) -> Path:
        b.discard(parent)
        parent.mkdir(parents=True)
        return parent / "object"

    def timed(objdir: Path) -> None:
        run([b.python, str(HERE / "ocflpy_create.py"), str(src), str(objdir)], env=b.env)
        run(["sync"])

    return Contender("ocfl-py create + sync", timed, prepare, lambda d, i: b.discard(parent))


def audit_contender(b: Bench, home: Path) -> Contender:
    def timed(_: Any) -> None:
        r = run([*b.oais, "audit", "--location", "replica-a", "--home", str(home), "--json"], env=b.env)
        if not json.loads(r.stdout).get("intact"):
            raise CommandFailed("oais audit: not intact")

    return Contender("oais audit", timed)


def openssl2_contender(object_dir: Path) -> Contender:
    files = sorted((p for p in object_dir.rglob("*") if p.is_file()), key=lambda p: -p.stat().st_size)
    groups: list[list[str]] = [[], []]
    sizes = [0, 0]
    for p in files:  # greedy: biggest first, into the lighter group
        k = 0 if sizes[0] <= sizes[1] else 1
        groups[k].append(str(p))
        sizes[k] += p.stat().st_size

    def timed(_: Any) -> None:
        procs = [subprocess.Popen(["openssl", "dgst", "-sha256", *g], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE) for g in groups if g]
        for p in procs:
            _out, err = p.communicate()
            if p.returncode != 0:
                raise CommandFailed(f"openssl dgst exited {p.returncode}: {err.decode(errors='replace')[-300:]}")

    return Contender("openssl dgst -sha256 x2", timed)


def bagit_contender(b: Bench, bag: Path) -> Contender:
    script = Path(sys.executable).parent / "bagit.py"

    def timed(_: Any) -> None:
        run([b.python, str(script), "--validate", "--processes", "2", "--quiet", str(bag)], env=b.env)

    return Contender("bagit.py --validate", timed)


# -- phases -----------------------------------------------------------------------------------
def phase_help(b: Bench) -> None:
    cmd = [*b.oais, "--help"]
    run(cmd, env=b.env)  # warm-up
    times = []
    for _ in range(max(5, b.runs)):
        t0 = time.perf_counter()
        run(cmd, env=b.env)
        times.append((time.perf_counter() - t0) * 1000)
    b.emit("help_ms", f"{median(times):.0f}",
           f"target <= 250 ms; wall time of 'oais --help', median of {len(times)} after one warm-up", times_ms=times)


def phase_ingest(b: Bench, kind: str) -> None:
    names = {"large": ["ingest_large_vs_cp2", "ingest_large_vs_ocflpy", "audit_large_vs_openssl2"],
             "small": ["ingest_small_vs_cp2", "ingest_small_vs_ocflpy", "audit_small_vs_bagit"],
             "fits": ["ingest_fits_vs_cp2"]}[kind]
    src = b.work / "src" / kind
    try:
        log(f"generating the {kind} workload (scale {b.scale:g})")
        t0 = time.perf_counter()
        {"large": wl.make_large, "small": wl.make_small, "fits": wl.make_fits}[kind](src, b.scale)
        nfiles, nbytes = wl.tree_bytes(src)
        what = f"{nfiles} files, {_gib(nbytes)}"
        log(f"{kind}: {what} generated in {time.perf_counter() - t0:.1f} s")
        audit_name = names[2] if len(names) > 2 else None
        want_audit = audit_name is not None and b.wants(audit_name)
        kept: dict[str, Any] = {}
        ours = ingest_contender(b, src, kind, keep_last=want_audit, kept=kept)
        refs = {}
        if b.wants(f"ingest_{kind}_vs_cp2"):
            refs[f"ingest_{kind}_vs_cp2"] = cp2_contender(b, src)
        if b.wants(f"ingest_{kind}_vs_ocflpy"):
            refs[f"ingest_{kind}_vs_ocflpy"] = ocflpy_contender(b, src)
        if refs:
            alternate(b.runs, [ours, *refs.values()], label=f"ingest {kind}", warm=b.warm)
            rss = median([f["rss_mb"] for f in ours.facts])
            for name, ref in refs.items():
                b.emit(name, _ratio(ours, ref), f"{METRICS[name][1]}; {_times(ours, ref, b, what, b.warm)}; "
                       f"ingest peak RSS {rss:.0f} MB", ours_s=ours.seconds, ref_s=ref.seconds, ours_rss_mb=rss,
                       ours_cpu_s=ours.cpu, ref_cpu_s=ref.cpu)
        elif want_audit:  # the audit needs one archive of the workload
            home = ours.prepare(b.runs - 1)
            ours.timed(home)
            ours.cleanup(home, b.runs - 1)
        if want_audit:
            home, object_dir = kept["home"], Path(kept["replica_a"])
            audit = audit_contender(b, home)
            if kind == "large":
                ref = openssl2_contender(object_dir)
            else:
                bag = b.work / "bag"
                shutil.copytree(src, bag)
                import bagit

                # sha256, the digest our audit verifies (stored_files.sha256): both sides hash the same
                bagit.make_bag(str(bag), checksums=["sha256"], processes=2)
                ref = bagit_contender(b, bag)
            # both sides' files read once, untimed: the ingest rounds after the kept one (and, with --warm,
            # the memory touched before them) may have pushed some of the replica out of the page cache
            read_tree(object_dir)
            if kind != "large":
                read_tree(b.work / "bag")
            alternate(b.runs, [audit, ref], label=f"audit {kind}")  # never --warm: see Bench.warm
            assert audit_name is not None  # want_audit implies it
            b.emit(audit_name, _ratio(audit, ref),
                   f"{METRICS[audit_name][1]}; {_times(audit, ref, b, what + ', one replica, page cache warm')}",
                   ours_s=audit.seconds, ref_s=ref.seconds, ours_cpu_s=audit.cpu, ref_cpu_s=ref.cpu)
    except Exception as exc:  # noqa: BLE001 - one failed phase must not hide the others
        log(traceback.format_exc())
        b.fail(names, exc)
    finally:
        for d in (src, b.work / "homes", b.work / "bag", b.work / "cp2", b.work / "ocflpy"):
            shutil.rmtree(d, ignore_errors=True)
        b.empty_trash()


def phase_one_big(b: Bench) -> None:
    src = b.work / "src" / "one_big"
    try:
        wl.make_one_big(src, b.scale)
        _n, nbytes = wl.tree_bytes(src)
        # Peak RSS is a property of the code path, reproducible to a few MB: several runs only when cheap.
        runs = b.runs if nbytes <= GiB else 1
        rss, secs = [], []
        for i in range(runs):
            home = b.fresh_home(f"one-big-{i}")
            os.sync()
            r = run_measured([*b.oais, "ingest", str(src), "--dataset", "bench-one-big", "--home", str(home),
                              "--json"], env=b.env)
            if r.returncode != 0 or json.loads(r.stdout).get("disposition") != "accepted":
                raise CommandFailed(f"oais ingest one big file exited {r.returncode}: {r.stderr[-300:]}")
            rss.append(r.max_rss_kib * 1024 / 1e6)
            secs.append(r.seconds)
            shutil.rmtree(home, ignore_errors=True)
            log(f"one big file run {i + 1}/{runs}: {r.seconds:.1f} s, peak RSS {rss[-1]:.0f} MB")
        b.emit("ingest_4g_peak_mb", f"{median(rss):.0f}",
               f"target <= 200 MB; peak RSS (ru_maxrss from os.wait4) of 'oais ingest' of one {_gib(nbytes)} file, "
               f"median of {runs}; the ingest took {median(secs):.1f} s", rss_mb=rss, seconds=secs)
    except Exception as exc:  # noqa: BLE001 - one failed phase must not hide the others
        log(traceback.format_exc())
        b.fail(["ingest_4g_peak_mb"], exc)
    finally:
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(b.work / "homes", ignore_errors=True)


def phase_search(b: Bench) -> None:
    try:
        n = max(1000, round(1_000_000 * b.scale))
        home = b.fresh_home("search")
        log(f"filling a catalog with {n} files")
        fill = json.loads(run([b.python, str(HERE / "catalog_fill.py"), "--home", str(home), "--files", str(n)],
                              env=b.env).stdout)
        log(f"catalog: {fill}")
        aip = fill["sample_aip"]
        probe = json.loads(run([b.python, str(HERE / "search_probe.py"), "--home", str(home), "--aip", aip,
                                "--runs", str(max(5, b.runs))], env=b.env).stdout)
        if not probe["available"]:
            b.emit("search_1m_ms", "n/a", "search not available")
            return

        def cli_ms(args: list[str]) -> float:
            run([*b.oais, *args, "--home", str(home), "--json"], env=b.env)  # warm-up
            ts = []
            for _ in range(max(3, b.runs)):
                t0 = time.perf_counter()
                run([*b.oais, *args, "--home", str(home), "--json"], env=b.env)
                ts.append((time.perf_counter() - t0) * 1000)
            return median(ts)

        has_cli_search = subprocess.run([*b.oais, "search", "--help"], capture_output=True, env=b.env).returncode == 0
        cli_search = cli_ms(["search", "--instrument", "EIT", "--wavelength", "195", "--limit", "10"]) \
            if has_cli_search else None
        cli_show = cli_ms(["aip", "show", aip])
        s_ms, a_ms = median(probe["search_ms"]), median(probe["show_ms"])
        cli = (f"CLI wall time incl. start-up: 'oais search --instrument EIT --wavelength 195 --limit 10' "
               f"{cli_search:.0f} ms" if cli_search is not None else "CLI 'oais search' not available")
        b.emit("search_1m_ms", f"{max(s_ms, a_ms):.1f}",
               f"target <= 50 ms; the slower of two in-process medians: search EIT/195 limit 10 {s_ms:.1f} ms "
               f"({probe['matches']} matches), aip show {a_ms:.1f} ms ({probe['shown_files']} files); "
               f"catalog of {fill['files']} files in {fill['aips']} AIPs; {cli}, 'oais aip show' {cli_show:.0f} ms",
               search_ms=probe["search_ms"], show_ms=probe["show_ms"], cli_search_ms=cli_search,
               cli_show_ms=cli_show, catalog=fill)
    except Exception as exc:  # noqa: BLE001 - one failed phase must not hide the others
        log(traceback.format_exc())
        b.fail(["search_1m_ms"], exc)
    finally:
        shutil.rmtree(b.work / "homes", ignore_errors=True)


PHASES: list[tuple[str, Callable[[Bench], None]]] = [
    ("help", phase_help),
    ("search", phase_search),
    ("large", lambda b: phase_ingest(b, "large")),
    ("small", lambda b: phase_ingest(b, "small")),
    ("fits", lambda b: phase_ingest(b, "fits")),
    ("one_big", phase_one_big),
]


def _disk_scale(b: Bench, phases: set[str]) -> float:
    per_scale = max(DISK_PER_SCALE[p] for p in phases) if phases else 0
    free = shutil.disk_usage(b.work).free
    need = per_scale * b.scale + DISK_MARGIN
    if need <= 0.8 * free:
        return b.scale
    new = max(0.001, (0.8 * free - DISK_MARGIN) / per_scale)
    log(f"note: {free / GiB:.1f} GiB free in {b.work}, SCALE={b.scale:g} needs about {need / GiB:.1f} GiB: "
        f"running at SCALE={new:.3g} instead")
    print(f"# note: scale reduced from {b.scale:g} to {new:.3g} for lack of disk space "
          f"({free / GiB:.1f} GiB free in {b.work})", flush=True)
    return new


WARM_SHARE = 0.6  # --warm may touch at most this share of the memory available when the run starts


def _available_memory() -> int | None:
    """Bytes of memory available now (``MemAvailable`` of ``/proc/meminfo``); None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="oais-archive benchmarks (see docs/performance.md)")
    p.add_argument("--scale", type=float, default=1.0, help="workload scale (1: the full sizes of the issue)")
    p.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(METRICS)}")
    p.add_argument("--runs", type=int, default=3, help="timed runs per contender (median reported; default 3)")
    p.add_argument("--workdir", type=Path, help="where to write (default: a new folder under /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--results", type=Path, help="also write every raw time as JSON to this file")
    p.add_argument("--warm", type=float, default=0.0, metavar="GIB",
                   help="touch and free this many GiB of memory right before each timed ingest or copy, so that "
                        "every round meets the warm memory regime (default 0: not done; see docs/performance.md)")
    a = p.parse_args(argv)
    selected = {x.strip() for x in a.only.split(",") if x.strip()} or set(METRICS)
    unknown = selected - set(METRICS)
    if unknown:
        p.error(f"unknown names: {', '.join(sorted(unknown))}")
    if a.scale <= 0 or a.runs < 1:
        p.error("--scale must be > 0 and --runs >= 1")
    if a.warm < 0:
        p.error("--warm must be >= 0")
    available = _available_memory()
    if available is not None and a.warm * GiB > WARM_SHARE * available:
        p.error(f"--warm {a.warm:g} is more than {WARM_SHARE:.0%} of the memory available now "
                f"({available / GiB:.1f} GiB): touching it would evict the inputs from the page cache")
    if a.workdir:
        a.workdir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="oais-bench-", dir=a.workdir))
    else:
        work = Path(tempfile.mkdtemp(prefix="oais-bench-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k not in ("OAIS_HOME", "OAIS_CATALOG_URL")}
    b = Bench(scale=a.scale, runs=a.runs, work=work, selected=selected, env=env, warm=int(a.warm * GiB))
    phases = {METRICS[n][0] for n in selected}
    b.scale = _disk_scale(b, phases)
    kept = max((DISK_KEPT_PER_RUN.get(p, 0) for p in phases), default=0) * b.runs * b.scale
    need = max((DISK_PER_SCALE[p] for p in phases), default=0) * b.scale + kept + DISK_MARGIN
    b.defer_removal = need <= 0.8 * shutil.disk_usage(work).free
    if not b.defer_removal:
        log("note: not enough free space to keep each phase's outputs until it ends: "
            "they are deleted after each run, which makes the next run noisier")
    t_start = time.perf_counter()
    warm = f", {a.warm:g} GiB of memory touched before each timed ingest or copy" if a.warm else ""
    log(f"scale {b.scale:g}, {b.runs} runs{warm}, work folder {work}, "
        f"metrics: {', '.join(n for n in METRICS if n in selected)}")
    try:
        for phase, fn in PHASES:
            if phase in phases:
                t0 = time.perf_counter()
                fn(b)
                log(f"phase {phase} took {time.perf_counter() - t0:.1f} s")
    finally:
        if a.keep:
            log(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - t_start
    log(f"done in {total:.1f} s")
    if a.results:
        a.results.write_text(json.dumps({"scale": b.scale, "runs": b.runs, "warm_gib": a.warm, "seconds": total,
                                         "results": b.results}, indent=2))
    return 1 if b.failed else 0


if __name__ == "__main__":
    sys.exit(main())
