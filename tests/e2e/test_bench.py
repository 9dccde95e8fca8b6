"""``bench/run.py`` runs end to end at a tiny scale and prints every result line.

Speed is never asserted here (values are machine-dependent; docs/performance.md records them): only
that every benchmark of the issue can be measured and is printed as ``bench: NAME = VALUE``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

EXPECTED = [
    "ingest_large_vs_cp2", "ingest_large_vs_ocflpy", "ingest_small_vs_cp2", "ingest_small_vs_ocflpy",
    "audit_large_vs_openssl2", "audit_small_vs_bagit", "search_1m_ms", "help_ms", "ingest_4g_peak_mb",
]
LINE = re.compile(r"^bench: (?P<name>[a-z0-9_]+) = (?P<value>\S+)  \(reference: .+\)$")


def test_bench_runs_at_a_tiny_scale(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OAIS_HOME", "OAIS_CATALOG_URL")}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--scale", "0.002", "--runs", "1",
                           "--workdir", str(tmp_path)], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    found = {}
    for line in proc.stdout.splitlines():
        m = LINE.match(line)
        if m:
            found[m["name"]] = m["value"]
    missing = [n for n in EXPECTED if n not in found]
    assert not missing, f"not printed: {missing}\n{proc.stdout}"
    for name, value in found.items():  # a number, or n/a when a feature is not there yet; never "failed"
        assert value == "n/a" or re.fullmatch(r"[0-9.e+-]+", value), (name, value)
    # the work folder is cleaned up
    assert not any(tmp_path.iterdir()), list(tmp_path.iterdir())
