"""Settings: one typed, validated object read once at the entry point.

Sources, in order of precedence: the environment (``OAIS_CATALOG_URL``), then ``<home>/oais.toml``.
The archive home comes from ``--home``, else ``OAIS_HOME``, else ``DEFAULT_HOME``.
Errors name the offending key, e.g. ``oais.toml: storage.locations[1].path: must be a string``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_NAME = "oais.toml"
DEFAULT_HOME = Path("~/.local/share/oais-archive")
"""Used when neither ``--home`` nor ``OAIS_HOME`` is given."""

ENV_HOME = "OAIS_HOME"
ENV_CATALOG_URL = "OAIS_CATALOG_URL"


class ConfigError(Exception):
    """The configuration is missing or invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Location:
    """A storage location holding one replica of every AIP."""

    name: str
    kind: str  # "local" (S3 later)
    path: Path
    cycle_days: float | None = None  # audit cycle for this location (default: [audit] cycle_days)
    max_mb_per_s: float | None = None  # read-rate cap while auditing (default: [audit] max_mb_per_s)


@dataclass(frozen=True)
class AuditSettings:
    cycle_days: float = 90.0
    interval_hours: float = 24.0  # how often the scheduler runs a rolling batch
    batch_files: int = 50_000
    batch_gb: float = 500.0
    max_mb_per_s: float | None = None
    replica_check_hours: float = 24.0


@dataclass(frozen=True)
class AlertSettings:
    smtp_host: str | None = None
    smtp_port: int = 25
    mail_from: str = "oais-archive@localhost"
    mail_to: tuple[str, ...] = ()
    webhook_url: str | None = None
    timeout: float = 10.0  # seconds per SMTP or webhook attempt


@dataclass(frozen=True)
class IntakeLimits:
    """Bounds on what one delivery may expand to (``[limits]``); a zip bomb stops at them."""

    max_bytes: int = 1 << 40
    max_files: int = 100_000
    max_ratio: float = 200.0


@dataclass(frozen=True)
class AccessSettings:
    quota_gb: float = 50.0  # per user, over orders queued, running or ready
    expiry_days: float = 14.0  # a ready DIP is removed after this
    citation: str = ""
    acknowledgement: str = ""
    claim_seconds: float = 600.0  # a worker's hold on an order; a killed worker's order is retried after it


@dataclass(frozen=True)
class Settings:
    home: Path
    catalog_url: str
    locations: tuple[Location, ...]
    copies_required: int
    staging: Path
    quarantine: Path
    fsync: bool = True
    quarantine_retention_days: int = 180
    limits: IntakeLimits = IntakeLimits()
    audit: AuditSettings = AuditSettings()
    alerts: AlertSettings = AlertSettings()
    access: AccessSettings = AccessSettings()
    drop_folder: Path | None = None
    drop_folder_dataset: str | None = None
    source: Path | None = field(default=None, compare=False)

    def location(self, name: str) -> Location:
        for loc in self.locations:
            if loc.name == name:
                return loc
        raise ConfigError(f"no storage location named {name!r}")

    def audit_mb_per_s(self, location: str | None = None) -> float | None:
        """The read-rate cap, MB/s, of an audit of ``location`` (of the whole archive when None): the
        location's own ``max_mb_per_s``, else ``[audit] max_mb_per_s``; None when uncapped."""
        loc = self.location(location) if location else None
        return loc.max_mb_per_s if loc and loc.max_mb_per_s else self.audit.max_mb_per_s


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The archive home: the argument, else ``$OAIS_HOME``, else ``DEFAULT_HOME``."""
    raw = home if home is not None else os.environ.get(ENV_HOME) or DEFAULT_HOME
    return Path(raw).expanduser().resolve()


def default_config_text(home: Path) -> str:
    """The ``oais.toml`` written by ``oais init``; relative paths are relative to the home."""
    return f"""\
# oais-archive configuration. Relative paths are relative to this file's folder.
# The environment variable {ENV_CATALOG_URL} overrides [catalog].url.

[catalog]
# SQLAlchemy URL. Default: a SQLite file in the archive home.
# PostgreSQL example: "postgresql+psycopg://user@host:5432/oais"
url = "sqlite:///{(home / 'catalog.sqlite').as_posix()}"

[storage]
# Every AIP is written to this many locations (at least 1, at most the number of locations).
copies_required = 2
# Call fsync on files and folders before an object is renamed into place.
fsync = true

[[storage.locations]]
name = "replica-a"
kind = "local"
path = "replica-a"

[[storage.locations]]
name = "replica-b"
kind = "local"
path = "replica-b"

