"""Real damage to one replica of a real AIP, then proof that the fixity audit and the replica check find
it and that the repair restores it from the good replica.

Each test ingests real FITS files into two real local replicas, damages ``replica-a`` on disk (flipped
byte, truncation, deletion of a file or of the whole object, an extra file, a damaged inventory), then:
detection (audit outcome, replica-check problem naming the path, replica state in the catalog), repair
(byte-identical to ``replica-b``, ocfl-py finds no error, a fresh audit passes, PREMIS recovery or
replication event naming the source, fixity-check events showing the failure, incidents closed).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from oais.bootstrap import new_urn
from oais.catalog import models as m
from oais.services.audit import AuditResult, run_audit
from oais.services.incidents import list_incidents
from oais.services.ingest import IngestRequest, ingest
from oais.services.replicas import ReplicaReport, check_replicas
from tests.conftest import Tick, files_under, ocfl_py_errors

BAD, GOOD = "replica-a", "replica-b"
FITS = "v1/content/representations/original/data/test0.fits"
EXTRA = "v1/content/stray/notes.txt"  # a file, in a folder of its own, that the object does not hold


@dataclass
class Held:
    """One AIP ingested for real, and the calls the tests make on it."""

    archive: Any
    aip_id: str
    object_path: str
    clock: Tick

    def obj(self, location: str) -> Path:
        return self.archive.location_map()[location].object_dir(self.object_path)

    def audit(self, scope: str = "all") -> AuditResult:
        return run_audit(self.archive.engine, self.archive.location_map(), scope, clock=self.clock, new_id=new_urn)

    def check(self, repair: bool) -> ReplicaReport:
        return check_replicas(self.archive.sessions, self.archive.location_map(), self.archive.required_locations(),
                              repair=repair, clock=self.clock, new_id=new_urn)

    def states(self) -> dict[str, str]:
        with self.archive.sessions() as s:
            aip = s.scalar(select(m.Aip).where(m.Aip.identifier == self.aip_id))
            return {r.location: r.state for r in aip.replicas}

    def events(self, type_: str) -> list[m.Event]:
        with self.archive.sessions() as s:
            return list(s.scalars(select(m.Event).join(m.Aip, m.Event.aip_id == m.Aip.id)
                                  .where(m.Aip.identifier == self.aip_id, m.Event.type == type_)
                                  .order_by(m.Event.seq)))

    def incidents(self) -> list[dict[str, Any]]:
        with self.archive.sessions() as s:
            return [i for i in list_incidents(s) if i["aip_id"] == self.aip_id]


@pytest.fixture
def held(archive: Any, fits_delivery: Path) -> Held:
    result = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    assert result.aip_id, result.issues
    with archive.sessions() as s:
        object_path = s.scalar(select(m.Aip.object_path).where(m.Aip.identifier == result.aip_id))
    h = Held(archive, result.aip_id, object_path, Tick())
    assert h.audit().intact and h.states() == {BAD: "ok", GOOD: "ok"}  # a sound start
    return h


def flip_byte(path: Path, offset: int | None = None, mask: int = 0xFF) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= mask
    path.write_bytes(bytes(data))


def assert_identical(a: Path, b: Path) -> None:
    assert files_under(a) == files_under(b)
    for rel in files_under(a):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def detect_and_repair(h: Held, damage: Callable[[Path], None], *, outcome: str | None, kind: str,
                      path: str | None, state: str, event: str = "rec", audited: str | None = None) -> ReplicaReport:
    """Damage replica-a, prove detection, repair, and prove the repair. ``outcome`` is what the audit
    records for ``audited`` (default ``path``; None: the audit does not look at it); ``kind`` and ``path``
    the replica-check problem."""
    audited = audited or path
    good_before = {rel: (h.obj(GOOD) / rel).read_bytes() for rel in files_under(h.obj(GOOD))}
    damage(h.obj(BAD))
    if h.obj(BAD).is_dir():
        assert ocfl_py_errors(h.obj(BAD))[0] > 0, "the damage is real: ocfl-py sees it"

    # 1. detection: the audit ...
    audit = h.audit()
    if outcome is not None:
        assert not audit.intact
        assert {f["location"] for f in audit.failed} == {BAD}
        assert {f["path"]: f["outcome"] for f in audit.failed}[audited] == outcome
        assert h.states()[BAD] in ("corrupt", "missing") and h.states()[GOOD] == "ok"
        failure = h.events("fix")[-2:]  # one fixity-check event per replica of this audit
        bad_event = next(e for e in failure if BAD in (e.detail or ""))
        assert bad_event.outcome == "fai" and audited in (bad_event.outcome_detail or "")
        assert next(e for e in failure if e is not bad_event).outcome == "suc"
        with h.archive.sessions() as s:
            last_ok = s.scalar(select(m.StoredFile.last_ok).join(m.Replica).join(m.Aip).where(
                m.Aip.identifier == h.aip_id, m.Replica.location == BAD, m.StoredFile.path == audited))
        assert last_ok is False
    # ... and the replica check, which names the path and writes nothing without --repair
    report = h.check(repair=False)
    assert not report.intact and report.fixed == 0 and not report.repaired
    assert (BAD, kind, path) in {(p.location, p.kind, p.path) for p in report.problems}, report.problems
    assert {p.location for p in report.problems} == {BAD}
    assert h.states() == {BAD: state, GOOD: "ok"}
    assert not (h.archive.location_map()[BAD].path / "lost+found").exists()

    # 2. repair from the good replica
    report = h.check(repair=True)
    assert report.intact and report.fixed == len(report.problems) > 0 and not report.unrepairable
    assert [(r["location"], r["whole_object"]) for r in report.repaired] == [(BAD, event == "rep")]
    assert_identical(h.obj(BAD), h.obj(GOOD))
    assert {rel: (h.obj(GOOD) / rel).read_bytes() for rel in files_under(h.obj(GOOD))} == good_before
    errors, _warnings, text = ocfl_py_errors(h.obj(BAD))
    assert errors == 0, text
    assert h.states() == {BAD: "ok", GOOD: "ok"}
    fresh = h.audit()
    assert fresh.intact and fresh.files == 2 * len(good_before) and fresh.passed == fresh.files
    assert not h.check(repair=False).problems

    # the record: a recovery (file) or replication (whole object) event, fixity-check failure then success
    (recovery,) = h.events(event)
    assert recovery.outcome == "suc" and recovery.objects == [h.aip_id] and BAD in (recovery.detail or "")
    if outcome is not None:
        fix = [(e.outcome, BAD in (e.detail or "")) for e in h.events("fix")]
        assert fix[-2:] == [("suc", True), ("suc", False)] or fix[-2:] == [("suc", False), ("suc", True)]
        assert ("fai", True) in fix
    incidents = h.incidents()
    assert incidents and all(i["state"] == "closed" and i["closed_at"] for i in incidents), incidents
    for i in incidents:
        steps = [t["what"] for t in i["timeline"]]
        assert steps[0] == "detected" and steps[-1] == "repaired", steps
    return report


def test_flipped_byte_in_fits_detected_and_repaired(held: Held) -> None:
    detect_and_repair(held, lambda obj: flip_byte(obj / FITS), outcome="fail", kind="failed-audit", path=FITS,
                      state="corrupt")
    (recovery,) = held.events("rec")
    assert f"{FITS} <- {GOOD}" in recovery.outcome_detail and GOOD in recovery.detail


def test_truncated_fits_detected_and_repaired(held: Held) -> None:
    size = (held.obj(BAD) / FITS).stat().st_size
    detect_and_repair(held, lambda obj: os.truncate(obj / FITS, size // 3), outcome="fail", kind="divergent-file",
                      path=FITS, state="corrupt")
    assert f"{FITS} <- {GOOD}" in held.events("rec")[0].outcome_detail


def test_deleted_fits_detected_and_repaired(held: Held) -> None:
    detect_and_repair(held, lambda obj: (obj / FITS).unlink(), outcome="missing", kind="missing-file", path=FITS,
                      state="corrupt")
    assert f"{FITS} <- {GOOD}" in held.events("rec")[0].outcome_detail


def test_deleted_object_detected_and_replicated_again(held: Held) -> None:
    parent = held.obj(BAD).parent
    report = detect_and_repair(held, shutil.rmtree, outcome="missing", kind="missing-object", path=None,
                               state="missing", event="rep", audited=FITS)
    assert report.repaired[0]["sources"] == [GOOD] and held.obj(BAD).parent == parent
    (replication,) = held.events("rep")
    assert "whole object restored" in replication.detail and GOOD in replication.detail
    assert f"inventory.json <- {GOOD}" in replication.outcome_detail


def test_deleted_object_audit_reports_every_file_missing(held: Held) -> None:
    shutil.rmtree(held.obj(BAD))
    audit = held.audit()
    outcomes = {(f["location"], f["outcome"]) for f in audit.failed}
    assert outcomes == {(BAD, "missing")} and len(audit.failed) == audit.files // 2
    assert audit.passed == audit.files // 2  # replica-b is whole


def test_extra_file_detected_and_moved_to_lost_and_found(held: Held) -> None:
    def add(obj: Path) -> None:
        (obj / EXTRA).parent.mkdir()
        (obj / EXTRA).write_text("left here by hand\n")

    report = detect_and_repair(held, add, outcome=None, kind="extra-file", path=EXTRA, state="corrupt")
    kept = held.archive.location_map()[BAD].path / "lost+found" / held.object_path / EXTRA
    assert kept.read_text() == "left here by hand\n"  # moved aside, not deleted
    assert report.repaired[0]["moved_aside"] == [str(kept)] and report.repaired[0]["restored"] == []
    assert not (held.obj(BAD) / EXTRA).parent.exists()  # no empty folder left in the object
    assert str(kept) in held.events("rec")[0].outcome_detail


def test_extra_file_beside_content_moved_aside(held: Held) -> None:
    extra = "v1/content/representations/original/data/extra.fits"
    detect_and_repair(held, lambda obj: shutil.copyfile(obj / FITS, obj / extra), outcome=None, kind="extra-file",
                      path=extra, state="corrupt")
    kept = held.archive.location_map()[BAD].path / "lost+found" / held.object_path / extra
    assert kept.read_bytes() == (held.obj(GOOD) / FITS).read_bytes()


def test_damaged_root_inventory_detected_and_repaired(held: Held) -> None:
    def flip_bit(obj: Path) -> None:  # "sha512" -> "sha513": one bit, and the inventory stays UTF-8
        flip_byte(obj / "inventory.json", (obj / "inventory.json").read_bytes().index(b'"sha512"') + 6, 0x01)

    detect_and_repair(held, flip_bit, outcome="fail",
                      kind="divergent-file", path="inventory.json", state="corrupt")
    assert f"inventory.json <- {GOOD}" in held.events("rec")[0].outcome_detail


def test_damaged_version_inventory_detected_and_repaired(held: Held) -> None:
    detect_and_repair(held, lambda obj: flip_byte(obj / "v1/inventory.json"), outcome="fail",
                      kind="failed-audit", path="v1/inventory.json", state="corrupt")
