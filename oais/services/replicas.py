"""Replica checks and self-repair.

The check compares every AIP's copies with the catalog: each required location holds the object,
with exactly the files the catalog records (none missing, none extra, sizes and the inventory's
digest as recorded), and no file whose last audit failed. Storage is also walked for objects the
catalog does not know. What to do is decided by a pure function (``plan_repairs``) between the
reading and the writing.

Repair restores a missing or damaged file (or a whole object) from a replica whose copy matches the
catalog's sha512 — checked just before copying — writes it atomically, re-verifies it, and records
a PREMIS recovery event naming the source. An unexpected file is moved to ``<location>/lost+found/``.
When no replica holds a good copy, a critical incident is opened and nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from oais.catalog import models as m
from oais.catalog import repository as repo
from oais.domain import premis
from oais.domain.package import ReplicaState
from oais.domain.storage import Entry
from oais.formats.digest import read_digest
from oais.storage.base import StorageError
from oais.services.incidents import add_to_timeline, open_incident, pending_alerts


@dataclass
class Problem:
    aip_id: str
    location: str
    kind: str  # missing-object, missing-file, extra-file, divergent-file, failed-audit, missing-replica, unknown-object
    path: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"aip_id": self.aip_id, "location": self.location, "kind": self.kind, "path": self.path,
                "detail": self.detail}


@dataclass
class ReplicaReport:
    aips: int = 0
    problems: list[Problem] = field(default_factory=list)
    repaired: list[dict[str, Any]] = field(default_factory=list)
    unrepairable: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    fixed: int = 0  # problems repaired

    @property
    def intact(self) -> bool:
        """True when nothing was wrong, or everything found was repaired."""
        return self.fixed >= len(self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {"aips": self.aips, "intact": self.intact, "fixed": self.fixed, "problems": [p.to_dict() for p in self.problems],
                "repaired": self.repaired, "unrepairable": self.unrepairable}


def _walk(root: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[p.relative_to(root).as_posix()] = p.lstat().st_size
    return out


def inspect_aip(aip: m.Aip, locations: dict[str, Any], required: list[str]) -> list[Problem]:
    """Every way the AIP's copies differ from the catalog (reads sizes, and the root inventory's digest)."""
    problems: list[Problem] = []
    by_location = {r.location: r for r in aip.replicas}
    for name in required:
        if name not in by_location:
            problems.append(Problem(aip.identifier, name, "missing-replica", detail="no copy recorded in this location"))
    for name, replica in by_location.items():
        store = locations.get(name)
        if store is None:
            continue
        expected = {u.path: u for u in _units(replica)}
        root = store.object_dir(aip.object_path)
        if not root.is_dir():
            problems.append(Problem(aip.identifier, name, "missing-object", detail=str(root)))
            continue
        actual = _walk(root)
        for path in sorted(set(expected) - set(actual)):
            problems.append(Problem(aip.identifier, name, "missing-file", path))
        for path in sorted(set(actual) - set(expected)):
            problems.append(Problem(aip.identifier, name, "extra-file", path, f"{actual[path]} bytes"))
        for path in sorted(set(expected) & set(actual)):
            unit = expected[path]
            if actual[path] != unit.size:
                problems.append(Problem(aip.identifier, name, "divergent-file", path,
                                        f"{actual[path]} bytes, expected {unit.size}"))
            elif path == "inventory.json":
                _, digest = read_digest(root / path)
                if digest != unit.sha512:
                    problems.append(Problem(aip.identifier, name, "divergent-file", path, "inventory differs"))
            elif unit.last_ok is False:
                problems.append(Problem(aip.identifier, name, "failed-audit", path, "failed its last fixity check"))
    return problems


def _units(replica: m.Replica) -> list[m.StoredFile]:
    from sqlalchemy.orm import object_session

    s = object_session(replica)
    assert s is not None
    return list(s.scalars(select(m.StoredFile).where(m.StoredFile.replica_id == replica.id)))


def check_replicas(sessions: sessionmaker[Session], locations: dict[str, Any], required: list[str], *,
                   repair: bool, clock: Callable[[], datetime], new_id: Callable[[], str],
                   aip_id: str | None = None) -> ReplicaReport:
    report = ReplicaReport()
    with sessions.begin() as s:
        q = select(m.Aip).options(selectinload(m.Aip.replicas)).order_by(m.Aip.id)
        if aip_id:
            q = q.where(m.Aip.identifier == aip_id)
        aips = list(s.scalars(q))
        known = {a.object_path for a in aips}
        report.aips = len(aips)
        now = clock()
        for aip in aips:
            problems = inspect_aip(aip, locations, required)
            report.problems.extend(problems)
            for p in problems:
                if p.kind == "missing-replica":
                    continue
                replica = next(r for r in aip.replicas if r.location == p.location)
                replica.state = str(ReplicaState.MISSING if p.kind == "missing-object" else ReplicaState.CORRUPT)
                replica.last_verified_ok = False
            if problems:
                incident = open_incident(
                    s, now, severity="major", kind="replica", aip=aip, location=None,
                    summary=f"{len(problems)} problem(s) with the copies of {aip.identifier}: "
                            + "; ".join(f"{p.location} {p.kind} {p.path or ''}".strip() for p in problems[:10]))
                if repair:
                    _repair(s, aip, problems, locations, now, new_id, report, incident)
        if not aip_id:
            for name, store in locations.items():
                for path in store.list_objects():
                    if path not in known:
                        report.problems.append(Problem("?", name, "unknown-object", path,
                                                       "an OCFL object the catalog does not know"))
        report.alerts = pending_alerts(s)
    return report


def _good_source(aip: m.Aip, unit_path: str, sha512: str, size: int, locations: dict[str, Any],
                 exclude: str) -> tuple[str, Path] | None:
    """A replica whose copy of ``unit_path`` matches the catalog now (hashed before it is trusted)."""
    for replica in sorted(aip.replicas, key=lambda r: r.location):
        if replica.location == exclude or replica.location not in locations:
            continue
        path = locations[replica.location].object_dir(aip.object_path) / unit_path
        try:
            found_size, digest = read_digest(path)
        except OSError:
            continue
        if digest == sha512 and found_size == size:
            return replica.location, path
    return None


def _prune_empty_folders(root: Path, relpath: str) -> None:
    """Remove the folders a moved-aside file leaves empty inside an object (OCFL forbids empty folders)."""
    for parent in Path(relpath).parents:
        if parent == Path("."):
            return
        try:
            (root / parent).rmdir()
        except OSError:  # not empty (or gone): the folders above are not empty either
            return


def _repair(s: Session, aip: m.Aip, problems: list[Problem], locations: dict[str, Any], now: datetime,
            new_id: Callable[[], str], report: ReplicaReport, incident: m.Incident) -> None:
    agent = premis.archive_agent()
    exe = premis.LinkedAgent(agent.identifier, premis.AgentRole.EXECUTING_PROGRAM)
    agents = {agent.identifier: agent}
    fixed = 0
    by_location: dict[str, list[Problem]] = {}
    for p in problems:
        by_location.setdefault(p.location, []).append(p)
    for name, found in by_location.items():
        replica = next((r for r in aip.replicas if r.location == name), None)
        if replica is None or name not in locations:
            continue
        store = locations[name]
        units = {u.path: u for u in _units(replica)}
        whole = any(p.kind == "missing-object" for p in found)
        needed = list(units) if whole else [p.path for p in found
                                            if p.kind in ("missing-file", "divergent-file", "failed-audit")]
        sources: dict[str, tuple[str, Path]] = {}
        missing_source = []
        for path in needed:
            assert path is not None
            src = _good_source(aip, path, units[path].sha512, units[path].size, locations, exclude=name)
            if src is None:
                missing_source.append(path)
            else:
                sources[path] = src
        if missing_source:  # no good copy anywhere: touch nothing in this replica
            report.unrepairable.append({"aip_id": aip.identifier, "location": name, "paths": missing_source})
            open_incident(s, now, severity="critical", kind="unrepairable", aip=aip, location=name,
                          summary=f"no replica holds a good copy of {len(missing_source)} file(s) of "
                                  f"{aip.identifier} needed in {name}: {', '.join(missing_source[:10])}")
            continue
        moved: list[str] = []
        restored: list[str] = []
        try:
            if whole:
                staged = store.stage(aip.object_path, [Entry(p, units[p].sha512, source=src) for p, (_, src) in
                                                       sorted(sources.items())])
                staged.commit()
                restored = sorted(sources)
            else:
                root = store.object_dir(aip.object_path)
                for path, (_, src) in sorted(sources.items()):
                    if (root / path).is_dir() and not (root / path).is_symlink():
                        # a folder where a file belongs would block the restore: kept aside, not deleted
                        moved.append(str(store.move_aside(aip.object_path, path)))
                    store.restore_file(aip.object_path, path, src, units[path].sha512)
                    restored.append(path)
                for p in found:  # (files inside a folder moved aside above went with it)
                    if p.kind == "extra-file" and p.path and os.path.lexists(root / p.path):
                        moved.append(str(store.move_aside(aip.object_path, p.path)))
                        _prune_empty_folders(root, p.path)
        except StorageError as exc:  # this copy stays damaged; the check goes on and its findings are kept
            open_incident(s, now, severity="major", kind="repair-failed", aip=aip, location=name,
                          summary=f"repair of {aip.identifier} in {name} failed: {exc}")
            continue
        for path in restored:
            units[path].last_checked_at, units[path].last_ok = now, True
        replica.state, replica.last_verified_at, replica.last_verified_ok = str(ReplicaState.OK), now, True
        used = sorted({sources[p][0] for p in restored})
        detail = (f"whole object restored in {name!r}" if whole else
                  f"{len(restored)} file(s) restored in {name!r}") + (f" from {', '.join(used)}" if used else "")
        if moved:
            detail += f"; {len(moved)} unexpected file(s) moved to lost+found"
        repo.add_event(s, premis.Event(
            identifier=new_id(), type=premis.EventType.RECOVERY if not whole else premis.EventType.REPLICATION,
            at=now, outcome=premis.Outcome.SUCCESS, detail=detail + " (each copy written under a temporary name, "
            "flushed, re-read and checked against the catalog's sha512)",
            outcome_detail="; ".join([*(f"{p} <- {sources[p][0]}" for p in restored[:50]), *moved[:20]]),
            agents=(exe,), objects=(aip.identifier,)), agents, aip=aip)
        for other in s.scalars(select(m.Incident).where(m.Incident.state == "open", m.Incident.aip_id == aip.id,
                                                        m.Incident.location == name)):
            add_to_timeline(other, now, "repaired", detail, "closed")
        report.repaired.append({"aip_id": aip.identifier, "location": name, "restored": restored,
                                "moved_aside": moved, "sources": used, "whole_object": whole})
        fixed += len(found)
    report.fixed += fixed
    if fixed == len(problems):
        add_to_timeline(incident, now, "repaired", f"{fixed} problem(s) repaired from healthy replicas", "closed")
    elif fixed:
        add_to_timeline(incident, now, "partly repaired", f"{fixed} of {len(problems)} problem(s) repaired")
