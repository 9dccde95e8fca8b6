"""Submission agreements in the catalog: add (versioned, never overwritten), list, resolve for a delivery."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from oais.catalog import models as m
from oais.domain.agreement import DEFAULT_AGREEMENT_ID, Agreement, DeliveryManifest
from oais.domain.issues import Issue, IssueCode, error
from sip.agreement import AgreementError, default_agreement_xml, parse_agreement


class AgreementConflict(Exception):
    pass


def add_agreement(session: Session, data: bytes, now: datetime, name: str = "agreement.xml") -> tuple[m.Agreement, bool]:
    """Record an agreement version. Returns the row and whether it was new.

    The same id and version with other content is refused: a changed agreement is a new version.
    """
    agreement = parse_agreement(data, name)  # raises AgreementError with coded issues
    digest = hashlib.sha256(data).hexdigest()
    row = session.scalar(select(m.Agreement).where(m.Agreement.identifier == agreement.identifier,
                                                   m.Agreement.version == agreement.version))
    if row is not None:
        if row.sha256 != digest:
            raise AgreementConflict(
                f"agreement {agreement.ref} is already recorded with other content; "
                f"give the changed agreement a new version number")
        return row, False
    row = m.Agreement(identifier=agreement.identifier, version=agreement.version, producer=agreement.producer,
                      title=agreement.title, document=data.decode("utf-8"), sha256=digest, added_at=now)
    session.add(row)
    session.flush()
    return row, True


def ensure_default(session: Session, now: datetime) -> m.Agreement:
    row, _ = add_agreement(session, default_agreement_xml(), now, "default agreement")
    return row


def list_agreements(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(m.Agreement).order_by(m.Agreement.identifier, m.Agreement.version))
    return [{"id": r.identifier, "version": r.version, "producer": r.producer, "title": r.title,
             "sha256": r.sha256, "added": r.added_at.isoformat().replace("+00:00", "Z")} for r in rows]


def load(row: m.Agreement) -> Agreement:
    return parse_agreement(row.document.encode("utf-8"), f"agreement {row.identifier}/v{row.version}")


def resolve(session: Session, requested: str | None, manifest: DeliveryManifest, *, dataset: str,
            producer: str | None) -> tuple[m.Agreement | None, Agreement | None, list[Issue]]:
    """The agreement a delivery follows: the command line's, else the delivery's own, else the default.

    ``requested`` is ``ID`` or ``ID/vN``; without a version the newest version applies.
    """
    ref, version, source = requested, None, "command line"
    if ref and "/v" in ref and ref.rpartition("/v")[2].isdigit():
        ref, _, v = ref.rpartition("/v")
        version = int(v)
    if not ref and manifest.agreement_id:
        ref, version, source = manifest.agreement_id, manifest.agreement_version, manifest.source or "delivery"
    if not ref:
        ref, source = DEFAULT_AGREEMENT_ID, "default"
    query = select(m.Agreement).where(m.Agreement.identifier == ref)
    if version is not None:
        query = query.where(m.Agreement.version == version)
    row = session.scalar(query.order_by(m.Agreement.version.desc()).limit(1))
    if row is None:
        wanted = f"{ref}/v{version}" if version else ref
        return None, None, [error(IssueCode.AGREEMENT_UNKNOWN,
                                  f"agreement {wanted!r} (named by the {source}) is not recorded; "
                                  f"see 'oais agreement list'", source)]
    try:
        agreement = load(row)
    except AgreementError as exc:
        return row, None, exc.issues
    issues: list[Issue] = []
    if not agreement.covers_dataset(dataset):
        issues.append(error(IssueCode.AGREEMENT_SCOPE,
                            f"agreement {agreement.ref} does not cover dataset {dataset!r} "
                            f"(it covers: {', '.join(agreement.datasets)})"))
    if producer and not agreement.covers_producer(producer):
        issues.append(error(IssueCode.AGREEMENT_SCOPE,
                            f"agreement {agreement.ref} is with producer {agreement.producer!r}, "
                            f"not {producer!r}"))
    return row, agreement, issues
