"""The catalog's PREMIS event journal, written with SQLAlchemy Core on a caller's connection.

Events are appended, never updated or deleted; ``events.seq`` orders them. Each event names its
agents (``event_agents``), and an agent's row is created the first time an event names it. Used
through :func:`oais.catalog.repository.add_event` by the services that hold an ORM session, and
directly by those that work without the ORM (the fixity audit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import insert, select

from oais.catalog import tables as t
from oais.domain import premis

if TYPE_CHECKING:
    from sqlalchemy import Connection


def agent_id(conn: Connection, value: premis.Agent) -> int:
    """The id of the agent row for ``value`` (by its identifier), inserted on first use."""
    found = conn.execute(select(t.agents.c.id).where(t.agents.c.identifier == value.identifier)).scalar()
    if found is not None:
        return int(found)
    return int(conn.execute(insert(t.agents).values(
        identifier=value.identifier, name=value.name, type=str(value.type), version=value.version,
        note=value.note).returning(t.agents.c.id)).scalar_one())


def append_event(conn: Connection, value: premis.Event, agents: dict[str, premis.Agent], *,
                 aip_id: int | None = None, delivery_id: int | None = None,
                 agent_ids: dict[str, int] | None = None) -> int:
    """Append one PREMIS event and its agent links; returns its ``seq``.

    ``agents`` describes every agent ``value`` links to, by identifier. ``agent_ids``: the agent
    rows' ids already known to the caller (filled here), for a caller appending many events.
    """
    seq = int(conn.execute(insert(t.events).values(
        identifier=value.identifier, type=str(value.type), at=value.at, outcome=str(value.outcome),
        detail=value.detail or None, outcome_detail=value.outcome_detail or None, aip_id=aip_id,
        delivery_id=delivery_id, objects=list(value.objects)).returning(t.events.c.seq)).scalar_one())
    known = agent_ids if agent_ids is not None else {}
    links = []
    for link in value.agents:
        if link.identifier not in known:
            known[link.identifier] = agent_id(conn, agents[link.identifier])
        links.append({"event_seq": seq, "agent_id": known[link.identifier], "role": str(link.role)})
    if links:
        conn.execute(insert(t.event_agents), links)
    return seq
