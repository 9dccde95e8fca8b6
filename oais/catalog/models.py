"""Catalog ORM classes (SQLAlchemy 2 declarative), mapped onto the Core tables of
:mod:`oais.catalog.tables`, where the columns, constraints and indexes are defined once.

The catalog is an index of what storage holds; it can be rebuilt from the OCFL objects. Events are
append-only: rows are inserted, never updated or deleted, and ``events.seq`` gives their order.
Every time is stored in UTC. The annotations below type each mapped column for the type checker;
the table gives its SQL type and whether it may be NULL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import DeclarativeBase, Mapped, relationship

from oais.catalog import tables as t
from oais.catalog.tables import NAMING, UTCDateTime

__all__ = ["NAMING", "UTCDateTime", "Base"]


class Base(DeclarativeBase):
    metadata = t.metadata


class Producer(Base):
    __table__ = t.producers

    id: Mapped[int]
    name: Mapped[str]
    created_at: Mapped[datetime]


class Dataset(Base):
    __table__ = t.datasets

    id: Mapped[int]
    identifier: Mapped[str]
    title: Mapped[str | None]
    producer_id: Mapped[int | None]
    created_at: Mapped[datetime]

    producer: Mapped[Producer | None] = relationship()


class Agent(Base):
    """A PREMIS agent: software (with its version), person, organization or hardware."""

    __table__ = t.agents

    id: Mapped[int]
    identifier: Mapped[str]
    name: Mapped[str]
    type: Mapped[str]  # id.loc.gov agentType code: sof, per, org, har
    version: Mapped[str | None]
    note: Mapped[str | None]


class Agreement(Base):
    """A submission agreement, versioned: a new version is a new row, old ones stay for the record."""

    __table__ = t.agreements

    id: Mapped[int]
    identifier: Mapped[str]
    version: Mapped[int]
    producer: Mapped[str]
    title: Mapped[str | None]
    document: Mapped[str]  # the XML as added
    sha256: Mapped[str]
    added_at: Mapped[datetime]


class Delivery(Base):
    """One submission received from a producer, whatever became of it."""

    __table__ = t.deliveries

    id: Mapped[int]
    identifier: Mapped[str]
    source: Mapped[str]  # where it was read from (never modified)
    kind: Mapped[str]  # directory, bag, zip, tar
    dataset_id: Mapped[int | None]
    producer_id: Mapped[int | None]
    received_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    disposition: Mapped[str]  # received, accepted, refused, quarantined
    reason: Mapped[str | None]
    report: Mapped[dict[str, Any] | None]
    file_count: Mapped[int | None]
    byte_count: Mapped[int | None]
    agreement_id: Mapped[int | None]
    sip_id: Mapped[str | None]  # PAIS: unique per archive
    sip_sequence: Mapped[int | None]
    quarantine_path: Mapped[str | None]  # staged copy kept for the archivist

    dataset: Mapped[Dataset | None] = relationship()
    producer: Mapped[Producer | None] = relationship()
    agreement: Mapped[Agreement | None] = relationship()


class Aip(Base):
    __table__ = t.aips

    id: Mapped[int]
    identifier: Mapped[str]
    dataset_id: Mapped[int]
    producer_id: Mapped[int | None]
    delivery_id: Mapped[int | None]
    object_path: Mapped[str]  # OCFL object root, relative to each storage root
    head_version: Mapped[int]
    created_at: Mapped[datetime]

    dataset: Mapped[Dataset] = relationship()
    producer: Mapped[Producer | None] = relationship()
    delivery: Mapped[Delivery | None] = relationship()
    versions: Mapped[list[AipVersion]] = relationship(back_populates="aip", order_by="AipVersion.number")
    replicas: Mapped[list[Replica]] = relationship(back_populates="aip", order_by="Replica.location")


class AipVersion(Base):
    __table__ = t.aip_versions

    id: Mapped[int]
    aip_id: Mapped[int]
    number: Mapped[int]
    created_at: Mapped[datetime]
    message: Mapped[str | None]
    inventory_sha512: Mapped[str]

    aip: Mapped[Aip] = relationship(back_populates="versions")
    files: Mapped[list[File]] = relationship(back_populates="version", order_by="File.path")


class File(Base):
    """One file of one AIP version (logical path in the OCFL object)."""

    __table__ = t.files

    id: Mapped[int]
    version_id: Mapped[int]
    path: Mapped[str]
    content_path: Mapped[str]  # path inside the OCFL object (vN/content/...)
    size: Mapped[int]
    sha256: Mapped[str]
    sha512: Mapped[str]
    puid: Mapped[str | None]
    mime: Mapped[str | None]
    format_name: Mapped[str | None]
    role: Mapped[str]  # original, normalized, metadata, submission
    original_name: Mapped[str | None]

    version: Mapped[AipVersion] = relationship(back_populates="files")


class FitsHeader(Base):
    """Searchable FITS keywords of one file, merged over its HDUs (first HDU holding each keyword).

    ``date_obs``/``date_end`` are kept as written; ``obs_start``/``obs_end`` are the parsed UTC times
    when the text is ISO 8601. ``keywords`` holds every extracted keyword per HDU.

    ``version_id``, ``role``, ``puid`` and ``size`` are copies of the file's own values, written with
    it in the same transaction (revision 0008). A ``files`` row never changes once written (an AIP
    version is immutable), so the copies cannot drift. With them in ``ix_fits_headers_search``, a
    search's totals read one index range instead of looking up every match in ``files``.
    """

    __table__ = t.fits_headers

    id: Mapped[int]
    file_id: Mapped[int]
    version_id: Mapped[int]  # = files.version_id
    role: Mapped[str]  # = files.role
    puid: Mapped[str | None]  # = files.puid
    size: Mapped[int]  # = files.size
    telescope: Mapped[str | None]
    instrument: Mapped[str | None]  # indexed by ix_fits_headers_search
    detector: Mapped[str | None]
    wavelength: Mapped[float | None]
    wave_unit: Mapped[str | None]
    exptime: Mapped[float | None]
    object: Mapped[str | None]
    level: Mapped[str | None]
    date_obs: Mapped[str | None]
    date_end: Mapped[str | None]
    obs_start: Mapped[datetime | None]
    obs_end: Mapped[datetime | None]
    keywords: Mapped[dict[str, Any]]

    file: Mapped[File] = relationship()


class Replica(Base):
    """One copy of an AIP in one storage location."""

    __table__ = t.replicas

    id: Mapped[int]
    aip_id: Mapped[int]
    location: Mapped[str]
    state: Mapped[str]  # ok, missing, corrupt, unknown
    last_verified_at: Mapped[datetime | None]
    last_verified_ok: Mapped[bool | None]  # None: never checked / could not check

    aip: Mapped[Aip] = relationship(back_populates="replicas")


class StoredFile(Base):
    """One file of one AIP's OCFL object in one replica: the unit of the rolling fixity audit.

    Covers content files and the object's own files (declaration, inventories and sidecars).
    ``sha256`` is the digest the audit verifies (with the size); rows written before revision 0007
    have none (NULL) and are verified by their ``sha512``, which every row keeps.
    ``last_ok`` is True (matched), False (did not match or missing) or None (never checked, or could
    not be read: "could not check" is never a pass).
    """

    __table__ = t.stored_files

    id: Mapped[int]
    replica_id: Mapped[int]
    path: Mapped[str]  # relative to the object root
    size: Mapped[int]
    sha512: Mapped[str]
    sha256: Mapped[str | None]  # None: a row from before revision 0007
    last_checked_at: Mapped[datetime | None]
    last_ok: Mapped[bool | None]

    replica: Mapped[Replica] = relationship()


class FixityCheck(Base):
    """One check of one stored file (append-only): when, outcome, digest found.

    The digest found is in the column of the algorithm checked: ``sha256_found`` when the stored file
    has a sha256, else ``sha512_found`` (rows from before revision 0007); the other one is NULL, and
    both are NULL when the file could not be read.
    """

    __table__ = t.fixity_checks

    id: Mapped[int]
    stored_file_id: Mapped[int]  # ix_fixity_checks_unit_audit
    audit_id: Mapped[str]
    checked_at: Mapped[datetime]
    outcome: Mapped[str]  # pass, fail, missing, error
    sha512_found: Mapped[str | None]
    sha256_found: Mapped[str | None]
    size_found: Mapped[int | None]
    detail: Mapped[str | None]


class Audit(Base):
    """One audit run: a scope, when it started and finished. An unfinished audit of the same scope is
    resumed, not restarted: its files are those not checked since it started."""

    __table__ = t.audits

    id: Mapped[int]
    identifier: Mapped[str]
    scope: Mapped[str]  # all, due:<location>, aip:<id>, location:<n>
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    files_checked: Mapped[int]
    bytes_checked: Mapped[int]
    failures: Mapped[int]


class Incident(Base):
    """A preservation problem and its timeline (detected, repaired, closed)."""

    __table__ = t.incidents

    id: Mapped[int]
    opened_at: Mapped[datetime]
    severity: Mapped[str]  # critical, major, minor
    kind: Mapped[str]  # fixity, missing-object, extra-file, ...
    state: Mapped[str]  # open, repaired, closed
    aip_id: Mapped[int | None]
    location: Mapped[str | None]
    summary: Mapped[str]
    closed_at: Mapped[datetime | None]
    timeline: Mapped[list[dict[str, Any]]]


class Order(Base):
    """A DIP order: who, what (a frozen list of AIP versions and files, so it can be re-run exactly),
    the transforms, and its state: queued -> running -> ready -> downloaded | expired, or failed."""

    __table__ = t.orders

    id: Mapped[int]
    identifier: Mapped[str]
    user: Mapped[str]
    created_at: Mapped[datetime]
    state: Mapped[str]
    request: Mapped[dict[str, Any]]  # selection and transforms as asked
    frozen: Mapped[list[dict[str, Any]]]  # [{aip_id, version, path, size, sha512}]
    bytes_selected: Mapped[int]
    attempts: Mapped[int]
    claimed_by: Mapped[str | None]
    claimed_until: Mapped[datetime | None]
    ready_at: Mapped[datetime | None]
    downloaded_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    failure: Mapped[str | None]
    result_path: Mapped[str | None]
    result_sha256: Mapped[str | None]
    result_bytes: Mapped[int | None]


class SchedulerLease(Base):
    """Only the holder of an unexpired lease runs scheduled jobs (one scheduler across hosts)."""

    __table__ = t.scheduler_leases

    name: Mapped[str]
    holder: Mapped[str]
    expires_at: Mapped[datetime]


class Event(Base):
    """A PREMIS event. Append-only: ``seq`` orders the journal."""

    __table__ = t.events

    seq: Mapped[int]
    identifier: Mapped[str]
    type: Mapped[str]  # id.loc.gov eventType code
    at: Mapped[datetime]
    outcome: Mapped[str]  # suc, fai, war
    detail: Mapped[str | None]
    outcome_detail: Mapped[str | None]
    aip_id: Mapped[int | None]
    delivery_id: Mapped[int | None]
    objects: Mapped[list[str]]  # linked PREMIS object identifiers

    agents: Mapped[list[EventAgent]] = relationship(order_by="EventAgent.role")


class EventAgent(Base):
    __table__ = t.event_agents

    event_seq: Mapped[int]
    agent_id: Mapped[int]
    role: Mapped[str]  # exe, imp, aut, val

    agent: Mapped[Agent] = relationship()


class AccessRule(Base):
    """An embargo or a restriction on one dataset or one AIP (exactly one of the two is set).

    ``embargo_until`` set: before that time only ``users``/``groups`` (if any) see the holdings, from
    it on everyone does (evaluated against the current time: no manual step). ``embargo_until`` unset:
    a restriction, only ``users``/``groups``, always. See ``oais.services.access``.
    """

    __table__ = t.access_rules

    id: Mapped[int]
    dataset_id: Mapped[int | None]
    aip_id: Mapped[int | None]
    embargo_until: Mapped[datetime | None]
    users: Mapped[list[str]]
    groups: Mapped[list[str]]
    created_at: Mapped[datetime]
    note: Mapped[str | None]

    dataset: Mapped[Dataset | None] = relationship()
    aip: Mapped[Aip | None] = relationship()
