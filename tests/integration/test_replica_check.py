"""Replica checks beyond one damaged copy: three replicas damaged differently, no good copy left,
files that cannot be read, and the ``oais audit`` / ``oais replicas check`` / ``oais incidents`` commands.

Real FITS files, real replicas on disk, the real CLI in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from oais.bootstrap import init_archive, new_urn, open_archive
from oais.catalog import models as m
from oais.config import load_settings
from oais.services.audit import AuditResult, run_audit
from oais.services.incidents import list_incidents
from oais.services.ingest import IngestRequest, ingest
from oais.services.replicas import ReplicaReport, check_replicas
from tests.conftest import Tick, files_under, ocfl_py_errors, tree_snapshot
from tests.e2e.test_cli import oais

X = "v1/content/representations/original/data/test0.fits"
Y = "v1/content/representations/original/data/hst/checksum.fits"


def _ingest(archive: Any, delivery: Path) -> tuple[str, str]:
    result = ingest(IngestRequest(delivery, "eit-195"), archive.ingest_context())
    assert result.aip_id, result.issues
    with archive.sessions() as s:
        return result.aip_id, s.scalar(select(m.Aip.object_path).where(m.Aip.identifier == result.aip_id))


def _audit(archive: Any, clock: Tick, scope: str = "all") -> AuditResult:
    return run_audit(archive.engine, archive.location_map(), scope, clock=clock, new_id=new_urn)


def _check(archive: Any, clock: Tick, repair: bool) -> ReplicaReport:
    return check_replicas(archive.sessions, archive.location_map(), archive.required_locations(), repair=repair,
                          clock=clock, new_id=new_urn)


def _states(archive: Any) -> dict[str, str]:
    with archive.sessions() as s:
        return {r.location: r.state for r in s.scalars(select(m.Replica))}


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _assert_identical(a: Path, b: Path) -> None:
    assert files_under(a) == files_under(b)
    for rel in files_under(a):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_three_replicas_damaged_differently_each_repaired_from_a_healthy_copy(tmp_path: Path,
                                                                               fits_delivery: Path) -> None:
    home = tmp_path / "home3"
    init_archive(home)
    cfg = home / "oais.toml"
    cfg.write_text(cfg.read_text().replace("copies_required = 2", "copies_required = 3").replace(
        "[paths]", '[[storage.locations]]\nname = "replica-c"\nkind = "local"\npath = "replica-c"\n\n[paths]'))
    init_archive(home)  # completes the home: replica-c's storage root
    archive = open_archive(load_settings(home))
    try:
        clock = Tick()
        aip_id, object_path = _ingest(archive, fits_delivery)
        obj = {name: loc.object_dir(object_path) for name, loc in archive.location_map().items()}
        assert sorted(obj) == ["replica-a", "replica-b", "replica-c"] and archive.required_locations() == sorted(obj)
        healthy = {rel: (obj["replica-c"] / rel).read_bytes() for rel in files_under(obj["replica-c"])}
        _flip(obj["replica-a"] / X)  # X: flipped in a, truncated in b -> only c holds a good copy
        os.truncate(obj["replica-b"] / X, 1000)
        (obj["replica-b"] / Y).unlink()  # Y: gone from b only

        audit = _audit(archive, clock)
        assert sorted((f["location"], f["path"], f["outcome"]) for f in audit.failed) == sorted([
            ("replica-a", X, "fail"), ("replica-b", X, "fail"), ("replica-b", Y, "missing")])
        assert _states(archive) == {"replica-a": "corrupt", "replica-b": "corrupt", "replica-c": "ok"}

        report = _check(archive, clock, repair=True)
        assert report.intact and report.fixed == len(report.problems) == 3 and not report.unrepairable
        repaired = {r["location"]: r for r in report.repaired}
        assert sorted(repaired) == ["replica-a", "replica-b"]
        assert repaired["replica-a"]["restored"] == [X] and repaired["replica-a"]["sources"] == ["replica-c"]
        assert sorted(repaired["replica-b"]["restored"]) == sorted([X, Y])
        with archive.sessions() as s:
            recoveries = list(s.scalars(select(m.Event).where(m.Event.type == "rec").order_by(m.Event.seq)))
        by_location = {next(n for n in obj if repr(n) in e.detail): e for e in recoveries}
        assert sorted(by_location) == ["replica-a", "replica-b"]
        assert f"{X} <- replica-c" in by_location["replica-a"].outcome_detail
        assert "from replica-c" in by_location["replica-a"].detail
        # b is mended from a copy checked against the catalog just before: c, or a (mended a moment ago)
        assert "<- replica-b" not in " ".join(e.outcome_detail for e in recoveries)
        for name in obj:
            _assert_identical(obj[name], obj["replica-c"])
            assert ocfl_py_errors(obj[name])[0] == 0, name
        assert {rel: (obj["replica-c"] / rel).read_bytes() for rel in files_under(obj["replica-c"])} == healthy
        fresh = _audit(archive, clock)
        assert fresh.intact and fresh.files == 3 * len(healthy)
        assert set(_states(archive).values()) == {"ok"}
        with archive.sessions() as s:
            assert {i["state"] for i in list_incidents(s) if i["aip_id"] == aip_id} == {"closed"}
    finally:
        archive.close()


def test_every_replica_damaged_opens_critical_incident_and_writes_nothing(archive: Any, fits_delivery: Path) -> None:
    clock = Tick()
    aip_id, object_path = _ingest(archive, fits_delivery)
    locations = archive.location_map()
    _flip(locations["replica-a"].object_dir(object_path) / X)
    os.truncate(locations["replica-b"].object_dir(object_path) / X, 2880)
    before = {name: tree_snapshot(loc.path) for name, loc in locations.items()}

    assert {(f["location"], f["path"]) for f in _audit(archive, clock).failed} == {("replica-a", X), ("replica-b", X)}
    report = _check(archive, clock, repair=True)
    assert report.intact is False and report.fixed == 0 and not report.repaired
    assert sorted((u["location"], u["paths"]) for u in report.unrepairable) == [("replica-a", [X]), ("replica-b", [X])]
    assert {name: tree_snapshot(loc.path) for name, loc in locations.items()} == before  # nothing written
    with archive.sessions() as s:
        incidents = list_incidents(s)
        assert s.scalar(select(func.count(m.Event.seq)).where(m.Event.type.in_(("rec", "rep")))) == 0
    critical = [i for i in incidents if i["severity"] == "critical"]
    assert {(i["kind"], i["location"], i["state"], i["aip_id"]) for i in critical} == {
        ("unrepairable", "replica-a", "open", aip_id), ("unrepairable", "replica-b", "open", aip_id)}
    assert all(X in i["summary"] for i in critical)
    assert {a["severity"] for a in report.alerts} >= {"critical"}
    assert all(i["state"] == "open" for i in incidents)
    assert _states(archive) == {"replica-a": "corrupt", "replica-b": "corrupt"}


def _unreadable_is_an_error(archive: Any, fits_delivery: Path, make: Any) -> None:
    clock = Tick()
    _aip_id, object_path = _ingest(archive, fits_delivery)
    bad, good = (archive.location_map()[n].object_dir(object_path) for n in ("replica-a", "replica-b"))
    (bad / X).unlink()
    make(bad / X)
    box: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: box.update(result=_audit(archive, clock)), daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():  # let the blocked reader go before failing
        os.close(os.open(bad / X, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(10)
        raise AssertionError("the audit blocked on a stored file that is not a regular file")
    result: AuditResult = box["result"]
    assert not result.intact
    assert [(f["location"], f["path"], f["outcome"]) for f in result.failed] == [("replica-a", X, "error")]
    assert "could not read" in result.failed[0]["detail"]
    with archive.sessions() as s:
        unit = s.scalar(select(m.StoredFile).join(m.Replica).where(m.Replica.location == "replica-a",
                                                                   m.StoredFile.path == X))
        checks = list(s.scalars(select(m.FixityCheck).where(m.FixityCheck.stored_file_id == unit.id,
                                                            m.FixityCheck.audit_id == result.audit_id)))
        replica = s.scalar(select(m.Replica).where(m.Replica.location == "replica-a"))
        fix = s.scalars(select(m.Event).where(m.Event.type == "fix", m.Event.detail.contains("'replica-a'"))
                        .order_by(m.Event.seq.desc())).first()
        assert [c.outcome for c in checks] == ["error"] and checks[0].sha512_found is None
        assert unit.last_ok is None  # "could not check" is not a pass (nor a proven mismatch)
        assert replica.state == "unknown" and replica.last_verified_ok is None
    assert fix is not None and fix.outcome == "fai" and "could not read" in fix.outcome_detail

    report = _check(archive, clock, repair=True)  # what blocks the path is kept aside, the file restored
    assert report.intact and report.repaired[0]["sources"] == ["replica-b"], report.to_dict()
    _assert_identical(bad, good)
    assert ocfl_py_errors(bad)[0] == 0
    assert _audit(archive, clock).intact


def test_directory_in_place_of_a_file_is_an_audit_error_not_a_pass(archive: Any, fits_delivery: Path) -> None:
    _unreadable_is_an_error(archive, fits_delivery, Path.mkdir)
    kept = [p for p in (archive.location_map()["replica-a"].path / "lost+found").rglob("*") if p.name == "test0.fits"]
    assert len(kept) == 1 and kept[0].is_dir()  # moved aside, not deleted


def test_fifo_in_place_of_a_file_is_an_audit_error_and_does_not_block(archive: Any, fits_delivery: Path) -> None:
    _unreadable_is_an_error(archive, fits_delivery, os.mkfifo)


# -- the command line ------------------------------------------------------------------------
def _cli_home(tmp_path: Path, delivery: Path) -> tuple[Path, dict[str, Any]]:
    home = tmp_path / "home"
    assert oais("init", "--home", str(home)).returncode == 0
    r = oais("ingest", str(delivery), "--dataset", "eit-195", "--home", str(home), "--json")
    assert r.returncode == 0, r.stderr
    return home, json.loads(r.stdout)


def test_cli_audit_fails_until_replicas_check_repairs(tmp_path: Path, fits_delivery: Path) -> None:
    home, ingested = _cli_home(tmp_path, fits_delivery)
    obj = {r["location"]: Path(r["path"]) for r in ingested["replicas"]}
    _flip(obj["replica-b"] / X)

    r = oais("audit", "--home", str(home), "--json")
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    assert not out["intact"] and [(f["location"], f["path"], f["outcome"]) for f in out["failed"]] == [
        ("replica-b", X, "fail")]
    r = oais("replicas", "check", "--home", str(home), "--json")  # without --repair: reports, exits 1
    assert r.returncode == 1 and json.loads(r.stdout)["problems"][0]["kind"] == "failed-audit"
    assert (obj["replica-b"] / X).read_bytes() != (obj["replica-a"] / X).read_bytes()

    r = oais("replicas", "check", "--repair", "--home", str(home), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["intact"] and out["fixed"] == 1 and out["repaired"][0]["sources"] == ["replica-a"]
    _assert_identical(obj["replica-b"], obj["replica-a"])
    r = oais("audit", "--home", str(home), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["intact"], r.stdout

    r = oais("incidents", "list", "--home", str(home), "--json")
    assert r.returncode == 0
    incidents = json.loads(r.stdout)
    assert {(i["kind"], i["state"]) for i in incidents} == {("fixity", "closed"), ("replica", "closed")}
    assert all(i["timeline"][0]["what"] == "detected" and i["timeline"][-1]["what"] == "repaired" for i in incidents)
    assert json.loads(oais("incidents", "list", "--state", "open", "--home", str(home), "--json").stdout) == []
    r = oais("incidents", "list", "--home", str(home))
    assert r.returncode == 0 and "fixity" in r.stdout and "repaired" in r.stdout


def test_cli_audit_scopes_check_only_what_they_name(tmp_path: Path, fits_delivery: Path,
                                                    astropy_fits: list[Path]) -> None:
    home, first = _cli_home(tmp_path, fits_delivery)
    small = tmp_path / "small"
    small.mkdir()
    shutil.copyfile(astropy_fits[0], small / "one.fits")
    r = oais("ingest", str(small), "--dataset", "eit-195", "--home", str(home), "--json")
    assert r.returncode == 0, r.stderr
    second = json.loads(r.stdout)
    _flip(Path(next(x["path"] for x in second["replicas"] if x["location"] == "replica-b")) / "v1/content/"
          "representations/original/data/one.fits")

    archive = open_archive(load_settings(home))
    try:
        def rows(audit_id: str) -> list[tuple[str, str]]:
            with archive.sessions() as s:
                return [tuple(row) for row in s.execute(select(m.Aip.identifier, m.Replica.location)
                                      .select_from(m.FixityCheck)
                                      .join(m.StoredFile, m.FixityCheck.stored_file_id == m.StoredFile.id)
                                      .join(m.Replica).join(m.Aip).where(m.FixityCheck.audit_id == audit_id))]

        def units(**where: str) -> int:
            with archive.sessions() as s:
                q = select(func.count(m.StoredFile.id)).join(m.Replica).join(m.Aip)
                if "aip" in where:
                    q = q.where(m.Aip.identifier == where["aip"])
                if "location" in where:
                    q = q.where(m.Replica.location == where["location"])
                return s.scalar(q) or 0

        r = oais("audit", "--aip", first["aip_id"], "--home", str(home), "--json")
        assert r.returncode == 0, r.stdout  # the damaged AIP is not in this scope
        out = json.loads(r.stdout)
        checked = rows(out["audit_id"])
        assert out["files"] == len(checked) == units(aip=first["aip_id"]) > 0
        assert {a for a, _ in checked} == {first["aip_id"]} and {loc for _, loc in checked} == {"replica-a", "replica-b"}

        r = oais("audit", "--location", "replica-a", "--home", str(home), "--json")
        assert r.returncode == 0, r.stdout  # the damage is in replica-b
        out = json.loads(r.stdout)
        checked = rows(out["audit_id"])
        assert out["files"] == len(checked) == units(location="replica-a")
        assert {loc for _, loc in checked} == {"replica-a"} and {a for a, _ in checked} == {first["aip_id"],
                                                                                              second["aip_id"]}

        r = oais("audit", "--location", "replica-b", "--home", str(home), "--json")
        assert r.returncode == 1
        out = json.loads(r.stdout)
        assert len(rows(out["audit_id"])) == units(location="replica-b")
        assert [(f["aip_id"], f["location"]) for f in out["failed"]] == [(second["aip_id"], "replica-b")]
        assert oais("audit", "--location", "replica-z", "--home", str(home)).returncode == 2
    finally:
        archive.close()
