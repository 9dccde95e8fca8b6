"""The catalog's tables, in SQLAlchemy Core: one ``MetaData`` for the whole catalog.

The ORM classes of :mod:`oais.catalog.models` are mapped onto these tables (declarative with
``__table__``), so there is one definition of the schema, and the migrations are compared with it.
Code that needs no ORM object reads and writes these tables directly, without importing the ORM or
the models: ``oais audit`` does (they took 0.15-0.2 s of the command's start, with the mappers'
configuration at the first query).

The catalog is an index of what storage holds; it can be rebuilt from the OCFL objects. Events are
append-only: rows are inserted, never updated or deleted, and ``events.seq`` gives their order.
Every time is stored in UTC. The meaning of each table is documented on its class in
:mod:`oais.catalog.models`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
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


metadata = MetaData(naming_convention=NAMING)


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True)


def _req(name: str, type_: Any, *args: Any, **kw: Any) -> Column[Any]:
    """A NOT NULL column."""
    return Column(name, type_, *args, nullable=False, **kw)


def _opt(name: str, type_: Any, *args: Any, **kw: Any) -> Column[Any]:
    """A column that may be NULL."""
    return Column(name, type_, *args, nullable=True, **kw)


def _fk(name: str, target: str, *, nullable: bool, **kw: Any) -> Column[int]:
    return Column(name, Integer, ForeignKey(target), nullable=nullable, **kw)


producers = Table(
    "producers", metadata,
    _id(),
    _req("name", String(200), unique=True),
    _req("created_at", UTCDateTime()),
)

datasets = Table(
    "datasets", metadata,
    _id(),
    _req("identifier", String(200), unique=True),
    _opt("title", Text),
    _fk("producer_id", "producers.id", nullable=True),
    _req("created_at", UTCDateTime()),
)

agents = Table(
    "agents", metadata,
    _id(),
    _req("identifier", String(300), unique=True),
    _req("name", String(300)),
    _req("type", String(3)),  # id.loc.gov agentType code: sof, per, org, har
    _opt("version", String(100)),
    _opt("note", Text),
)

agreements = Table(
    "agreements", metadata,
    _id(),
    _req("identifier", String(100)),
    _req("version", Integer),
    _req("producer", String(200)),
    _opt("title", Text),
    _req("document", Text),  # the XML as added
    _req("sha256", String(64)),
    _req("added_at", UTCDateTime()),
    UniqueConstraint("identifier", "version"),
)

deliveries = Table(
    "deliveries", metadata,
    _id(),
    _req("identifier", String(100), unique=True),
    _req("source", Text),  # where it was read from (never modified)
    _req("kind", String(20)),  # directory, bag, zip, tar
    _fk("dataset_id", "datasets.id", nullable=True),
    _fk("producer_id", "producers.id", nullable=True),
    _req("received_at", UTCDateTime()),
    _opt("finished_at", UTCDateTime()),
    _req("disposition", String(20)),  # received, accepted, refused, quarantined
    _opt("reason", Text),
    _opt("report", JSON),
    _opt("file_count", Integer),
    _opt("byte_count", BigInteger),
    _fk("agreement_id", "agreements.id", nullable=True),
    _opt("sip_id", String(200), unique=True),  # PAIS: unique per archive
    _opt("sip_sequence", Integer),
    _opt("quarantine_path", Text),  # staged copy kept for the archivist
)

aips = Table(
    "aips", metadata,
    _id(),
    _req("identifier", String(100), unique=True),
    _fk("dataset_id", "datasets.id", nullable=False, index=True),
    _fk("producer_id", "producers.id", nullable=True),
    _fk("delivery_id", "deliveries.id", nullable=True),
    _req("object_path", Text),  # OCFL object root, relative to each storage root
    _req("head_version", Integer),
    _req("created_at", UTCDateTime()),
)

aip_versions = Table(
    "aip_versions", metadata,
    _id(),
    _fk("aip_id", "aips.id", nullable=False),
    _req("number", Integer),
    _req("created_at", UTCDateTime()),
    _opt("message", Text),
    _req("inventory_sha512", String(128)),
    UniqueConstraint("aip_id", "number"),
)

files = Table(
    "files", metadata,
    _id(),
    _fk("version_id", "aip_versions.id", nullable=False),
    _req("path", Text),
    _req("content_path", Text),  # path inside the OCFL object (vN/content/...)
    _req("size", BigInteger),
    _req("sha256", String(64)),
    _req("sha512", String(128)),
    _opt("puid", String(50), index=True),
    _opt("mime", String(100)),
    _opt("format_name", String(200)),
    _req("role", String(20)),  # original, normalized, metadata, submission
    _opt("original_name", Text),
    UniqueConstraint("version_id", "path"),
    Index("ix_files_sha256", "sha256"),
    # the totals of a search without FITS criteria (all files, a dataset, an AIP) read each AIP
    # version's files here, not in the wide table rows (FITS criteria: ix_fits_headers_search)
    Index("ix_files_search_totals", "version_id", "role", "puid", "size"),
)

fits_headers = Table(
    "fits_headers", metadata,
    _id(),
    _fk("file_id", "files.id", nullable=False, unique=True),
    _fk("version_id", "aip_versions.id", nullable=False),  # = files.version_id
    _req("role", String(20)),  # = files.role
    _opt("puid", String(50)),  # = files.puid
    _req("size", BigInteger),  # = files.size
    _opt("telescope", String(100), index=True),
    _opt("instrument", String(100)),  # indexed by ix_fits_headers_search
    _opt("detector", String(100)),
    _opt("wavelength", Float, index=True),
    _opt("wave_unit", String(30)),
    _opt("exptime", Float),
    _opt("object", String(200)),
    _opt("level", String(30)),
    _opt("date_obs", String(40)),
    _opt("date_end", String(40)),
    _opt("obs_start", UTCDateTime(), index=True),
    _opt("obs_end", UTCDateTime(), index=True),
    _req("keywords", JSON),
    # instrument and wavelength, in observation order: a page of a search is read in index order
    # and stops at its limit; with the file's copied values, the totals read nothing else
    Index("ix_fits_headers_search", "instrument", "wavelength", "obs_start", "file_id",
          "version_id", "role", "puid", "size"),
)

replicas = Table(
    "replicas", metadata,
    _id(),
    _fk("aip_id", "aips.id", nullable=False),
    _req("location", String(100)),
    _req("state", String(20)),  # ok, missing, corrupt, unknown
    _opt("last_verified_at", UTCDateTime()),
    _opt("last_verified_ok", Boolean),  # None: never checked / could not check
    UniqueConstraint("aip_id", "location"),
)

stored_files = Table(
    "stored_files", metadata,
    _id(),
    _fk("replica_id", "replicas.id", nullable=False),
    _req("path", Text),  # relative to the object root
    _req("size", BigInteger),
    _req("sha512", String(128)),
    _opt("sha256", String(64)),  # None: a row from before revision 0007
    _opt("last_checked_at", UTCDateTime()),
    _opt("last_ok", Boolean),
    UniqueConstraint("replica_id", "path"),
    Index("ix_stored_files_due", "replica_id", "last_checked_at"),
)

fixity_checks = Table(
    "fixity_checks", metadata,
    _id(),
    _fk("stored_file_id", "stored_files.id", nullable=False),  # ix_fixity_checks_unit_audit
    _req("audit_id", String(100), index=True),
    _req("checked_at", UTCDateTime()),
    _req("outcome", String(10)),  # pass, fail, missing, error
    _opt("sha512_found", String(128)),
    _opt("sha256_found", String(64)),
    _opt("size_found", BigInteger),
    _opt("detail", Text),
    # "has this audit checked this file?" (resuming an audit) is one probe of this index
    Index("ix_fixity_checks_unit_audit", "stored_file_id", "audit_id"),
)

audits = Table(
    "audits", metadata,
    _id(),
    _req("identifier", String(100), unique=True),
    _req("scope", String(300), index=True),  # all, due:<location>, aip:<id>, location:<n>
    _req("started_at", UTCDateTime()),
    _opt("finished_at", UTCDateTime()),
    _req("files_checked", Integer, default=0),
    _req("bytes_checked", BigInteger, default=0),
    _req("failures", Integer, default=0),
)

incidents = Table(
    "incidents", metadata,
    _id(),
    _req("opened_at", UTCDateTime()),
    _req("severity", String(10)),  # critical, major, minor
    _req("kind", String(40)),  # fixity, missing-object, extra-file, ...
    _req("state", String(10)),  # open, repaired, closed
    _fk("aip_id", "aips.id", nullable=True, index=True),
    _opt("location", String(100)),
    _req("summary", Text),
    _opt("closed_at", UTCDateTime()),
    _req("timeline", JSON),
)

orders = Table(
    "orders", metadata,
    _id(),
    _req("identifier", String(100), unique=True),
    _req("user", String(200), index=True),
    _req("created_at", UTCDateTime()),
    _req("state", String(20), index=True),
    _req("request", JSON),  # selection and transforms as asked
    _req("frozen", JSON),  # [{aip_id, version, path, size, sha512}]
    _req("bytes_selected", BigInteger),
    _req("attempts", Integer),
    _opt("claimed_by", String(200)),
    _opt("claimed_until", UTCDateTime()),
    _opt("ready_at", UTCDateTime()),
    _opt("downloaded_at", UTCDateTime()),
    _opt("expires_at", UTCDateTime()),
    _opt("failure", Text),
    _opt("result_path", Text),
    _opt("result_sha256", String(64)),
    _opt("result_bytes", BigInteger),
)

scheduler_leases = Table(
    "scheduler_leases", metadata,
    Column("name", String(50), primary_key=True),
    _req("holder", String(200)),
    _req("expires_at", UTCDateTime()),
)

events = Table(
    "events", metadata,
    Column("seq", Integer, primary_key=True),
    _req("identifier", String(100), unique=True),
    _req("type", String(3), index=True),  # id.loc.gov eventType code
    _req("at", UTCDateTime()),
    _req("outcome", String(3)),  # suc, fai, war
    _opt("detail", Text),
    _opt("outcome_detail", Text),
    _fk("aip_id", "aips.id", nullable=True, index=True),
    _fk("delivery_id", "deliveries.id", nullable=True, index=True),
    _req("objects", JSON),  # linked PREMIS object identifiers
)

event_agents = Table(
    "event_agents", metadata,
    Column("event_seq", Integer, ForeignKey("events.seq"), primary_key=True),
    Column("agent_id", Integer, ForeignKey("agents.id"), primary_key=True),
    Column("role", String(3), primary_key=True),  # exe, imp, aut, val
)

access_rules = Table(
    "access_rules", metadata,
    _id(),
    _fk("dataset_id", "datasets.id", nullable=True, unique=True),
    _fk("aip_id", "aips.id", nullable=True, unique=True),
    _opt("embargo_until", UTCDateTime()),
    _req("users", JSON),
    _req("groups", JSON),
    _req("created_at", UTCDateTime()),
    _opt("note", Text),
    CheckConstraint("(dataset_id IS NULL) <> (aip_id IS NULL)", name="one_target"),
)
