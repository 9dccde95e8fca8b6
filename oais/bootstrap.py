"""The only module that names concrete classes: settings -> catalog, storage, validators, services."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from oais.config import (
    CONFIG_NAME,
    AlertSettings,
    ConfigError,
    Settings,
    default_config_text,
    load_settings,
    resolve_home,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from oais.services.audit import AuditPolicy
    from oais.services.ingest import IngestContext, ProgressFn
    from oais.services.orders import OrderSettings
    from oais.storage.local import LocalStorage
    from sip.receive import Limits


class CatalogOutOfDate(Exception):
    pass


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def new_urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


class XsdValidator:
    """Validates the METS and PREMIS an AIP carries against the installed official schemas."""

    def __init__(self) -> None:
        from oais.formats.xmlschema import METS_NS, PREMIS_NS, SchemaSet

        self.schemas = SchemaSet.installed()
        for namespace in (METS_NS, PREMIS_NS):  # fail now, before any delivery is touched
            self.schemas.schema(namespace)

    def errors(self, name: str, data: bytes) -> list[str]:
        return self.schemas.validate(data)


@dataclass
class Archive:
    settings: Settings
    engine: Engine
    locations: list[LocalStorage]

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """ORM sessions on the catalog, made on first use (``oais audit`` works without the ORM)."""
        from oais.catalog.db import session_factory

        return session_factory(self.engine)

    def ingest_context(self, progress: ProgressFn | None = None,
                       clock: Callable[[], datetime] = utc_now,
                       new_id: Callable[[], str] = new_urn) -> IngestContext:
        from oais.services.ingest import IngestContext

        return IngestContext(sessions=self.sessions, locations=self.locations, validator=XsdValidator(),
                             staging=self.settings.staging, quarantine=self.settings.quarantine,
                             clock=clock, new_id=new_id, progress=progress, limits=self.limits())

    def limits(self) -> Limits:
        from sip.receive import Limits

        lim = self.settings.limits
        return Limits(max_bytes=lim.max_bytes, max_files=lim.max_files, max_ratio=lim.max_ratio)

    def location_map(self) -> dict[str, LocalStorage]:
        return {loc.name: loc for loc in self.locations}

    def audit_policy(self, location: str | None = None) -> AuditPolicy:
        from datetime import timedelta

        from oais.services.audit import AuditPolicy

        a = self.settings.audit
        loc = self.settings.location(location) if location else None
        cycle = (loc.cycle_days if loc and loc.cycle_days else a.cycle_days)
        rate = self.settings.audit_mb_per_s(location)
        return AuditPolicy(cycle=timedelta(days=cycle), batch_files=a.batch_files,
                           batch_bytes=int(a.batch_gb * 1e9), max_bytes_per_s=rate * 1e6 if rate else None)

    def alert_settings(self) -> AlertSettings:
        return self.settings.alerts

    def order_settings(self) -> OrderSettings:
        from datetime import timedelta

        from oais.services.orders import OrderSettings

        a = self.settings.access
        return OrderSettings(quota_bytes=int(a.quota_gb * 1e9), expiry=timedelta(days=a.expiry_days),
                             claim=timedelta(seconds=a.claim_seconds), citation=a.citation,
                             acknowledgement=a.acknowledgement)

    @property
    def dips(self) -> Path:
        return self.settings.home / "dips"

    def required_locations(self) -> list[str]:
        return [loc.name for loc in self.settings.locations][: self.settings.copies_required]

    def close(self) -> None:
        self.engine.dispose()


def make_locations(settings: Settings) -> list[LocalStorage]:
    from aip.ocfl import storage_root_files
    from oais.storage.local import LocalStorage

    return [LocalStorage(loc.name, loc.path, fsync=settings.fsync, root_files=storage_root_files())
            for loc in settings.locations]


def open_archive(settings: Settings, *, check_schema: bool = True) -> Archive:
    from oais.catalog import db

    engine = db.make_engine(settings.catalog_url)
    if check_schema:
        current, head = db.current_revision(engine), db.head_revision()
        if current != head:
            engine.dispose()
            raise CatalogOutOfDate(
                f"the catalog at {engine.url.render_as_string(hide_password=True)} is at revision "
                f"{current or 'none'}, this software needs {head}: run 'oais db upgrade'")
    return Archive(settings=settings, engine=engine, locations=make_locations(settings))


def init_archive(home: str | Path | None = None) -> tuple[Settings, bool]:
    """Create (or complete) an archive home: config, folders, storage roots, catalog at head.

    An existing ``oais.toml`` is never overwritten. Returns the settings and whether the config was new.
    """
    from oais.catalog import db

    root = resolve_home(home)
    config = root / CONFIG_NAME
    created = False
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} exists and is not a folder")
    root.mkdir(parents=True, exist_ok=True)
    if not config.exists():
        config.write_text(default_config_text(root), encoding="utf-8")
        created = True
    settings = load_settings(root)
    for folder in (settings.staging, settings.quarantine):
        folder.mkdir(parents=True, exist_ok=True)
    for location in make_locations(settings):
        location.ensure_root()
    engine = db.make_engine(settings.catalog_url)
    try:
        db.upgrade(engine)
        from oais.services.agreements import ensure_default

        with db.session_factory(engine).begin() as session:
            ensure_default(session, utc_now())
    finally:
        engine.dispose()
    return settings, created
