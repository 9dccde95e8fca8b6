#!/usr/bin/env python3
"""Markdown table of one or more ``bench/run.py --results FILE`` files against the issue's targets.

    python bench/report.py scale0.1.json scale1.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

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


def verdict(name: str, value: str) -> str:
    op, bound = TARGETS.get(name, ("", 0.0))
    try:
        v = float(value)
    except ValueError:
        return "not measured"
    if not op:
        return "(no target)"
    ok = v >= bound if op == ">=" else v <= bound
    return "met" if ok else "**not met**"


def main() -> None:
    runs = [(Path(p).name, json.loads(Path(p).read_text())) for p in sys.argv[1:]]
    head = "| name | target | " + " | ".join(f"SCALE={r['scale']:g} ({name})" for name, r in runs) + " |"
    print(head)
    print("|" + "---|" * (2 + len(runs)))
    for name, (op, bound) in TARGETS.items():
        cells = []
        for _, r in runs:
            res = r["results"].get(name)
            cells.append(f"{res['value']} {verdict(name, res['value'])}" if res else "-")
        target = f"{'≥' if op == '>=' else '≤'} {bound:g}" if op else "-"
        print(f"| `{name}` | {target} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
