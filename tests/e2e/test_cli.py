"""The ``oais`` command as an archivist drives it: real processes, real files, real catalogs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, files_under, tree_snapshot


def oais(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("OAIS_HOME", "OAIS_CATALOG_URL")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "oais.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd or REPO, timeout=300)


def test_help_lists_the_commands() -> None:
    r = oais("--help")
    assert r.returncode == 0
    for cmd in ("init", "ingest", "aip", "db"):
        assert cmd in r.stdout
    assert oais().returncode == 2
    assert oais("ingest", "x").returncode == 2  # --dataset is required


def test_init_ingest_list_show(tmp_path: Path, fits_delivery: Path) -> None:
    home = tmp_path / "home"
    r = oais("init", "--home", str(home), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["config_created"] is True and [x["name"] for x in info["locations"]] == ["replica-a", "replica-b"]
    config = (home / "oais.toml").read_text()
    assert json.loads(oais("init", "--home", str(home), "--json").stdout)["config_created"] is False
    assert (home / "oais.toml").read_text() == config

    before = tree_snapshot(fits_delivery)
    r = oais("--home", str(home), "ingest", str(fits_delivery), "--dataset", "eit-195", "--producer", "EIT", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["disposition"] == "accepted" and result["aip_id"].startswith("urn:uuid:")
    assert tree_snapshot(fits_delivery) == before

    listed = json.loads(oais("aip", "list", "--home", str(home), "--json").stdout)
    assert [a["aip_id"] for a in listed] == [result["aip_id"]]
    r = oais("aip", "show", result["aip_id"], "--home", str(home), "--json")
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["aip_id"] == result["aip_id"] and shown["version"] == 1 and shown["dataset"] == "eit-195"
    assert {f["path"] for f in shown["files"]} >= {f"representations/original/data/{p}" for p in files_under(fits_delivery)}
    assert all({"path", "size", "sha256"} <= set(f) for f in shown["files"])
    assert sorted((x["location"], x["state"]) for x in shown["replicas"]) == [("replica-a", "ok"), ("replica-b", "ok")]
    assert all({"type", "outcome", "at"} <= set(e) for e in shown["events"]) and shown["events"]

    # human output names the AIP and its replicas; the bare UUID also finds it
    r = oais("aip", "show", result["aip_id"].removeprefix("urn:uuid:"), "--home", str(home))
    assert r.returncode == 0 and "replica-a" in r.stdout and result["aip_id"] in r.stdout
    r = oais("aip", "show", "urn:uuid:00000000-0000-0000-0000-000000000000", "--home", str(home))
    assert r.returncode == 1 and "no AIP" in r.stderr


def test_refused_delivery_exit_code_and_report(tmp_path: Path) -> None:
    home = tmp_path / "home"
    oais("init", "--home", str(home))
    empty = tmp_path / "empty"
    empty.mkdir()
    r = oais("ingest", str(empty), "--dataset", "d", "--home", str(home), "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["disposition"] == "refused" and out["issues"][0]["code"] == "SIP-E003"
    r = oais("ingest", str(empty), "--dataset", "d", "--home", str(home))
    assert r.returncode == 1 and "SIP-E003" in r.stderr and "Traceback" not in r.stderr


def test_unwritable_replica_refuses_and_leaves_nothing(tmp_path: Path, fits_delivery: Path) -> None:
    home = tmp_path / "home"
    oais("init", "--home", str(home))
    replica_b = home / "replica-b"
    import shutil

    shutil.rmtree(replica_b)
    replica_b.write_text("not a folder\n")  # a real failure: the location cannot be written
    r = oais("ingest", str(fits_delivery), "--dataset", "d", "--home", str(home), "--json")
    assert r.returncode == 1, r.stdout
    out = json.loads(r.stdout)
    assert out["disposition"] == "refused" and out["issues"][-1]["code"] == "STO-E001"
    assert list((home / "replica-a" / "ocfl").rglob("inventory.json")) == []
    assert list((home / "replica-a" / ".staging").iterdir()) == []
    assert json.loads(oais("aip", "list", "--home", str(home), "--json").stdout) == []


def test_configuration_errors_name_the_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    oais("init", "--home", str(home))
    cfg = home / "oais.toml"
    cfg.write_text(cfg.read_text().replace("copies_required = 2", "copies_required = 5"))
    r = oais("aip", "list", "--home", str(home))
    assert r.returncode == 2 and "storage.copies_required" in r.stderr and "Traceback" not in r.stderr
    r = oais("aip", "list", "--home", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "oais init" in r.stderr


def test_home_from_environment(tmp_path: Path) -> None:
    home = tmp_path / "envhome"
    env = {**os.environ, "OAIS_HOME": str(home)}
    r = subprocess.run([sys.executable, "-m", "oais.cli", "init"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert (home / "oais.toml").is_file() and (home / "catalog.sqlite").is_file()


@pytest.mark.postgres
def test_ingest_with_postgresql_catalog(tmp_path: Path, fits_delivery: Path, pg_url: str) -> None:
    from sqlalchemy import create_engine, text

    home = tmp_path / "home"
    env = {"OAIS_CATALOG_URL": pg_url}
    r = oais("init", "--home", str(home), "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["catalog"] == pg_url
    r = oais("ingest", str(fits_delivery), "--dataset", "eit-195", "--home", str(home), "--json", env=env)
    assert r.returncode == 0, r.stderr
    aip_id = json.loads(r.stdout)["aip_id"]
    shown = json.loads(oais("aip", "show", aip_id, "--home", str(home), "--json", env=env).stdout)
    assert len(shown["replicas"]) == 2
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT identifier FROM aips")).scalars().all() == [aip_id]
            n = conn.execute(text("SELECT count(*) FROM files f JOIN aip_versions v ON v.id = f.version_id")).scalar()
            assert n == len(shown["files"])
    finally:
        engine.dispose()
    assert not (home / "catalog.sqlite").exists()  # the environment's catalog was used, not the default


def test_SIP_E006_limits_from_the_configuration(tmp_path: Path) -> None:
    """[limits] in oais.toml reaches intake: a delivery over max_files is refused with SIP-E006."""
    home = tmp_path / "home"
    oais("init", "--home", str(home))
    cfg = home / "oais.toml"
    cfg.write_text(cfg.read_text().replace("max_files = 100000", "max_files = 3"))
    d = tmp_path / "many"
    d.mkdir()
    for i in range(5):
        (d / f"f{i}.txt").write_text(f"{i}\n")
    r = oais("ingest", str(d), "--dataset", "d", "--home", str(home), "--json")
    assert r.returncode == 1 and "SIP-E006" in {i["code"] for i in json.loads(r.stdout)["issues"]}