[paths]
# Deliveries are copied here before anything reads them; the producer's input is never touched.
staging = "staging"
# Staged copies of refused deliveries are kept here for the archivist ...
quarantine = "quarantine"
# ... for this many days ('oais quarantine purge' removes older ones).
quarantine_retention_days = 180

[limits]
# What one delivery may expand to: bytes in all, number of members, and expanded size / archive size.
max_bytes = 1099511627776
max_files = 100000
max_ratio = 200.0

[audit]
# Every file of every replica is re-read and checked within this many days, oldest-verified first.
cycle_days = 90
# The scheduler runs a rolling batch this often, capped by files and GB; 0 MB/s means no read cap.
interval_hours = 24
batch_files = 50000
batch_gb = 500
max_mb_per_s = 0
replica_check_hours = 24
# A location may have its own cycle_days and max_mb_per_s (e.g. nearline or tape).

[alerts]
# Incidents always go to the log; also by e-mail and to a webhook when these are set.
# smtp_host = "localhost"
# smtp_port = 25
# mail_from = "oais-archive@example.org"
# mail_to = ["archivist@example.org"]
# webhook_url = "http://localhost:9000/hooks/oais"

[access]
# Per-user quota over active DIP orders, and how long a ready DIP is kept.
quota_gb = 50
expiry_days = 14
# A worker's hold on an order it renders; if the worker dies, another takes the order after this.
claim_seconds = 600
citation = "IDOC (Integrated Data and Operation Centre), IAS, CNRS / Université Paris-Saclay"
acknowledgement = "Data provided by IDOC."

