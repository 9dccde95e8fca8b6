"""APScheduler jobs. Jobs call services; they hold no logic and no state of their own.

Only one scheduler acts at a time, across processes and hosts: every job first takes (or renews)
a lease in the catalog (``scheduler_leases``), with an atomic conditional UPDATE. What is due is
always computed from the catalog (oldest-verified first), so a restart loses nothing.

Jobs: the rolling fixity audit of each location (a quota of oldest-verified files per run, sized so
that the whole location is covered within its cycle, throttled to its MB/s cap; damaged copies are
then repaired from healthy ones), the replica check with repair, the drop-folder poll, and a daily
holdings report (JSON in ``<home>/reports/``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("oais.scheduler")
LEASE = "scheduler"


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire_lease(sessions: sessionmaker[Session], holder: str, now: datetime, ttl: timedelta,
                  name: str = LEASE) -> bool:
    """Take or renew the lease; True when ``holder`` holds it until ``now + ttl``."""
    from oais.catalog.models import SchedulerLease

    with sessions.begin() as s:
        res = s.execute(update(SchedulerLease)
                        .where(SchedulerLease.name == name,
                               (SchedulerLease.holder == holder) | (SchedulerLease.expires_at <= now))
                        .values(holder=holder, expires_at=now + ttl))
        if res.rowcount == 1:  # type: ignore[attr-defined]
            return True
    try:
        with sessions.begin() as s:
            if s.get(SchedulerLease, name) is not None:
                return False
            s.execute(insert(SchedulerLease).values(name=name, holder=holder, expires_at=now + ttl))
        return True
    except IntegrityError:
        return False


def release_lease(sessions: sessionmaker[Session], holder: str, name: str = LEASE) -> None:
    from oais.catalog.models import SchedulerLease

    with sessions.begin() as s:
        s.execute(update(SchedulerLease).where(SchedulerLease.name == name, SchedulerLease.holder == holder)
                  .values(expires_at=datetime(1970, 1, 1, tzinfo=timezone.utc)))


def audit_tick(archive: Any, clock: Callable[[], datetime], new_id: Callable[[], str],
               monotonic: Callable[[], float] | None = None, sleep: Callable[[float], None] | None = None,
               repair: bool = True) -> list[dict[str, Any]]:
    """One rolling batch per location; then repair what the batch found damaged."""
    from oais.catalog import models as m
    from oais.services.audit import rolling_quota, run_audit
    from oais.services.incidents import send_alerts
    from oais.services.replicas import check_replicas

    interval = timedelta(hours=archive.settings.audit.interval_hours)
    out = []
    for loc in archive.settings.locations:
        policy = archive.audit_policy(loc.name)
        with archive.sessions() as s:
            total = s.scalar(select(func.count(m.StoredFile.id)).join(m.Replica)
                             .where(m.Replica.location == loc.name)) or 0
        if not total:
            continue
        quota = min(rolling_quota(total, interval, policy.cycle), policy.batch_files)
        result = run_audit(archive.engine, archive.location_map(), f"due:{loc.name}", clock=clock,
                           new_id=new_id, policy=policy, limit_files=quota, limit_bytes=policy.batch_bytes,
                           monotonic=monotonic, sleep=sleep)
        alerts = list(result.alerts)
        if repair and result.failed:
            for aip_id in sorted({f["aip_id"] for f in result.failed}):
                report = check_replicas(archive.sessions, archive.location_map(), archive.required_locations(),
                                        repair=True, clock=clock, new_id=new_id, aip_id=aip_id)
                alerts.extend(report.alerts)
        send_alerts(alerts, archive.alert_settings())
        out.append({"location": loc.name, "quota": quota, **result.to_dict()})
    return out


def report_tick(archive: Any, clock: Callable[[], datetime]) -> str:
    """Write a holdings and fixity-coverage report (JSON) to ``<home>/reports/``."""
    from oais.catalog import models as m
    from oais.services.audit import coverage

    now = clock()
    with archive.sessions() as s:
        data = {
            "generated": now.isoformat().replace("+00:00", "Z"),
            "aips": s.scalar(select(func.count(m.Aip.id))) or 0,
            "files": s.scalar(select(func.count(m.File.id))) or 0,
            "bytes": s.scalar(select(func.coalesce(func.sum(m.File.size), 0))) or 0,
            "replicas_by_state": dict(s.execute(select(m.Replica.state, func.count()).group_by(m.Replica.state)).all()),
            "open_incidents": s.scalar(select(func.count(m.Incident.id)).where(m.Incident.state == "open")) or 0,
            "fixity": {k: (v.isoformat() if isinstance(v, datetime) else v)
                       for k, v in coverage(s, now, archive.audit_policy()).items()},
        }
    folder = archive.settings.home / "reports"
    folder.mkdir(exist_ok=True)
    path = folder / f"holdings-{now:%Y%m%d}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return str(path)


def drop_folder_job(drop: Any, make_context: Callable[[], Any],
                    report: Callable[[Any, dict[str, Any]], None] | None = None) -> Callable[[], None]:
    """A job that polls a drop folder once (``oais.services.dropfolder.poll``)."""
    from oais.services.dropfolder import poll

    def job() -> None:
        for r in poll(drop, make_context(), report):
            log.info("drop folder: %s -> %s (%s)", r["entry"], r["moved_to"], r["disposition"])

    return job


def run_blocking(jobs: dict[str, tuple[Callable[[], None], float]]) -> None:
    """Run ``{name: (job, interval_seconds)}`` until interrupted; each job never overlaps itself."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone=timezone.utc)
    for name, (job, interval) in jobs.items():
        scheduler.add_job(job, "interval", seconds=interval, id=name, max_instances=1, coalesce=True,
                          next_run_time=datetime.now(timezone.utc))
    scheduler.start()


