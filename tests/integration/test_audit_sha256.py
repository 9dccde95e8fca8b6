"""The fixity audit verifies each stored file's sha256 (and size) when the catalog holds one, and its
sha512 when it does not (rows catalogued before revision 0007); what it found is recorded in the
column of the algorithm used, and every message names that algorithm.

Real FITS files ingested into two real replicas, real damage on disk, on SQLite and on PostgreSQL.
The catalog's sha256 of each stored file is set here from the stored bytes (hashlib), so that these
tests do not depend on which digests the ingest records.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from oais.bootstrap import init_archive, new_urn, open_archive
from oais.catalog import models as m
from oais.services.audit import AuditResult, run_audit
from oais.services.ingest import IngestRequest, ingest
from tests.conftest import Tick

BAD, GOOD = "replica-a", "replica-b"
FITS = "v1/content/representations/original/data/test0.fits"


class Held:
    """One AIP ingested for real into ``replica-a`` and ``replica-b``."""

    def __init__(self, archive: Any, aip_id: str, object_path: str) -> None:
        self.archive, self.aip_id, self.object_path, self.clock = archive, aip_id, object_path, Tick()

    def obj(self, location: str) -> Path:
        return Path(self.archive.location_map()[location].object_dir(self.object_path))

    def audit(self, scope: str = "all", **kw: Any) -> AuditResult:
        return run_audit(self.archive.engine, self.archive.location_map(), scope, clock=self.clock,
                         new_id=new_urn, **kw)

    def units(self) -> list[tuple[int, str, str, int, str | None, str]]:
        """(id, location, path, size, sha256, sha512) of every stored file."""
        with self.archive.sessions() as s:
            rows = s.execute(select(m.StoredFile.id, m.Replica.location, m.StoredFile.path, m.StoredFile.size,
                                    m.StoredFile.sha256, m.StoredFile.sha512).join(m.Replica)
                             .order_by(m.StoredFile.id)).all()
        return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def set_digests(self, *, sha256: bool, where: Any = None) -> None:
        """Record each stored file's sha256 as hashed from its bytes now (``sha256``), or none (an old row)."""
        with self.archive.sessions.begin() as s:
            q = select(m.StoredFile).join(m.Replica)
            for unit in s.scalars(q if where is None else q.where(where)):
                data = (self.obj(unit.replica.location) / unit.path).read_bytes()
                assert hashlib.sha512(data).hexdigest() == unit.sha512  # the copy is sound to start with
                unit.sha256 = hashlib.sha256(data).hexdigest() if sha256 else None

    def checks(self, audit_id: str) -> dict[tuple[str, str], m.FixityCheck]:
        with self.archive.sessions() as s:
            rows = s.execute(select(m.FixityCheck, m.Replica.location, m.StoredFile.path)
                             .join(m.StoredFile, m.FixityCheck.stored_file_id == m.StoredFile.id)
                             .join(m.Replica).where(m.FixityCheck.audit_id == audit_id)).all()
        return {(location, path): check for check, location, path in rows}

    def events(self, audit_id: str) -> dict[str, m.Event]:
        """This audit's PREMIS fixity-check event of each replica, by location."""
        with self.archive.sessions() as s:
            events = s.scalars(select(m.Event).where(m.Event.type == "fix", m.Event.detail.contains(audit_id)))
            return {loc: e for e in events for loc in (BAD, GOOD) if f"in {loc!r}" in (e.detail or "")}

    def last_ok(self, location: str, path: str) -> bool | None:
        with self.archive.sessions() as s:
            return s.scalar(select(m.StoredFile.last_ok).join(m.Replica)
                            .where(m.Replica.location == location, m.StoredFile.path == path))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def held(request: pytest.FixtureRequest, tmp_path: Path, fits_delivery: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Held]:
    if request.param == "postgresql":
        monkeypatch.setenv("OAIS_CATALOG_URL", request.getfixturevalue("pg_url"))
    settings, _ = init_archive(tmp_path / "archive")
    archive = open_archive(settings)
    try:
        result = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
        assert result.aip_id, result.issues
        with archive.sessions() as s:
            object_path = s.scalar(select(m.Aip.object_path).where(m.Aip.identifier == result.aip_id))
        yield Held(archive, result.aip_id, object_path)
    finally:
        archive.close()


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_sha256_and_size_are_what_is_verified(held: Held) -> None:
    held.set_digests(sha256=True)
    units = held.units()
    assert units and all(sha256 and len(sha256) == 64 for *_, sha256, _sha512 in units)

    result = held.audit()
    assert result.intact and result.files == result.passed == len(units)
    checks = held.checks(result.audit_id)
    assert len(checks) == len(units)
    for _id, location, path, size, sha256, _sha512 in units:
        check = checks[location, path]
        assert (check.outcome, check.sha256_found, check.sha512_found, check.size_found) == ("pass", sha256, None,
                                                                                             size)
    for event in held.events(result.audit_id).values():
        assert event.outcome == "suc"
        assert "sha256 and size of every file" in (event.detail or "") and "sha512" not in (event.detail or "")

    # the catalog's sha512 is not what is compared: a wrong one goes unnoticed while the sha256 matches ...
    with held.archive.sessions.begin() as s:
        s.execute(update(m.StoredFile).where(m.StoredFile.path == FITS).values(sha512="0" * 128))
    assert held.audit().intact
    # ... and a wrong sha256 in the catalog is a failure although the bytes are those ingested
    with held.archive.sessions.begin() as s:
        s.execute(update(m.StoredFile).where(m.StoredFile.path == FITS).values(sha256="0" * 64))
    result = held.audit()
    assert {(f["location"], f["path"], f["outcome"]) for f in result.failed} == {(BAD, FITS, "fail"),
                                                                                 (GOOD, FITS, "fail")}
    assert all("sha256 " in f["detail"] and "sha512" not in f["detail"] for f in result.failed)


