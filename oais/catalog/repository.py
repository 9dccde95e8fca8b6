"""Catalog reads and writes used by the services (inside a caller's transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from oais.catalog import journal
from oais.catalog import models as m
from oais.domain import premis


def producer(session: Session, name: str, now: datetime) -> m.Producer:
    row = session.scalar(select(m.Producer).where(m.Producer.name == name))
    if row is None:
        row = m.Producer(name=name, created_at=now)
        session.add(row)
        session.flush()
    return row


def dataset(session: Session, identifier: str, now: datetime,
            owner: m.Producer | None = None) -> m.Dataset:
    """The dataset named ``identifier``, created on first use."""
    row = session.scalar(select(m.Dataset).where(m.Dataset.identifier == identifier))
    if row is None:
        row = m.Dataset(identifier=identifier, producer=owner, created_at=now)
        session.add(row)
        session.flush()
    elif row.producer is None and owner is not None:
        row.producer = owner
    return row


def find_dataset(session: Session, identifier: str) -> m.Dataset | None:
    return session.scalar(select(m.Dataset).where(m.Dataset.identifier == identifier))


def add_event(session: Session, value: premis.Event, agents: dict[str, premis.Agent], *,
              aip: m.Aip | None = None, delivery: m.Delivery | None = None) -> int:
    """Append one PREMIS event (events are never updated or deleted); returns its ``seq``.

    Written on the session's connection by :func:`oais.catalog.journal.append_event`, after the
    session's pending rows are flushed (so that ``aip`` and ``delivery`` have their ids)."""
    session.flush()
    return journal.append_event(session.connection(), value, agents, aip_id=aip.id if aip else None,
                                delivery_id=delivery.id if delivery else None)


def find_aip(session: Session, identifier: str) -> m.Aip | None:
    """An AIP by its id; a bare UUID also finds ``urn:uuid:<uuid>``."""
    candidates = [identifier]
    if not identifier.startswith("urn:"):
        candidates.append(f"urn:uuid:{identifier}")
    return session.scalar(
        select(m.Aip).where(m.Aip.identifier.in_(candidates)).options(
            selectinload(m.Aip.versions).selectinload(m.AipVersion.files),
            selectinload(m.Aip.replicas), selectinload(m.Aip.dataset), selectinload(m.Aip.producer)))


def aip_events(session: Session, aip: m.Aip) -> list[m.Event]:
    return list(session.scalars(
        select(m.Event).where(m.Event.aip_id == aip.id).order_by(m.Event.seq)
        .options(selectinload(m.Event.agents).selectinload(m.EventAgent.agent))))


def list_aips(session: Session) -> list[m.Aip]:
    return list(session.scalars(
        select(m.Aip).order_by(m.Aip.created_at, m.Aip.id)
        .options(selectinload(m.Aip.dataset), selectinload(m.Aip.replicas),
                 selectinload(m.Aip.versions))))


def delivery(session: Session, identifier: str) -> m.Delivery | None:
    return session.scalar(select(m.Delivery).where(m.Delivery.identifier == identifier))


def jsonable_report(issues: list[Any]) -> dict[str, Any]:
    return {"issues": [i.to_dict() for i in issues]}
