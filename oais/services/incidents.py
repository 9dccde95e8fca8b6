"""Incidents: each preservation problem, with its timeline (detected, repaired, closed), and alerts.

Alerts go to the log always, and, when configured, by e-mail (SMTP) and to a webhook (JSON POST).
They are sent after the catalog transaction that opened the incident commits (``flush_alerts``).
"""

from __future__ import annotations

import http.client
import json
import logging
import smtplib
import urllib.request
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from oais.catalog import models as m
from oais.config import AlertSettings

log = logging.getLogger("oais.incidents")

__all__ = ["AlertSettings", "open_incident", "add_to_timeline", "pending_alerts", "send_alerts",
           "list_incidents"]


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def open_incident(s: Session, now: datetime, *, severity: str, kind: str, summary: str,
                  aip: m.Aip | None = None, location: str | None = None) -> m.Incident:
    """Open an incident, or add to the open one of the same kind for the same AIP copy."""
    existing = s.scalar(select(m.Incident).where(
        m.Incident.state == "open", m.Incident.kind == kind,
        m.Incident.aip_id == (aip.id if aip else None), m.Incident.location == location))
    if existing is not None:
        existing.timeline = [*existing.timeline, {"at": _iso(now), "what": "detected again", "detail": summary}]
        if severity == "critical":
            existing.severity = "critical"
        return existing
    incident = m.Incident(opened_at=now, severity=severity, kind=kind, state="open", aip_id=aip.id if aip else None,
                          location=location, summary=summary,
                          timeline=[{"at": _iso(now), "what": "detected", "detail": summary}])
    s.add(incident)
    s.flush()
    s.info.setdefault("alerts", []).append(_alert(incident, aip))
    log.log(logging.CRITICAL if severity == "critical" else logging.WARNING, "incident %s [%s] %s: %s",
            incident.id, severity, kind, summary)
    return incident


def add_to_timeline(incident: m.Incident, now: datetime, what: str, detail: str = "",
                    state: str | None = None) -> None:
    incident.timeline = [*incident.timeline, {"at": _iso(now), "what": what, "detail": detail}]
    if state:
        incident.state = state
        if state == "closed":
            incident.closed_at = now


def _alert(incident: m.Incident, aip: m.Aip | None) -> dict[str, Any]:
    return {"incident": incident.id, "severity": incident.severity, "kind": incident.kind,
            "aip_id": aip.identifier if aip else None, "location": incident.location,
            "summary": incident.summary, "opened_at": _iso(incident.opened_at)}


def pending_alerts(s: Session) -> list[dict[str, Any]]:
    return list(s.info.pop("alerts", []))


def send_alerts(alerts: list[dict[str, Any]], settings: AlertSettings | None) -> list[str]:
    """Send each alert by e-mail and webhook where configured; returns what failed (also logged)."""
    failures: list[str] = []
    if not settings:
        return failures
    for alert in alerts:
        subject = f"[oais-archive] {alert['severity']} incident {alert['incident']}: {alert['kind']}"
        if settings.smtp_host and settings.mail_to:
            try:
                msg = EmailMessage()
                msg["Subject"], msg["From"], msg["To"] = subject, settings.mail_from, ", ".join(settings.mail_to)
                msg.set_content(json.dumps(alert, indent=2))
                with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout) as smtp:
                    smtp.send_message(msg)
            except (OSError, smtplib.SMTPException) as exc:
                failures.append(f"e-mail: {exc}")
                log.error("alert e-mail for incident %s failed: %s", alert["incident"], exc)
        if settings.webhook_url:
            try:
                req = urllib.request.Request(settings.webhook_url, data=json.dumps(alert).encode(),
                                             headers={"Content-Type": "application/json"}, method="POST")
                with urllib.request.urlopen(req, timeout=settings.timeout) as resp:  # noqa: S310 - configured URL
                    resp.read()
            except (OSError, ValueError, http.client.HTTPException) as exc:  # unreachable, bad URL, not HTTP
                failures.append(f"webhook: {exc}")
                log.error("alert webhook for incident %s failed: %s", alert["incident"], exc)
    return failures


def list_incidents(s: Session, state: str | None = None) -> list[dict[str, Any]]:
    q = select(m.Incident).order_by(m.Incident.opened_at, m.Incident.id)
    if state:
        q = q.where(m.Incident.state == state)
    out = []
    for i in s.scalars(q):
        aip = s.get(m.Aip, i.aip_id) if i.aip_id else None
        out.append({"id": i.id, "opened_at": _iso(i.opened_at), "severity": i.severity, "kind": i.kind,
                    "state": i.state, "aip_id": aip.identifier if aip else None, "location": i.location,
                    "summary": i.summary, "closed_at": _iso(i.closed_at) if i.closed_at else None,
                    "timeline": i.timeline})
    return out
