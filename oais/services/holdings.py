"""What the archive holds: AIP listings and details, as plain dicts ready for JSON or a page."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from oais.catalog import models as m
from oais.catalog import repository as repo


class NotFound(Exception):
    pass


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def list_aips(session: Session) -> list[dict[str, Any]]:
    out = []
    for aip in repo.list_aips(session):
        head = aip.versions[-1] if aip.versions else None
        out.append({
            "aip_id": aip.identifier,
            "version": aip.head_version,
            "dataset": aip.dataset.identifier,
            "created": _iso(aip.created_at),
            "files": len(head.files) if head else 0,
            "bytes": sum(f.size for f in head.files) if head else 0,
            "replicas": [{"location": r.location, "state": r.state} for r in aip.replicas],
        })
    return out


def show_aip(session: Session, identifier: str) -> dict[str, Any]:
    aip = repo.find_aip(session, identifier)
    if aip is None:
        raise NotFound(f"no AIP {identifier!r} in the catalog (see 'oais aip list')")
    head = aip.versions[-1]
    events = repo.aip_events(session, aip)
    return {
        "aip_id": aip.identifier,
        "version": aip.head_version,
        "dataset": aip.dataset.identifier,
        "producer": aip.producer.name if aip.producer else None,
        "delivery": aip.delivery.identifier if aip.delivery else None,
        "created": _iso(aip.created_at),
        "object_path": aip.object_path,
        "versions": [{"version": v.number, "created": _iso(v.created_at), "message": v.message,
                      "inventory_sha512": v.inventory_sha512} for v in aip.versions],
        "files": [{
            "path": f.path, "content_path": f.content_path, "size": f.size, "sha256": f.sha256,
            "sha512": f.sha512, "role": f.role, "format": f.puid, "mime": f.mime,
            "original_name": f.original_name,
        } for f in head.files],
        "replicas": [{"location": r.location, "state": r.state,
                      "last_verified": _iso(r.last_verified_at), "last_verified_ok": r.last_verified_ok}
                     for r in aip.replicas],
        "events": [_event(e) for e in events],
    }


def _event(e: m.Event) -> dict[str, Any]:
    from oais.domain.premis import EventType, Outcome

    return {
        "id": e.identifier,
        "type": e.type,
        "type_label": EventType(e.type).label,
        "outcome": e.outcome,
        "outcome_label": Outcome(e.outcome).label,
        "at": _iso(e.at),
        "detail": e.detail,
        "outcome_detail": e.outcome_detail,
        "agents": [{"agent": a.agent.identifier, "role": a.role} for a in e.agents],
    }