def run_scheduler(archive: Any) -> None:
    """``oais scheduler``: every periodic job, each run only while this process holds the lease."""
    from oais.bootstrap import new_urn, utc_now
    from oais.services.dropfolder import DropFolder

    holder = holder_id()
    settings = archive.settings
    ttl = timedelta(minutes=5)

    def leased(job: Callable[[], Any], name: str) -> Callable[[], None]:
        def run() -> None:
            if not acquire_lease(archive.sessions, holder, utc_now(), ttl):
                log.info("%s: another scheduler holds the lease; skipped", name)
                return
            try:
                job()
            except Exception:  # noqa: BLE001 - a failing job is logged; the scheduler goes on
                log.exception("job %s failed", name)
        return run

    jobs: dict[str, tuple[Callable[[], None], float]] = {
        "lease": (leased(lambda: None, "lease"), ttl.total_seconds() / 3),
        "audit": (leased(lambda: audit_tick(archive, utc_now, new_urn), "audit"),
                  settings.audit.interval_hours * 3600),
        "replicas": (leased(lambda: _replica_tick(archive), "replicas"), settings.audit.replica_check_hours * 3600),
        "report": (leased(lambda: report_tick(archive, utc_now), "report"), 24 * 3600),
    }
    if settings.drop_folder:
        drop = DropFolder(settings.drop_folder, dataset=settings.drop_folder_dataset)
        jobs["drop-folder"] = (leased(drop_folder_job(drop, archive.ingest_context), "drop-folder"), 60)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.info("scheduler %s starting: %s", holder, ", ".join(jobs))
    try:
        run_blocking(jobs)
    finally:
        release_lease(archive.sessions, holder)


def _replica_tick(archive: Any) -> None:
    from oais.bootstrap import new_urn, utc_now
    from oais.services.incidents import send_alerts
    from oais.services.replicas import check_replicas

    report = check_replicas(archive.sessions, archive.location_map(), archive.required_locations(), repair=True,
                            clock=utc_now, new_id=new_urn)
    send_alerts(report.alerts, archive.alert_settings())
