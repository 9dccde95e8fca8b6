"""The rolling fixity audit: every stored file of every replica re-read and checked against the catalog.

Units are ``stored_files`` rows (one file of one AIP's OCFL object in one replica). An audit has a
scope (``all``, ``aip:<id>``, ``location:<name>``, or ``due:<location>`` for the scheduler's rolling
batches); an unfinished audit of the same scope is resumed: its remaining units are those not checked
in its scope that it has no recorded check of, so a killed audit neither skips nor double-counts a file. Results are committed in
chunks; each check records when, the outcome (``pass``, ``fail``, ``missing``, ``error``) and the
digest found. "Could not read" is an error, never a pass. At the end, one PREMIS fixity-check event
per AIP replica, the replica's state, and an incident for every damaged replica.

Hashing streams each file through a 1 MiB buffer (memory independent of file size) on two threads
(hashlib releases the GIL), throttled to the location's MB/s cap.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from oais.catalog import models as m
from oais.catalog import repository as repo
from oais.domain import premis
from oais.domain.package import ReplicaState

BUFFER = 1 << 20
CHUNK_FILES = 64
CHUNK_BYTES = 1 << 30


@dataclass(frozen=True)
class AuditPolicy:
    """How a location is audited: the cycle every file must be covered in, batch caps, bandwidth cap."""

    cycle: timedelta = timedelta(days=90)
    batch_files: int = 50_000
    batch_bytes: int = 500 << 30
    max_bytes_per_s: float | None = None  # None: as fast as the disk and both cores allow


class Throttle:
    """Caps the read rate: after ``n`` bytes, sleeps until the average rate is within the cap."""

    def __init__(self, rate: float | None, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.rate, self.clock, self.sleep = rate, clock, sleep
        self.start: float | None = None
        self.total = 0
        self.lock = threading.Lock()

    def consume(self, n: int) -> None:
        if not self.rate:
            return
        with self.lock:
            if self.start is None:
                self.start = self.clock()
            self.total += n
            ahead = self.total / self.rate - (self.clock() - self.start)
        if ahead > 0:
            self.sleep(ahead)


@dataclass
class Check:
    unit_id: int
    outcome: str  # pass, fail, missing, error
    size: int | None = None
    sha512: str | None = None
    detail: str | None = None


def hash_file(path: Path, throttle: Throttle) -> tuple[int, str]:
    h = hashlib.sha512()
    buf = bytearray(BUFFER)
    view = memoryview(buf)
    size = 0
    # O_NONBLOCK: opening a FIFO left in a replica must not wait for a writer; only regular files are read
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL,
                          "a directory, not a file" if stat.S_ISDIR(mode) else "not a regular file", str(path))
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        while n := f.readinto(buf):
            h.update(view[:n])
            size += n
            throttle.consume(n)
    return size, h.hexdigest()


def check_unit(object_dir: Path, unit: m.StoredFile | tuple[int, str, int, str], throttle: Throttle) -> Check:
    uid, path, size, sha512 = unit if isinstance(unit, tuple) else (unit.id, unit.path, unit.size, unit.sha512)
    target = object_dir / path
    try:
        found_size, found = hash_file(target, throttle)
    except FileNotFoundError:
        return Check(uid, "missing", detail=f"{path}: not found in the replica")
    except OSError as exc:
        return Check(uid, "error", detail=f"{path}: could not read: {exc.strerror or exc}")
    if found == sha512 and found_size == size:
        return Check(uid, "pass", found_size, found)
    return Check(uid, "fail", found_size, found,
                 f"{path}: {found_size} bytes, sha512 {found[:16]}…; expected {size} bytes, sha512 {sha512[:16]}…")


@dataclass
class AuditResult:
    audit_id: str
    scope: str
    resumed: bool
    files: int = 0
    bytes: int = 0
    passed: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    replicas: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # incidents opened: to send once committed

    @property
    def intact(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {"audit_id": self.audit_id, "scope": self.scope, "resumed": self.resumed, "files": self.files,
                "bytes": self.bytes, "passed": self.passed, "failed": self.failed, "replicas": self.replicas,
                "intact": self.intact}


def _scope_filter(scope: str) -> Any:
    kind, _, value = scope.partition(":")
    if kind == "aip":
        return m.Aip.identifier == value
    if kind in ("location", "due"):
        return m.Replica.location == value
    return None


def _pending(s: Session, audit: m.Audit, limit_files: int | None = None, limit_bytes: int | None = None
             ) -> list[tuple[int, str, int, str, str, str]]:
    """Units in the audit's scope it has not checked yet (no check recorded under its id), oldest-verified
    first, within the caps. Checks are committed with their audit id, so a resumed audit is exact."""
    checked = select(m.FixityCheck.id).where(m.FixityCheck.stored_file_id == m.StoredFile.id,
                                             m.FixityCheck.audit_id == audit.identifier).exists()
    q = (select(m.StoredFile.id, m.StoredFile.path, m.StoredFile.size, m.StoredFile.sha512, m.Replica.location,
                m.Aip.object_path)
         .join(m.Replica, m.StoredFile.replica_id == m.Replica.id).join(m.Aip, m.Replica.aip_id == m.Aip.id)
         .where(~checked)
         .order_by(m.StoredFile.last_checked_at.is_not(None), m.StoredFile.last_checked_at, m.StoredFile.id))
    where = _scope_filter(audit.scope)
    if where is not None:
        q = q.where(where)
    out, total = [], 0
    for row in s.execute(q):
        if limit_files is not None and len(out) >= limit_files:
            break
        if limit_bytes is not None and out and total + row.size > limit_bytes:
            break
        out.append(tuple(row))
        total += row.size
    return out  # type: ignore[return-value]


def start_or_resume(sessions: sessionmaker[Session], scope: str, now: datetime, new_id: Callable[[], str]
                    ) -> tuple[m.Audit, bool]:
    with sessions.begin() as s:
        audit = s.scalar(select(m.Audit).where(m.Audit.scope == scope, m.Audit.finished_at.is_(None))
                         .order_by(m.Audit.started_at.desc()).limit(1))
        if audit is not None:
            return audit, True
        audit = m.Audit(identifier=new_id(), scope=scope, started_at=now, files_checked=0, bytes_checked=0,
                        failures=0)
        s.add(audit)
    return audit, False


def run_audit(sessions: sessionmaker[Session], locations: dict[str, Any], scope: str, *,
              clock: Callable[[], datetime], new_id: Callable[[], str], policy: AuditPolicy = AuditPolicy(),
              limit_files: int | None = None, limit_bytes: int | None = None,
              monotonic: Callable[[], float] | None = None, sleep: Callable[[float], None] | None = None,
              progress: Callable[[str, int, int], None] | None = None, workers: int = 2) -> AuditResult:
    """Audit (or resume auditing) ``scope``; ``limit_*`` cap this run (the scheduler's batches)."""
    import time

    audit, resumed = start_or_resume(sessions, scope, clock(), new_id)
    result = AuditResult(audit.identifier, scope, resumed)
    with sessions() as s:
        units = _pending(s, audit, limit_files, limit_bytes)
    total = sum(u[2] for u in units)
    throttle = Throttle(policy.max_bytes_per_s, monotonic or time.monotonic, sleep or time.sleep)
    done = 0
    this_run: list[tuple[Check, tuple[Any, ...]]] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for chunk in _chunks(units):
            checks = list(pool.map(
                lambda u: check_unit(locations[u[4]].object_dir(u[5]), (u[0], u[1], u[2], u[3]), throttle), chunk))
            now = clock()
            with sessions.begin() as s:
                for c, u in zip(checks, chunk):
                    unit = s.get(m.StoredFile, c.unit_id)
                    assert unit is not None
                    unit.last_checked_at = now
                    unit.last_ok = True if c.outcome == "pass" else (None if c.outcome == "error" else False)
                    s.add(m.FixityCheck(stored_file_id=unit.id, audit_id=audit.identifier, checked_at=now,
                                        outcome=c.outcome, sha512_found=c.sha512, size_found=c.size,
                                        detail=c.detail))
                a = s.get(m.Audit, audit.id)
                assert a is not None
                a.files_checked += len(chunk)
                a.bytes_checked += sum(u[2] for u in chunk)
                a.failures += sum(1 for c in checks if c.outcome != "pass")
            this_run.extend(zip(checks, chunk))
            done += sum(u[2] for u in chunk)
            if progress:
                progress(f"audit {len(this_run)}/{len(units)} files", done, total)
    _flag_failures(sessions, audit, clock(), result, [u[0] for u in units])
    if limit_files is None and limit_bytes is None:
        _finish(sessions, audit, clock(), new_id, result)
    else:
        with sessions() as s:
            finished = not _pending(s, audit, 1)
        if finished:
            _finish(sessions, audit, clock(), new_id, result)
        else:  # a batch of a longer audit: report what this run checked
            bad_ids = [c.unit_id for c, _ in this_run if c.outcome != "pass"]
            with sessions() as s:
                aip_of = dict(s.execute(
                    select(m.StoredFile.id, m.Aip.identifier).join(m.Replica, m.StoredFile.replica_id == m.Replica.id)
                    .join(m.Aip, m.Replica.aip_id == m.Aip.id).where(m.StoredFile.id.in_(bad_ids))).all()) \
                    if bad_ids else {}
            for c, u in this_run:
                result.files += 1
                result.bytes += u[2]
                if c.outcome == "pass":
                    result.passed += 1
                else:
                    result.failed.append({"aip_id": aip_of.get(c.unit_id, "?"), "location": u[4],
                                          "path": u[1], "outcome": c.outcome, "detail": c.detail})
    return result


def _flag_failures(sessions: sessionmaker[Session], audit: m.Audit, now: datetime, result: AuditResult,
                   unit_ids: list[int]) -> None:
    """Damage found by this run is acted on now (replica state, incident), not at the end of the cycle."""
    from oais.services.incidents import open_incident, pending_alerts

    if not unit_ids:
        return
    with sessions.begin() as s:
        rows = s.execute(select(m.FixityCheck, m.StoredFile, m.Replica)
                         .join(m.StoredFile, m.FixityCheck.stored_file_id == m.StoredFile.id)
                         .join(m.Replica, m.StoredFile.replica_id == m.Replica.id)
                         .where(m.FixityCheck.audit_id == audit.identifier, m.FixityCheck.outcome != "pass",
                                m.StoredFile.id.in_(unit_ids))).all()
        by_replica: dict[int, tuple[m.Replica, list[m.FixityCheck]]] = {}
        for check, _unit, replica in rows:
            by_replica.setdefault(replica.id, (replica, []))[1].append(check)
        for replica, checks in by_replica.values():
            errors = all(c.outcome == "error" for c in checks)
            replica.state = str(ReplicaState.UNKNOWN if errors else ReplicaState.CORRUPT)
            replica.last_verified_ok = None if errors else False
            open_incident(s, now, severity="major", kind="fixity", aip=replica.aip, location=replica.location,
                          summary=f"{len(checks)} file(s) of {replica.aip.identifier} in {replica.location} "
                                  f"failed the fixity audit: " + "; ".join(c.detail or c.outcome for c in checks[:5]))
        result.alerts.extend(pending_alerts(s))


def _chunks(units: Sequence[tuple[Any, ...]]) -> Iterable[Sequence[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    size = 0
    for u in units:
        chunk.append(u)
        size += u[2]
        if len(chunk) >= CHUNK_FILES or size >= CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _summarize(s: Session, audit: m.Audit, result: AuditResult) -> list[tuple[m.Replica, list[m.FixityCheck]]]:
    rows = s.execute(select(m.FixityCheck, m.StoredFile, m.Replica)
                     .join(m.StoredFile, m.FixityCheck.stored_file_id == m.StoredFile.id)
                     .join(m.Replica, m.StoredFile.replica_id == m.Replica.id)
                     .where(m.FixityCheck.audit_id == audit.identifier)).all()
    by_replica: dict[int, tuple[m.Replica, list[m.FixityCheck]]] = {}
    for check, unit, replica in rows:
        by_replica.setdefault(replica.id, (replica, []))[1].append(check)
        result.files += 1
        result.bytes += unit.size
        if check.outcome == "pass":
            result.passed += 1
        else:
            result.failed.append({"aip_id": replica.aip.identifier, "location": replica.location,
                                  "path": unit.path, "outcome": check.outcome, "detail": check.detail})
    return list(by_replica.values())


def _finish(sessions: sessionmaker[Session], audit: m.Audit, now: datetime, new_id: Callable[[], str],
            result: AuditResult) -> None:
    """One PREMIS fixity-check event per AIP replica, replica states, incidents; the audit is closed."""
    from oais.services.incidents import pending_alerts

    agent = premis.archive_agent()
    exe = premis.LinkedAgent(agent.identifier, premis.AgentRole.EXECUTING_PROGRAM)
    with sessions.begin() as s:
        for replica, checks in _summarize(s, audit, result):
            bad = [c for c in checks if c.outcome != "pass"]
            errors = [c for c in bad if c.outcome == "error"]
            outcome = premis.Outcome.FAILURE if bad else premis.Outcome.SUCCESS
            repo.add_event(s, premis.Event(
                identifier=new_id(), type=premis.EventType.FIXITY_CHECK, at=now, outcome=outcome,
                detail=f"fixity audit {audit.identifier} ({audit.scope}) of the copy in {replica.location!r}: "
                       f"sha512 and size of every file checked against the catalog",
                outcome_detail=(f"{len(checks) - len(bad)} of {len(checks)} files intact"
                                + ("; " + "; ".join(c.detail or c.outcome for c in bad[:20]) if bad else "")),
                agents=(exe,), objects=(replica.aip.identifier,)), {agent.identifier: agent}, aip=replica.aip)
            replica.last_verified_at = now
            if bad:  # incidents were opened when the damage was found (_flag_failures)
                replica.last_verified_ok = None if len(errors) == len(bad) else False
            else:
                replica.last_verified_ok = True
                if replica.state != str(ReplicaState.MISSING):
                    replica.state = str(ReplicaState.OK)
            result.replicas.append({"aip_id": replica.aip.identifier, "location": replica.location,
                                    "outcome": str(outcome), "files": len(checks), "failed": len(bad)})
        a = s.get(m.Audit, audit.id)
        assert a is not None
        a.finished_at = now
        result.alerts.extend(pending_alerts(s))


def coverage(session: Session, now: datetime, policy: AuditPolicy) -> dict[str, Any]:
    """How much of the holding was verified within the cycle (for reports and the scheduler)."""
    total = session.scalar(select(func.count(m.StoredFile.id))) or 0
    recent = session.scalar(select(func.count(m.StoredFile.id)).where(
        m.StoredFile.last_checked_at >= now - policy.cycle, m.StoredFile.last_ok.is_(True))) or 0
    oldest = session.scalar(select(func.min(m.StoredFile.last_checked_at)))
    return {"files": total, "verified_within_cycle": recent, "oldest_check": oldest}


def rolling_quota(total_files: int, interval: timedelta, cycle: timedelta, margin: float = 1.5) -> int:
    """Files one scheduled run must check so that the whole holding is covered within the cycle."""
    runs = max(int(cycle / interval), 1)
    return max(int(total_files * margin / runs) + 1, 1)


__all__ = ["AuditPolicy", "AuditResult", "Throttle", "run_audit", "coverage", "rolling_quota"]
