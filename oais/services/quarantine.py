"""Staged copies of refused and quarantined deliveries, kept for the archivist, purged after retention."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from oais.catalog import models as m
from oais.catalog import repository as repo
from oais.domain import premis


def list_kept(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(m.Delivery).where(m.Delivery.quarantine_path.is_not(None))
                           .order_by(m.Delivery.finished_at))
    return [{"delivery_id": d.identifier, "disposition": d.disposition, "source": d.source,
             "finished": d.finished_at.isoformat().replace("+00:00", "Z") if d.finished_at else None,
             "path": d.quarantine_path, "reason": d.reason} for d in rows]


def purge(sessions: sessionmaker[Session], retention_days: int, now: datetime,
          new_id: Callable[[], str]) -> list[dict[str, Any]]:
    """Remove kept copies older than the retention, each removal recorded as a PREMIS deletion event."""
    limit = now - timedelta(days=retention_days)
    removed = []
    agent = premis.archive_agent()
    with sessions.begin() as s:
        rows = s.scalars(select(m.Delivery).where(m.Delivery.quarantine_path.is_not(None),
                                                  m.Delivery.finished_at < limit))
        for d in list(rows):
            path = Path(d.quarantine_path or "")
            shutil.rmtree(path, ignore_errors=True)
            repo.add_event(s, premis.Event(
                identifier=new_id(), type=premis.EventType.DELETION, at=now, outcome=premis.Outcome.SUCCESS,
                detail=f"staged copy of {d.disposition} delivery removed after {retention_days} days",
                outcome_detail=str(path),
                agents=(premis.LinkedAgent(agent.identifier, premis.AgentRole.EXECUTING_PROGRAM),),
                objects=(d.identifier,)), {agent.identifier: agent}, delivery=d)
            removed.append({"delivery_id": d.identifier, "path": str(path)})
            d.quarantine_path = None
    return removed
