#!/usr/bin/env python3
"""Markdown table of one or more ``bench/run.py --results FILE`` files against the issue's targets.

    python bench/report.py scale0.1.json scale1.json

A ratio whose median mixes cold and warm rounds (either side's system times in two regimes:
``timing.two_regimes``, docs/performance.md, *Two memory regimes*) is not counted as meeting its
target: its cell says so, and gives the best time against the best, with the verdict on that.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # for ``timing``, when this module is imported rather than run
    sys.path.insert(0, str(HERE))

# name -> (comparison, bound): ratios must be at least the bound, _ms and _mb at most.
TARGETS: dict[str, tuple[str, float]] = {
    "ingest_large_vs_cp2": (">=", 0.7),
    "ingest_large_vs_ocflpy": (">=", 1.0),
    "ingest_small_vs_cp2": (">=", 0.8),
    "ingest_small_vs_ocflpy": (">=", 2.0),
    "audit_large_vs_openssl2": (">=", 0.8),
    "audit_small_vs_bagit": (">=", 1.5),
    "search_1m_ms": ("<=", 50.0),
    "help_ms": ("<=", 250.0),
    "ingest_4g_peak_mb": ("<=", 200.0),
    "ingest_fits_vs_cp2": ("", 0.0),  # extra: no target in the issue
}


def verdict(name: str, value: str | float) -> str:
    op, bound = TARGETS.get(name, ("", 0.0))
    try:
        v = float(value)
    except ValueError:
        return "not measured"
    if not op:
        return "(no target)"
    ok = v >= bound if op == ">=" else v <= bound
    return "met" if ok else "**not met**"


def cell(name: str, result: dict[str, Any]) -> str:
    """The value and its verdict; for a ratio measured over several rounds whose median mixes cold
    and warm memory on either side, "not counted" and the verdict on the best against the best."""
    from timing import two_regimes  # bench/ is on the path (above)

    value = result["value"]
    ours, ref = result.get("ours_s") or [], result.get("ref_s") or []
    mixed = any(two_regimes([system for _, system in result.get(side) or []])
                for side in ("ours_cpu_s", "ref_cpu_s"))
    if TARGETS.get(name, ("", 0.0))[0] == ">=" and mixed and min(len(ours), len(ref)) > 1:
        best = min(ref) / min(ours)
        return (f"{value} not counted (cold and warm rounds in one median); "
                f"best against best {best:.3g} {verdict(name, best)}")
    return f"{value} {verdict(name, value)}"


def _warm(run: dict[str, Any]) -> str:
    """", warm N GiB" for a run made with ``--warm N`` (memory touched before each timed command)."""
    warm = run.get("warm_gib") or 0
    return f", warm {warm:g} GiB" if warm else ""


def main() -> None:
    runs = [(Path(p).name, json.loads(Path(p).read_text())) for p in sys.argv[1:]]
    head = "| name | target | " + " | ".join(f"SCALE={r['scale']:g}{_warm(r)} ({name})" for name, r in runs) + " |"
    print(head)
    print("|" + "---|" * (2 + len(runs)))
    for name, (op, bound) in TARGETS.items():
        cells = []
        for _, r in runs:
            res = r["results"].get(name)
            cells.append(cell(name, res) if res else "-")
        target = f"{'≥' if op == '>=' else '≤'} {bound:g}" if op else "-"
        print(f"| `{name}` | {target} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