[scheduler]
# drop_folder = "/data/drop"
# drop_folder_dataset = "soho-eit"
"""


def _get(table: dict[str, Any], key: str, where: str, typ: type, default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"{where}.{key}: missing")
        return default
    value = table[key]
    if typ is int and isinstance(value, bool) or not isinstance(value, typ):
        raise ConfigError(f"{where}.{key}: must be {typ.__name__}, got {type(value).__name__} {value!r}")
    return value


def _table(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}{key}: must be a table")
    return value


def parse_settings(doc: dict[str, Any], home: Path, *, source: str = CONFIG_NAME,
                   environ: dict[str, str] | os._Environ[str] | None = None) -> Settings:
    """Validate a parsed TOML document; every error names ``source`` and the key."""
    env = os.environ if environ is None else environ
    try:
        known = {"catalog", "storage", "paths", "limits", "audit", "alerts", "scheduler", "access"}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown section (expected one of {sorted(known)})")

        def rel(p: str) -> Path:
            path = Path(p).expanduser()
            return path if path.is_absolute() else home / path

        catalog = _table(doc, "catalog", "")
        url = env.get(ENV_CATALOG_URL) or _get(catalog, "url", "catalog", str,
                                               f"sqlite:///{(home / 'catalog.sqlite').as_posix()}")
        if "://" not in url:
            raise ConfigError(f"catalog.url: not a database URL: {url!r}")

        storage = _table(doc, "storage", "")
        raw_locs = storage.get("locations")
        if not isinstance(raw_locs, list) or not raw_locs:
            raise ConfigError("storage.locations: must be a non-empty array of tables")
        locations: list[Location] = []
        for i, raw in enumerate(raw_locs):
            where = f"storage.locations[{i}]"
            if not isinstance(raw, dict):
                raise ConfigError(f"{where}: must be a table")
            name = _get(raw, "name", where, str)
            if not name or not name.replace("-", "").replace("_", "").isalnum():
                raise ConfigError(f"{where}.name: letters, digits, '-' and '_' only, got {name!r}")
            kind = _get(raw, "kind", where, str, "local")
            if kind != "local":
                raise ConfigError(f"{where}.kind: unsupported storage kind {kind!r} (supported: 'local')")
            path = rel(_get(raw, "path", where, str))
            if any(loc.name == name for loc in locations):
                raise ConfigError(f"{where}.name: duplicate location name {name!r}")
            if any(loc.path == path for loc in locations):
                raise ConfigError(f"{where}.path: two locations share the folder {path}")
            cycle = raw.get("cycle_days")
            rate = raw.get("max_mb_per_s")
            for key, value in (("cycle_days", cycle), ("max_mb_per_s", rate)):
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                    raise ConfigError(f"{where}.{key}: must be a number >= 0, got {value!r}")
            locations.append(Location(name=name, kind=kind, path=path,
                                      cycle_days=float(cycle) if cycle else None,
                                      max_mb_per_s=float(rate) if rate else None))
        copies = _get(storage, "copies_required", "storage", int, len(locations))
        if not 1 <= copies <= len(locations):
            raise ConfigError(f"storage.copies_required: must be between 1 and {len(locations)} "
                              f"(the number of locations), got {copies}")
        fsync = _get(storage, "fsync", "storage", bool, True)

        paths = _table(doc, "paths", "")
        staging = rel(_get(paths, "staging", "paths", str, "staging"))
        quarantine = rel(_get(paths, "quarantine", "paths", str, "quarantine"))
        retention = _get(paths, "quarantine_retention_days", "paths", int, 180)
        if retention < 0:
            raise ConfigError(f"paths.quarantine_retention_days: must be >= 0, got {retention}")
        lim = _table(doc, "limits", "")
        max_bytes = _get(lim, "max_bytes", "limits", int, IntakeLimits.max_bytes)
        max_files = _get(lim, "max_files", "limits", int, IntakeLimits.max_files)
        ratio = lim.get("max_ratio", IntakeLimits.max_ratio)
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 1:
            raise ConfigError(f"limits.max_ratio: must be a number above 1, got {ratio!r}")
        for key, value in (("max_bytes", max_bytes), ("max_files", max_files)):
            if value < 1:
                raise ConfigError(f"limits.{key}: must be a positive integer, got {value}")
        limits = IntakeLimits(max_bytes=max_bytes, max_files=max_files, max_ratio=float(ratio))

        au = _table(doc, "audit", "")

        def num(key: str, default: float, minimum: float = 0.0) -> float:
            value = au.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
                raise ConfigError(f"audit.{key}: must be a number >= {minimum:g}, got {value!r}")
            return float(value)

        audit = AuditSettings(cycle_days=num("cycle_days", 90, 0.001), interval_hours=num("interval_hours", 24, 0.001),
                              batch_files=int(num("batch_files", 50_000, 1)), batch_gb=num("batch_gb", 500, 0.001),
                              max_mb_per_s=num("max_mb_per_s", 0) or None,
                              replica_check_hours=num("replica_check_hours", 24, 0.001))
        al = _table(doc, "alerts", "")
        mail_to = al.get("mail_to", [])
        if isinstance(mail_to, str):
            mail_to = [mail_to]
        if not isinstance(mail_to, list) or not all(isinstance(x, str) for x in mail_to):
            raise ConfigError("alerts.mail_to: must be a list of addresses")
        alerts = AlertSettings(smtp_host=_get(al, "smtp_host", "alerts", str, None),
                               smtp_port=_get(al, "smtp_port", "alerts", int, 25),
                               mail_from=_get(al, "mail_from", "alerts", str, "oais-archive@localhost"),
                               mail_to=tuple(mail_to), webhook_url=_get(al, "webhook_url", "alerts", str, None))
        ac = _table(doc, "access", "")
        quota = ac.get("quota_gb", 50)
        expiry = ac.get("expiry_days", 14)
        for key, value in (("quota_gb", quota), ("expiry_days", expiry)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"access.{key}: must be a number > 0, got {value!r}")
        claim = ac.get("claim_seconds", 600)
        if isinstance(claim, bool) or not isinstance(claim, (int, float)) or claim <= 0:
            raise ConfigError(f"access.claim_seconds: must be a number > 0, got {claim!r}")
        access = AccessSettings(quota_gb=float(quota), expiry_days=float(expiry), claim_seconds=float(claim),
                                citation=_get(ac, "citation", "access", str, ""),
                                acknowledgement=_get(ac, "acknowledgement", "access", str, ""))
        sc = _table(doc, "scheduler", "")
        drop = _get(sc, "drop_folder", "scheduler", str, None)
        drop_dataset = _get(sc, "drop_folder_dataset", "scheduler", str, None)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return Settings(home=home, catalog_url=url, locations=tuple(locations), copies_required=copies,
                    staging=staging, quarantine=quarantine, fsync=fsync, quarantine_retention_days=retention,
                    limits=limits, audit=audit, alerts=alerts, drop_folder=rel(drop) if drop else None,
                    drop_folder_dataset=drop_dataset, access=access)


def load_settings(home: str | os.PathLike[str] | None = None) -> Settings:
    """Read ``<home>/oais.toml``; a missing file says to run ``oais init``."""
    root = resolve_home(home)
    path = root / CONFIG_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no archive at {root} ({CONFIG_NAME} not found): run 'oais init --home {root}'") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    settings = parse_settings(doc, root, source=str(path))
    return Settings(**{**settings.__dict__, "source": path})
