"""Search the holdings by dataset, producer, FITS keywords, observation time and format.

Everything is one SQL query (plus one for the totals), so it scales to millions of files with the
indexes of revision 0006: count and bytes are computed by the database, the file list is limited.

Rules of matching:

* text criteria (instrument, detector, telescope, object, level, DATE-OBS text) match exactly, as
  written in the header (FITS values are conventionally upper case): this keeps the indexes usable;
* ``wavelength`` is an exact number or an inclusive range ``(min, max)`` (text ``"171-195"``);
* ``start``/``end`` select files whose observation interval ``[obs_start, obs_end or obs_start]``
  overlaps ``[start, end]``; files without a parsed ``obs_start`` never match a time criterion;
* ``keywords`` are ``(K, V)`` pairs, all required. The keywords with a catalog column
  (:data:`TYPED_KEYWORDS`) are matched on that column (the first HDU carrying them, numbers compared
  as numbers); any other keyword is matched in the stored per-HDU keywords JSON, true when *any*
  HDU has ``K`` equal to ``V``: ``V`` is compared as text and, when it reads as one, as a number
  (``NAXIS1=1024``) or a FITS logical (``T``/``F``). That JSON test is SQL too, compiled per dialect
  (:class:`hdu_keyword_in`: ``json_each``/``json_extract`` on SQLite, ``jsonb_array_elements`` and
  ``@>`` on PostgreSQL), so counts stay in the database;
* only role ``original`` files of head versions by default; every rule of
  :mod:`oais.services.access` applies (embargoed or restricted holdings are invisible to others).

Files are sorted by ``obs_start`` (files without one last), then path.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, func, literal, or_, select
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from oais.catalog import models as m
from oais.services.access import visible_filter

H = m.FitsHeader
TYPED_KEYWORDS: dict[str, Any] = {
    "TELESCOP": H.telescope, "INSTRUME": H.instrument, "DETECTOR": H.detector, "WAVELNTH": H.wavelength,
    "EXPTIME": H.exptime, "OBJECT": H.object, "LEVEL": H.level, "DATE-OBS": H.date_obs,
}
NUMERIC_KEYWORDS = {"WAVELNTH", "EXPTIME"}
_KEY = re.compile(r"[A-Z0-9_-]{1,70}")
_NUM = r"[+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"\s*({_NUM})\s*-\s*({_NUM})\s*")

Wavelength = float | tuple[float, float]


@dataclass(frozen=True)
class SearchCriteria:
    dataset: str | None = None
    producer: str | None = None
    instrument: str | None = None
    detector: str | None = None
    wavelength: Wavelength | str | None = None  # exact, (min, max), or text "W" / "MIN-MAX"
    start: datetime | None = None  # timezone-aware
    end: datetime | None = None
    keywords: Sequence[tuple[str, str]] = ()
    format: str | None = None  # PRONOM PUID, e.g. fmt/9
    aip: str | None = None  # AIP identifier (a bare UUID finds urn:uuid:<uuid>)
    role: str | None = "original"  # None: every role
    head_only: bool = True


@dataclass
class SearchResult:
    count: int
    bytes: int
    files: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "bytes": self.bytes, "files": self.files}


# -- parsing (shared with the command line) ---------------------------------------------------
def parse_time(text: str, *, end_of_day: bool = False) -> datetime:
    """ISO 8601 date or date and time -> UTC. Naive means UTC; a bare date means its first instant,
    or its last with ``end_of_day`` (so ``--end 2003-10-28`` includes that whole day)."""
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return datetime.combine(day, time.max if end_of_day else time(0), tzinfo=timezone.utc)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date or date and time: {text!r}") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def parse_wavelength(text: str) -> Wavelength:
    """``"195"`` -> 195.0; ``"171-195"`` -> (171.0, 195.0)."""
    found = _RANGE.fullmatch(text)
    if found:
        lo, hi = float(found[1]), float(found[2])
        if lo > hi:
            raise ValueError(f"wavelength range {text!r}: minimum above maximum")
        return lo, hi
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a wavelength or a range MIN-MAX: {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"not a wavelength: {text!r}")
    return value


def parse_keyword(text: str) -> tuple[str, str]:
    """``"K=V"`` -> ``("K", "V")``; the keyword name is upper-cased."""
    key, sep, value = text.partition("=")
    key = key.strip().upper()
    if not sep or not _KEY.fullmatch(key):
        raise ValueError(f"not KEYWORD=VALUE with a FITS keyword name: {text!r}")
    return key, value.strip()


# -- keyword test in the stored JSON, per dialect ---------------------------------------------
class hdu_keyword_in(FunctionElement[bool]):  # noqa: N801 - a SQL function name
    """``hdu_keyword_in(keywords, key, candidates)``: some HDU of the stored ``{"hdus": [{"keywords":
    {...}}]}`` has ``key`` equal to one of the values of the JSON list ``candidates``."""

    type = Boolean()
    name = "hdu_keyword_in"
    inherit_cache = True


@compiles(hdu_keyword_in, "sqlite")
def _hdu_keyword_in_sqlite(element: hdu_keyword_in, compiler: Any, **kw: Any) -> str:
    column, key, candidates = (compiler.process(c, **kw) for c in element.clauses)
    return (f"EXISTS (SELECT 1 FROM json_each({column}, '$.hdus') AS hk, json_each({candidates}) AS hc "
            f"WHERE json_extract(hk.value, '$.keywords.' || json_quote({key})) = hc.value)")


@compiles(hdu_keyword_in, "postgresql")
def _hdu_keyword_in_postgresql(element: hdu_keyword_in, compiler: Any, **kw: Any) -> str:
    column, key, candidates = (compiler.process(c, **kw) for c in element.clauses)
    return (f"EXISTS (SELECT 1 FROM jsonb_array_elements(CAST({column} AS JSONB) -> 'hdus') AS hk(v) "
            f"WHERE CAST({candidates} AS JSONB) @> "
            f"jsonb_build_array(hk.v -> 'keywords' -> CAST({key} AS TEXT)))")


@compiles(hdu_keyword_in)
def _hdu_keyword_in_other(element: hdu_keyword_in, compiler: Any, **kw: Any) -> str:
    raise CompileError(f"keyword search needs SQLite or PostgreSQL, not {compiler.dialect.name}")


def _candidates(value: str) -> list[Any]:
    """The JSON values a typed-in header value may stand for: the text, a number, a logical."""
    out: list[Any] = [value]
    try:
        number = int(value)
    except ValueError:
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is not None and math.isfinite(number):
        out.append(number)
    if value.upper() in ("T", "F"):
        out.append(value.upper() == "T")
    return out


def _keyword_condition(key: str, value: str) -> ColumnElement[bool]:
    key = key.strip().upper()
    if not _KEY.fullmatch(key):
        raise ValueError(f"not a FITS keyword name: {key!r}")
    if key in NUMERIC_KEYWORDS:
        try:
            return TYPED_KEYWORDS[key] == float(value)  # type: ignore[no-any-return]
        except ValueError:
            raise ValueError(f"keyword {key}: not a number: {value!r}") from None
    if key in TYPED_KEYWORDS:
        return TYPED_KEYWORDS[key] == value  # type: ignore[no-any-return]
    return hdu_keyword_in(H.keywords, literal(key), literal(json.dumps(_candidates(value))))


# -- the query --------------------------------------------------------------------------------
def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"naive datetime given as {name}; pass a timezone-aware time")
    return value


def _header_conditions(c: SearchCriteria) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if c.instrument:
        conds.append(H.instrument == c.instrument)
    if c.detector:
        conds.append(H.detector == c.detector)
    wave = parse_wavelength(c.wavelength) if isinstance(c.wavelength, str) else c.wavelength
    if isinstance(wave, tuple):
        conds.append(H.wavelength.between(float(wave[0]), float(wave[1])))
    elif wave is not None:
        conds.append(H.wavelength == float(wave))
    start, end = _aware("start", c.start), _aware("end", c.end)
    if start and end and start > end:
        raise ValueError("the start of the time range is after its end")
    if start:  # the interval ends at or after start (obs_end, else obs_start)
        conds.append(and_(H.obs_start.is_not(None),
                          or_(H.obs_end >= start, and_(H.obs_end.is_(None), H.obs_start >= start))))
    if end:  # ... and begins at or before end
        conds.append(H.obs_start <= end)
    conds.extend(_keyword_condition(k, v) for k, v in c.keywords)
    return conds


def _conditions(c: SearchCriteria, user: str | None, groups: Collection[str],
                now: datetime) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [visible_filter(user, groups, now)]
    if c.role:
        conds.append(m.File.role == c.role)
    if c.head_only:
        conds.append(m.AipVersion.number == m.Aip.head_version)
    if c.dataset:
        conds.append(m.Aip.dataset_id.in_(select(m.Dataset.id).where(m.Dataset.identifier == c.dataset)))
    if c.producer:
        conds.append(m.Aip.producer_id.in_(select(m.Producer.id).where(m.Producer.name == c.producer)))
    if c.aip:
        ids = [c.aip] if c.aip.startswith("urn:") else [c.aip, f"urn:uuid:{c.aip}"]
        conds.append(m.Aip.identifier.in_(ids))
    if c.format:
        conds.append(m.File.puid == c.format)
    return conds


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def search(session: Session, criteria: SearchCriteria, *, user: str | None, groups: Collection[str],
           now: datetime, limit: int | None = None) -> SearchResult:
    """Files matching ``criteria`` that ``user`` (member of ``groups``) may see at ``now``.

    ``count`` and ``bytes`` cover every match; ``files`` holds the first ``limit`` (all when None).
    Raises ``ValueError`` for a malformed criterion.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")
    header = _header_conditions(criteria)
    conds = _conditions(criteria, user, groups, now) + header

    def joined(q: Any, outer_header: bool) -> Any:
        q = (q.select_from(m.File).join(m.AipVersion, m.File.version_id == m.AipVersion.id)
             .join(m.Aip, m.AipVersion.aip_id == m.Aip.id))
        if header or outer_header:
            q = q.join(H, H.file_id == m.File.id, isouter=not header)
        return q.where(*conds)

    count, total = session.execute(joined(select(func.count(m.File.id),
                                                 func.coalesce(func.sum(m.File.size), 0)), False)).one()
    files: list[dict[str, Any]] = []
    if count and limit != 0:
        q = joined(select(m.Aip.identifier, m.AipVersion.number, m.File.path, m.File.size, m.File.sha512,
                          m.Dataset.identifier.label("dataset"), H.instrument, H.wavelength, H.date_obs,
                          H.obs_start, m.File.puid, m.File.role), True)
        q = (q.join(m.Dataset, m.Dataset.id == m.Aip.dataset_id)
             .order_by(H.obs_start.is_(None), H.obs_start, m.File.path, m.Aip.identifier, m.AipVersion.number))
        if limit is not None:
            q = q.limit(limit)
        files = [{"aip_id": r[0], "version": r[1], "path": r[2], "size": r[3], "sha512": r[4],
                  "dataset": r[5], "instrument": r[6], "wavelength": r[7], "date_obs": r[8],
                  "obs_start": _iso(r[9]), "format": r[10], "role": r[11]} for r in session.execute(q)]
    return SearchResult(count=int(count), bytes=int(total), files=files)


__all__ = ["SearchCriteria", "SearchResult", "TYPED_KEYWORDS", "hdu_keyword_in", "parse_keyword",
           "parse_time", "parse_wavelength", "search"]
