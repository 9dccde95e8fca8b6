"""bench/dip.py runs at a tiny scale and prints its lines (speed is measured there, never asserted here)."""

import subprocess
import sys

from tests.conftest import REPO


def test_bench_dip_runs_tiny() -> None:
    r = subprocess.run([sys.executable, str(REPO / "bench" / "dip.py"), "--scale", "0.02", "--runs", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "bench: dip_quicklook_files_per_s = " in r.stdout
    assert "bench: dip_quicklook_vs_astropy_plot = " in r.stdout