def test_a_flipped_byte_fails_the_sha256_check(held: Held) -> None:
    held.set_digests(sha256=True)
    (_id, _loc, _path, size, sha256, _sha512), = [u for u in held.units() if u[1] == BAD and u[2] == FITS]
    flip_byte(held.obj(BAD) / FITS)
    found = hashlib.sha256((held.obj(BAD) / FITS).read_bytes()).hexdigest()
    assert found != sha256

    result = held.audit()
    assert [(f["location"], f["path"], f["outcome"]) for f in result.failed] == [(BAD, FITS, "fail")]
    detail = result.failed[0]["detail"]
    assert f"sha256 {found[:16]}" in detail and f"expected {size} bytes, sha256 {sha256[:16]}" in detail
    check = held.checks(result.audit_id)[BAD, FITS]
    assert (check.outcome, check.sha256_found, check.sha512_found, check.size_found) == ("fail", found, None, size)
    assert held.checks(result.audit_id)[GOOD, FITS].outcome == "pass"
    assert held.last_ok(BAD, FITS) is False and held.last_ok(GOOD, FITS) is True
    events = held.events(result.audit_id)
    assert events[BAD].outcome == "fai" and FITS in (events[BAD].outcome_detail or "")
    assert "sha256 and size" in (events[BAD].detail or "") and events[GOOD].outcome == "suc"
    with held.archive.sessions() as s:
        states = dict(s.execute(select(m.Replica.location, m.Replica.state)).all())
        incidents = s.scalars(select(m.Incident).where(m.Incident.location == BAD)).all()
    assert states == {BAD: "corrupt", GOOD: "ok"}
    assert len(incidents) == 1 and "sha256" in incidents[0].summary


