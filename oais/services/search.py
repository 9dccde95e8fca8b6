"""Search the holdings by dataset, producer, FITS keywords, observation time and format.

Everything is SQL, so it scales to millions of files: count and bytes are computed by the database,
the file list is limited. Two queries, shaped for the indexes of revisions 0006 to 0008:

* the **totals** count and sum the matching files of each AIP version first, then apply the version
  and AIP conditions (head version, dataset, producer, AIP, access rules) once per version rather
  than once per file. When FITS criteria are given, everything they need is in
  ``ix_fits_headers_search``: a header row carries copies of its file's version, role, format and
  size (revision 0008), so the totals read one index range and neither ``files`` nor the wide header
  rows. Without FITS criteria they read ``ix_files_search_totals`` (version, role, format, size);
* the **page** is read in the order it is shown: first the files with an observation time, in
  ``obs_start`` order (``ix_fits_headers_search`` gives that order for an instrument and a
  wavelength, so the query stops at its limit instead of sorting every match), then, if the page is
  not full, the files without one, by path.

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

Files are sorted by ``obs_start`` (files without one last), then path, AIP and version.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Table, and_, func, literal, or_, select
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from oais.catalog import models as m
from oais.catalog import tables as t
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


def _file_conditions(c: SearchCriteria, files: Table) -> list[ColumnElement[bool]]:
    """The criteria on the file itself (role, format), on ``files`` or on the copies in ``fits_headers``."""
    conds: list[ColumnElement[bool]] = []
    if c.role:
        conds.append(files.c.role == c.role)
    if c.format:
        conds.append(files.c.puid == c.format)
    return conds


def _version_conditions(c: SearchCriteria, user: str | None, groups: Collection[str],
                        now: datetime) -> list[ColumnElement[bool]]:
    """The criteria on the AIP version and the AIP (``m.AipVersion`` and ``m.Aip``), access rules included."""
    conds: list[ColumnElement[bool]] = [visible_filter(user, groups, now)]
    if c.head_only:
        conds.append(m.AipVersion.number == m.Aip.head_version)
    if c.dataset:
        conds.append(m.Aip.dataset_id.in_(select(m.Dataset.id).where(m.Dataset.identifier == c.dataset)))
    if c.producer:
        conds.append(m.Aip.producer_id.in_(select(m.Producer.id).where(m.Producer.name == c.producer)))
    if c.aip:
        ids = [c.aip] if c.aip.startswith("urn:") else [c.aip, f"urn:uuid:{c.aip}"]
        conds.append(m.Aip.identifier.in_(ids))
    return conds


# -- the totals ------------------------------------------------------------------------------
_FILES: Table = t.files
_HEADERS: Table = t.fits_headers


def _totals(session: Session, c: SearchCriteria, header: list[ColumnElement[bool]],
            versions: list[ColumnElement[bool]]) -> tuple[int, int]:
    """Count and bytes of every match."""
    if not header:  # the version conditions may be what selects (a dataset, an AIP): one join, any order
        q = (select(func.count(_FILES.c.id), func.coalesce(func.sum(_FILES.c.size), 0)).select_from(_FILES)
             .join(m.AipVersion, _FILES.c.version_id == m.AipVersion.id).join(m.Aip, m.AipVersion.aip_id == m.Aip.id)
             .where(*_file_conditions(c, _FILES), *versions))
    else:  # the FITS criteria select: per AIP version from the header index alone, then once per version
        h = _HEADERS
        per_version = (select(h.c.version_id, func.count(h.c.file_id).label("n"), func.sum(h.c.size).label("bytes"))
                       .where(*header, *_file_conditions(c, h)).group_by(h.c.version_id).subquery())
        q = (select(func.coalesce(func.sum(per_version.c.n), 0), func.coalesce(func.sum(per_version.c.bytes), 0))
             .select_from(per_version).join(m.AipVersion, m.AipVersion.id == per_version.c.version_id)
             .join(m.Aip, m.AipVersion.aip_id == m.Aip.id).where(*versions))
    count, total = session.execute(q).one()
    return int(count), int(total)


def _page(session: Session, c: SearchCriteria, header: list[ColumnElement[bool]],
          versions: list[ColumnElement[bool]], limit: int | None, count: int) -> list[dict[str, Any]]:
    """The first ``limit`` matches (all when None) by ``obs_start`` (files without one last), path,
    AIP and version: the files with an observation time in index order, then the others by path."""
    q = (select(m.Aip.identifier, m.AipVersion.number, m.File.path, m.File.size, m.File.sha512,
                m.Dataset.identifier.label("dataset"), H.instrument, H.wavelength, H.date_obs,
                H.obs_start, m.File.puid, m.File.role)
         .select_from(m.File).join(m.AipVersion, m.File.version_id == m.AipVersion.id)
         .join(m.Aip, m.AipVersion.aip_id == m.Aip.id)
         .join(H, H.file_id == m.File.id, isouter=not header)
         .join(m.Dataset, m.Dataset.id == m.Aip.dataset_id)
         .where(*_file_conditions(c, _FILES), *versions, *header))
    rows = list(session.execute(_limited(q.where(H.obs_start.is_not(None))
                                         .order_by(H.obs_start, m.File.path, m.Aip.identifier, m.AipVersion.number),
                                         limit)))
    left = None if limit is None else limit - len(rows)
    if len(rows) < count and left != 0:
        rows += session.execute(_limited(q.where(H.obs_start.is_(None))
                                         .order_by(m.File.path, m.Aip.identifier, m.AipVersion.number), left))
    return [{"aip_id": r[0], "version": r[1], "path": r[2], "size": r[3], "sha512": r[4], "dataset": r[5],
             "instrument": r[6], "wavelength": r[7], "date_obs": r[8], "obs_start": _iso(r[9]), "format": r[10],
             "role": r[11]} for r in rows]


def _limited(q: Any, limit: int | None) -> Any:
    return q if limit is None else q.limit(limit)


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
    versions = _version_conditions(criteria, user, groups, now)
    count, total = _totals(session, criteria, header, versions)
    files: list[dict[str, Any]] = []
    if count and limit != 0:
        files = _page(session, criteria, header, versions, limit, count)
    return SearchResult(count=count, bytes=total, files=files)


__all__ = ["SearchCriteria", "SearchResult", "TYPED_KEYWORDS", "hdu_keyword_in", "parse_keyword",
           "parse_time", "parse_wavelength", "search"]
