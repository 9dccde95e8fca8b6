"""Time a search and an ``aip show`` inside one process (the catalog's cost, without start-up).

    python bench/search_probe.py --home HOME --aip ID [--runs N]

One untimed warm-up of each, then ``runs`` timed calls of each through the services the CLI uses:
``oais.services.search.search`` (instrument EIT, wavelength 195, limit 10, as
``oais search --instrument EIT --wavelength 195 --limit 10``) and
``oais.services.holdings.show_aip`` (as ``oais aip show ID``), each in its own session.
Prints one JSON object with the times in ms. Prints ``{"available": false}`` when the search
service does not exist.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--home", required=True, type=Path)
    p.add_argument("--aip", required=True)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    try:
        from oais.services import search as svc
    except ImportError:
        print(json.dumps({"available": False}))
        return
    from oais.bootstrap import open_archive
    from oais.config import load_settings
    from oais.services import holdings

    archive = open_archive(load_settings(a.home))
    criteria = svc.SearchCriteria(instrument="EIT", wavelength=195.0)
    search_ms: list[float] = []
    show_ms: list[float] = []
    count = shown = 0
    try:
        for i in range(a.runs + 1):
            t0 = time.perf_counter()
            with archive.sessions() as s:
                result = svc.search(s, criteria, user=None, groups=(), now=datetime.now(timezone.utc), limit=10)
            dt = (time.perf_counter() - t0) * 1000
            if i:
                search_ms.append(dt)
            count = result.count
            t0 = time.perf_counter()
            with archive.sessions() as s:
                data = holdings.show_aip(s, a.aip)
            dt = (time.perf_counter() - t0) * 1000
            if i:
                show_ms.append(dt)
            shown = len(data["files"])
    finally:
        archive.close()
    print(json.dumps({"available": True, "search_ms": search_ms, "show_ms": show_ms, "matches": count,
                      "shown_files": shown}))


if __name__ == "__main__":
    main()
