"""Catalog tables (SQLAlchemy 2 declarative models).

The catalog is an index of what storage holds; it can be rebuilt from the OCFL objects. Events are
append-only: rows are inserted, never updated or deleted, and ``events.seq`` gives their order.
Every time is stored in UTC.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalog; pass a timezone-aware time")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}


class Producer(Base):
    __tablename__ = "producers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str | None] = mapped_column(Text)
    producer_id: Mapped[int | None] = mapped_column(ForeignKey("producers.id"))
    created_at: Mapped[datetime]

    producer: Mapped[Producer | None] = relationship()


class Agent(Base):
    """A PREMIS agent: software (with its version), person, organization or hardware."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(300), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    type: Mapped[str] = mapped_column(String(3))  # id.loc.gov agentType code: sof, per, org, har
    version: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)


class Agreement(Base):
    """A submission agreement, versioned: a new version is a new row, old ones stay for the record."""

    __tablename__ = "agreements"
    __table_args__ = (UniqueConstraint("identifier", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    producer: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(Text)
    document: Mapped[str] = mapped_column(Text)  # the XML as added
    sha256: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime]


class Delivery(Base):
    """One submission received from a producer, whatever became of it."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(100), unique=True)
    source: Mapped[str] = mapped_column(Text)  # where it was read from (never modified)
    kind: Mapped[str] = mapped_column(String(20))  # directory, bag, zip, tar
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"))
    producer_id: Mapped[int | None] = mapped_column(ForeignKey("producers.id"))
    received_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    disposition: Mapped[str] = mapped_column(String(20))  # received, accepted, refused, quarantined
    reason: Mapped[str | None] = mapped_column(Text)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    file_count: Mapped[int | None] = mapped_column(Integer)
    byte_count: Mapped[int | None] = mapped_column(BigInteger)
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("agreements.id"))
    sip_id: Mapped[str | None] = mapped_column(String(200), unique=True)  # PAIS: unique per archive
    sip_sequence: Mapped[int | None] = mapped_column(Integer)
    quarantine_path: Mapped[str | None] = mapped_column(Text)  # staged copy kept for the archivist

    dataset: Mapped[Dataset | None] = relationship()
    producer: Mapped[Producer | None] = relationship()
    agreement: Mapped[Agreement | None] = relationship()


class Aip(Base):
    __tablename__ = "aips"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(100), unique=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    producer_id: Mapped[int | None] = mapped_column(ForeignKey("producers.id"))
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"))
    object_path: Mapped[str] = mapped_column(Text)  # OCFL object root, relative to each storage root
    head_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]

    dataset: Mapped[Dataset] = relationship()
    producer: Mapped[Producer | None] = relationship()
    delivery: Mapped[Delivery | None] = relationship()
    versions: Mapped[list[AipVersion]] = relationship(back_populates="aip", order_by="AipVersion.number")
    replicas: Mapped[list[Replica]] = relationship(back_populates="aip", order_by="Replica.location")


class AipVersion(Base):
    __tablename__ = "aip_versions"
    __table_args__ = (UniqueConstraint("aip_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    aip_id: Mapped[int] = mapped_column(ForeignKey("aips.id"))
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    message: Mapped[str | None] = mapped_column(Text)
    inventory_sha512: Mapped[str] = mapped_column(String(128))

    aip: Mapped[Aip] = relationship(back_populates="versions")
    files: Mapped[list[File]] = relationship(back_populates="version", order_by="File.path")


class File(Base):
    """One file of one AIP version (logical path in the OCFL object)."""

    __tablename__ = "files"
    __table_args__ = (
        UniqueConstraint("version_id", "path"),
        Index("ix_files_sha256", "sha256"),
        # the totals of a search without FITS criteria (all files, a dataset, an AIP) read each AIP
        # version's files here, not in the wide table rows (FITS criteria: ix_fits_headers_search)
        Index("ix_files_search_totals", "version_id", "role", "puid", "size"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("aip_versions.id"))
    path: Mapped[str] = mapped_column(Text)
    content_path: Mapped[str] = mapped_column(Text)  # path inside the OCFL object (vN/content/...)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    sha512: Mapped[str] = mapped_column(String(128))
    puid: Mapped[str | None] = mapped_column(String(50), index=True)
    mime: Mapped[str | None] = mapped_column(String(100))
    format_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))  # original, normalized, metadata, submission
    original_name: Mapped[str | None] = mapped_column(Text)

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

    __tablename__ = "fits_headers"
    __table_args__ = (
        # instrument and wavelength, in observation order: a page of a search is read in index order
        # and stops at its limit; with the file's copied values, the totals read nothing else
        Index("ix_fits_headers_search", "instrument", "wavelength", "obs_start", "file_id",
              "version_id", "role", "puid", "size"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id"), unique=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("aip_versions.id"))  # = files.version_id
    role: Mapped[str] = mapped_column(String(20))  # = files.role
    puid: Mapped[str | None] = mapped_column(String(50))  # = files.puid
    size: Mapped[int] = mapped_column(BigInteger)  # = files.size
    telescope: Mapped[str | None] = mapped_column(String(100), index=True)
    instrument: Mapped[str | None] = mapped_column(String(100))  # indexed by ix_fits_headers_search
    detector: Mapped[str | None] = mapped_column(String(100))
    wavelength: Mapped[float | None] = mapped_column(Float, index=True)
    wave_unit: Mapped[str | None] = mapped_column(String(30))
    exptime: Mapped[float | None] = mapped_column(Float)
    object: Mapped[str | None] = mapped_column(String(200))
    level: Mapped[str | None] = mapped_column(String(30))
    date_obs: Mapped[str | None] = mapped_column(String(40))
    date_end: Mapped[str | None] = mapped_column(String(40))
    obs_start: Mapped[datetime | None] = mapped_column(index=True)
    obs_end: Mapped[datetime | None] = mapped_column(index=True)
    keywords: Mapped[dict[str, Any]] = mapped_column(JSON)

    file: Mapped[File] = relationship()


class Replica(Base):
    """One copy of an AIP in one storage location."""

    __tablename__ = "replicas"
    __table_args__ = (UniqueConstraint("aip_id", "location"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    aip_id: Mapped[int] = mapped_column(ForeignKey("aips.id"))
    location: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20))  # ok, missing, corrupt, unknown
    last_verified_at: Mapped[datetime | None]
    last_verified_ok: Mapped[bool | None] = mapped_column(Boolean)  # None: never checked / could not check

    aip: Mapped[Aip] = relationship(back_populates="replicas")


class StoredFile(Base):
    """One file of one AIP's OCFL object in one replica: the unit of the rolling fixity audit.

    Covers content files and the object's own files (declaration, inventories and sidecars).
    ``sha256`` is the digest the audit verifies (with the size); rows written before revision 0007
    have none (NULL) and are verified by their ``sha512``, which every row keeps.
    ``last_ok`` is True (matched), False (did not match or missing) or None (never checked, or could
    not be read: "could not check" is never a pass).
    """

    __tablename__ = "stored_files"
    __table_args__ = (
        UniqueConstraint("replica_id", "path"),
        Index("ix_stored_files_due", "replica_id", "last_checked_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    replica_id: Mapped[int] = mapped_column(ForeignKey("replicas.id"))
    path: Mapped[str] = mapped_column(Text)  # relative to the object root
    size: Mapped[int] = mapped_column(BigInteger)
    sha512: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str | None] = mapped_column(String(64))  # None: a row from before revision 0007
    last_checked_at: Mapped[datetime | None]
    last_ok: Mapped[bool | None] = mapped_column(Boolean)

    replica: Mapped[Replica] = relationship()


class FixityCheck(Base):
    """One check of one stored file (append-only): when, outcome, digest found.

    The digest found is in the column of the algorithm checked: ``sha256_found`` when the stored file
    has a sha256, else ``sha512_found`` (rows from before revision 0007); the other one is NULL, and
    both are NULL when the file could not be read.
    """

    __tablename__ = "fixity_checks"
    __table_args__ = (
        # "has this audit checked this file?" (resuming an audit) is one probe of this index
        Index("ix_fixity_checks_unit_audit", "stored_file_id", "audit_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stored_file_id: Mapped[int] = mapped_column(ForeignKey("stored_files.id"))  # ix_fixity_checks_unit_audit
    audit_id: Mapped[str] = mapped_column(String(100), index=True)
    checked_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(10))  # pass, fail, missing, error
    sha512_found: Mapped[str | None] = mapped_column(String(128))
    sha256_found: Mapped[str | None] = mapped_column(String(64))
    size_found: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str | None] = mapped_column(Text)


class Audit(Base):
    """One audit run: a scope, when it started and finished. An unfinished audit of the same scope is
    resumed, not restarted: its files are those not checked since it started."""

    __tablename__ = "audits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(100), unique=True)
    scope: Mapped[str] = mapped_column(String(300), index=True)  # all, due:<location>, aip:<id>, location:<n>
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    files_checked: Mapped[int] = mapped_column(Integer, default=0)
    bytes_checked: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)


class Incident(Base):
    """A preservation problem and its timeline (detected, repaired, closed)."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    opened_at: Mapped[datetime]
    severity: Mapped[str] = mapped_column(String(10))  # critical, major, minor
    kind: Mapped[str] = mapped_column(String(40))  # fixity, missing-object, extra-file, ...
    state: Mapped[str] = mapped_column(String(10))  # open, repaired, closed
    aip_id: Mapped[int | None] = mapped_column(ForeignKey("aips.id"), index=True)
    location: Mapped[str | None] = mapped_column(String(100))
    summary: Mapped[str] = mapped_column(Text)
    closed_at: Mapped[datetime | None]
    timeline: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class Order(Base):
    """A DIP order: who, what (a frozen list of AIP versions and files, so it can be re-run exactly),
    the transforms, and its state: queued -> running -> ready -> downloaded | expired, or failed."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(100), unique=True)
    user: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20), index=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)  # selection and transforms as asked
    frozen: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{aip_id, version, path, size, sha512}]
    bytes_selected: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None]
    ready_at: Mapped[datetime | None]
    downloaded_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    failure: Mapped[str | None] = mapped_column(Text)
    result_path: Mapped[str | None] = mapped_column(Text)
    result_sha256: Mapped[str | None] = mapped_column(String(64))
    result_bytes: Mapped[int | None] = mapped_column(BigInteger)


class SchedulerLease(Base):
    """Only the holder of an unexpired lease runs scheduled jobs (one scheduler across hosts)."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]


class Event(Base):
    """A PREMIS event. Append-only: ``seq`` orders the journal."""

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(100), unique=True)
    type: Mapped[str] = mapped_column(String(3), index=True)  # id.loc.gov eventType code
    at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(3))  # suc, fai, war
    detail: Mapped[str | None] = mapped_column(Text)
    outcome_detail: Mapped[str | None] = mapped_column(Text)
    aip_id: Mapped[int | None] = mapped_column(ForeignKey("aips.id"), index=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), index=True)
    objects: Mapped[list[str]] = mapped_column(JSON)  # linked PREMIS object identifiers

    agents: Mapped[list[EventAgent]] = relationship(order_by="EventAgent.role")


class EventAgent(Base):
    __tablename__ = "event_agents"

    event_seq: Mapped[int] = mapped_column(ForeignKey("events.seq"), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(3), primary_key=True)  # exe, imp, aut, val

    agent: Mapped[Agent] = relationship()


class AccessRule(Base):
    """An embargo or a restriction on one dataset or one AIP (exactly one of the two is set).

    ``embargo_until`` set: before that time only ``users``/``groups`` (if any) see the holdings, from
    it on everyone does (evaluated against the current time: no manual step). ``embargo_until`` unset:
    a restriction, only ``users``/``groups``, always. See ``oais.services.access``.
    """

    __tablename__ = "access_rules"
    __table_args__ = (CheckConstraint("(dataset_id IS NULL) <> (aip_id IS NULL)", name="one_target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), unique=True)
    aip_id: Mapped[int | None] = mapped_column(ForeignKey("aips.id"), unique=True)
    embargo_until: Mapped[datetime | None]
    users: Mapped[list[str]] = mapped_column(JSON)
    groups: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)

    dataset: Mapped[Dataset | None] = relationship()
    aip: Mapped[Aip | None] = relationship()