def test_a_wrong_size_fails_the_check(held: Held) -> None:
    held.set_digests(sha256=True)
    (_id, _loc, _path, size, _sha256, _sha512), = [u for u in held.units() if u[1] == BAD and u[2] == FITS]
    with open(held.obj(BAD) / FITS, "ab") as f:  # one byte more, the rest untouched
        f.write(b"\0")
    result = held.audit()
    assert [(f["path"], f["outcome"]) for f in result.failed] == [(FITS, "fail")]
    assert f"{size + 1} bytes" in result.failed[0]["detail"]
    check = held.checks(result.audit_id)[BAD, FITS]
    assert check.outcome == "fail" and check.size_found == size + 1 and check.sha256_found is not None

    os.truncate(held.obj(BAD) / FITS, size // 2)
    result = held.audit()
    check = held.checks(result.audit_id)[BAD, FITS]
    assert check.outcome == "fail" and check.size_found == size // 2


def test_rows_without_sha256_are_verified_by_sha512(held: Held) -> None:
    held.set_digests(sha256=False)  # as catalogued before revision 0007
    units = held.units()
    assert all(sha256 is None for *_, sha256, _sha512 in units)

    result = held.audit()
    assert result.intact and result.passed == len(units)
    checks = held.checks(result.audit_id)
    for _id, location, path, size, _sha256, sha512 in units:
        check = checks[location, path]
        assert (check.outcome, check.sha256_found, check.sha512_found, check.size_found) == ("pass", None, sha512,
                                                                                             size)
    for event in held.events(result.audit_id).values():
        assert "sha512 and size of every file" in (event.detail or "") and "sha256" not in (event.detail or "")

    flip_byte(held.obj(BAD) / FITS)
    result = held.audit()
    assert [(f["location"], f["path"], f["outcome"]) for f in result.failed] == [(BAD, FITS, "fail")]
    assert "sha512 " in result.failed[0]["detail"] and "sha256" not in result.failed[0]["detail"]
    check = held.checks(result.audit_id)[BAD, FITS]
    found = hashlib.sha512((held.obj(BAD) / FITS).read_bytes()).hexdigest()
    assert (check.outcome, check.sha256_found, check.sha512_found) == ("fail", None, found)


def test_old_and_new_rows_in_one_audit(held: Held) -> None:
    held.set_digests(sha256=True)
    original = (held.obj(BAD) / FITS).read_bytes()
    held.set_digests(sha256=False, where=m.Replica.location == GOOD)  # replica-b catalogued before 0007
    flip_byte(held.obj(GOOD) / FITS)
    (held.obj(BAD) / FITS).unlink()

    result = held.audit()
    assert sorted((f["location"], f["outcome"]) for f in result.failed) == [(BAD, "missing"), (GOOD, "fail")]
    assert "sha512" in next(f["detail"] for f in result.failed if f["location"] == GOOD)
    checks = held.checks(result.audit_id)
    assert checks[BAD, FITS].outcome == "missing"
    assert (checks[BAD, FITS].sha256_found, checks[BAD, FITS].sha512_found, checks[BAD, FITS].size_found) == (
        None, None, None)
    assert all(c.sha256_found and not c.sha512_found for (loc, p), c in checks.items() if loc == BAD and p != FITS)
    assert all(c.sha512_found and not c.sha256_found for (loc, _p), c in checks.items() if loc == GOOD)
    events = held.events(result.audit_id)
    assert "sha256 and size" in (events[BAD].detail or "") and "sha512 and size" in (events[GOOD].detail or "")

    # one replica, its content files catalogued before 0007 and the object's own files after: the
    # event names both algorithms, with the number of files checked by sha512
    for location in (BAD, GOOD):
        (held.obj(location) / FITS).write_bytes(original)
    held.set_digests(sha256=False, where=m.StoredFile.path.like("v1/content/%"))
    result = held.audit(f"location:{BAD}")
    assert result.intact
    n_old = sum(1 for _i, loc, path, *_ in held.units() if loc == BAD and path.startswith("v1/content/"))
    detail = held.events(result.audit_id)[BAD].detail or ""
    assert f"sha256 (sha512 for the {n_old} catalogued without a sha256) and size" in detail


def test_batches_of_a_rolling_audit_record_sha256(held: Held) -> None:
    """The scheduler's capped runs: each batch commits its checks, the last one closes the audit."""
    held.set_digests(sha256=True)
    total = len(held.units())
    seen = 0
    while True:
        result = held.audit("due:replica-a", limit_files=3)
        with held.archive.sessions() as s:
            audit = s.scalar(select(m.Audit).where(m.Audit.identifier == result.audit_id))
            assert audit is not None
        if audit.finished_at is not None:
            break
        assert result.files == 3 and result.passed == 3
        seen += 3
    checks = held.checks(result.audit_id)
    assert len(checks) == total // 2 and all(c.sha256_found for c in checks.values())
    assert audit.files_checked == total // 2 and audit.failures == 0 and seen < total // 2


# -- the command's start-up ----------------------------------------------------------------------
HEAVY = ("astropy", "fido", "lxml", "xmlschema", "numpy")  # the ingest's libraries: an audit needs none
# the ORM, the ORM classes and Alembic: an audit that finds nothing wrong works on the Core tables
ORM = ("sqlalchemy.orm", "oais.catalog.models", "alembic")
PROBE = """
import json, sys
from oais.cli import main
from tests.conftest import Tick
code = main(sys.argv[1:])
print(json.dumps({"code": code, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in %r),
                  "orm": sorted(m for m in %r if m in sys.modules)}))
""" % (HEAVY, ORM)


def _run_audit_command(home: Path) -> dict[str, Any]:
    import json
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OAIS_HOME", "OAIS_CATALOG_URL")}
    proc = subprocess.run([sys.executable, "-c", PROBE, "audit", "--home", str(home), "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    last = proc.stdout.strip().splitlines()[-1]
    out: dict[str, Any] = json.loads(last)
    out["stderr"] = proc.stderr
    return out


def test_audit_command_starts_light_and_still_refuses_an_old_catalog(tmp_path: Path, fits_delivery: Path) -> None:
    from oais.catalog import db

    settings, _ = init_archive(tmp_path / "archive")
    archive = open_archive(settings)
    try:
        assert ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context()).aip_id
    finally:
        archive.close()

    ran = _run_audit_command(settings.home)
    assert ran["code"] == 0 and ran["loaded"] == [] and ran["orm"] == [], ran

    engine = db.make_engine(settings.catalog_url)
    try:
        db.downgrade(engine, "0006")
    finally:
        engine.dispose()
    ran = _run_audit_command(settings.home)
    assert ran["code"] == 2 and "is at revision 0006" in ran["stderr"] and "oais db upgrade" in ran["stderr"], ran


def test_audit_leaves_no_descriptor_open(held: Held) -> None:
    """Every object folder the audit opens (files are read relative to it) is closed at the end,
    whether the replica is intact, damaged, or gone."""
    def open_fds() -> set[str]:
        return set(os.listdir("/proc/self/fd"))

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("no /proc/self/fd on this system to count open descriptors")
    before = open_fds()
    assert held.audit().intact
    flip_byte(held.obj(GOOD) / FITS)
    shutil.rmtree(held.obj(BAD))
    result = held.audit()
    assert not result.intact and {f["outcome"] for f in result.failed} == {"fail", "missing"}
    assert open_fds() - before == set()


def _fail_event_inserts(held: Held, on: bool) -> None:
    """A real catalog failure: a trigger refuses every new PREMIS event (SQLite or PostgreSQL)."""
    sqlite = held.archive.engine.dialect.name == "sqlite"
    with held.archive.engine.begin() as conn:
        if on and sqlite:
            conn.execute(text("CREATE TRIGGER no_events BEFORE INSERT ON events "
                              "BEGIN SELECT RAISE(ABORT, 'injected catalog failure'); END"))
        elif on:
            conn.execute(text("CREATE FUNCTION no_events() RETURNS trigger LANGUAGE plpgsql AS "
                              "$$ BEGIN RAISE EXCEPTION 'injected catalog failure'; END $$"))
            conn.execute(text("CREATE TRIGGER no_events BEFORE INSERT ON events "
                              "FOR EACH ROW EXECUTE FUNCTION no_events()"))
        else:
            conn.execute(text("DROP TRIGGER no_events" + ("" if sqlite else " ON events")))


def test_last_results_and_closing_are_one_transaction(held: Held) -> None:
    """The last checks are recorded with the audit's closing (its events): when the closing fails,
    those checks are not recorded either, and the next run resumes the audit and checks each of
    them once, so no file is skipped or counted twice."""
    units = held.units()

    def last_checked() -> dict[int, Any]:
        with held.archive.sessions() as s:
            return {i: t for i, t in s.execute(select(m.StoredFile.id, m.StoredFile.last_checked_at))}

    before = last_checked()
    _fail_event_inserts(held, on=True)
    with pytest.raises(Exception, match="injected catalog failure"):
        held.audit()
    with held.archive.sessions() as s:
        audit = s.scalars(select(m.Audit)).one()
        recorded = s.scalar(select(func.count()).select_from(m.FixityCheck)) or 0
    assert audit.finished_at is None
    assert recorded < len(units), "the last results were committed without the closing"
    assert sum(1 for i, t in last_checked().items() if t != before[i]) == recorded
    _fail_event_inserts(held, on=False)
    result = held.audit()
    assert result.resumed and result.audit_id == audit.identifier
    assert result.intact and result.files == result.passed == len(units)
    assert len(held.checks(result.audit_id)) == len(units)
    with held.archive.sessions() as s:
        per_unit = s.execute(select(m.FixityCheck.stored_file_id, func.count())
                             .group_by(m.FixityCheck.stored_file_id)).all()
    assert sorted(n for _id, n in per_unit) == [1] * len(units)


def test_catalog_is_durable_again_after_an_audit(held: Held) -> None:
    """The audit's batches are committed without waiting for the disk (they are redone if lost); the
    connections it used go back to the pool with the catalog's durable setting, so that nothing
    else (an ingest in the same process) ever commits that way."""
    from oais.catalog.db import redoable_commit

    engine = held.archive.engine
    setting = "PRAGMA synchronous" if engine.dialect.name == "sqlite" else "SHOW synchronous_commit"
    durable = 2 if engine.dialect.name == "sqlite" else "on"
    with held.archive.sessions.begin() as s:
        redoable_commit(s.connection())
        relaxed = s.execute(text(setting)).scalar()
    assert relaxed in (1, "off"), relaxed
    assert held.audit().intact
    for _ in range(3):  # whichever pooled connection comes next
        with held.archive.sessions() as s:
            assert s.execute(text(setting)).scalar() == durable
    if engine.dialect.name == "sqlite":  # inside an open transaction, the setting is left alone
        with held.archive.sessions.begin() as s:
            s.execute(text("SELECT 1 FROM audits")).all()
            s.execute(update(m.Audit).values(files_checked=m.Audit.files_checked))
            redoable_commit(s.connection())
            assert s.execute(text(setting)).scalar() == durable
