"""Searchable observation facts from FITS header keywords (pure: dicts in, dict out).

Each fact comes from the first HDU that carries the keyword (HDU 0 first). Dates are kept as written;
ISO 8601 dates (``2003-10-28T01:00:10.5``, ``2003-10-28``) are also parsed to UTC datetimes. Older
forms such as ``28/10/03`` stay text only: guessing a century is not the catalog's job. ``DATE_OBS``
(SOHO's Earth-referred time) is not taken for ``DATE-OBS``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

FIELDS = {
    "telescope": ("TELESCOP", "OBSRVTRY"),
    "instrument": ("INSTRUME",),
    "detector": ("DETECTOR",),
    "wavelength": ("WAVELNTH",),
    "wave_unit": ("WAVEUNIT",),
    "exptime": ("EXPTIME", "XPOSURE"),
    "object": ("OBJECT",),
    "level": ("LEVEL",),
    "date_obs": ("DATE-OBS", "DATE-BEG"),
    "date_end": ("DATE-END",),
}
NUMERIC = {"wavelength", "exptime"}
TEXT_LIMITS = {"telescope": 100, "instrument": 100, "detector": 100, "wave_unit": 30, "object": 200,
               "level": 30, "date_obs": 40, "date_end": 40}


def parse_time(text: str | None) -> datetime | None:
    if not text or not isinstance(text, str) or len(text) < 10 or text[4] != "-":
        return None
    try:
        value = datetime.fromisoformat(text.strip().removesuffix("Z"))
    except ValueError:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def summarize(hdus: list[dict[str, Any]]) -> dict[str, Any]:
    """``hdus`` as extracted (``[{"index", "name", "keywords"}]``) -> catalog columns."""
    out: dict[str, Any] = {}
    for column, keys in FIELDS.items():
        value = None
        for hdu in hdus:
            kw = hdu.get("keywords", {})
            for key in keys:
                if kw.get(key) not in (None, ""):
                    value = kw[key]
                    break
            if value is not None:
                break
        if column in NUMERIC:
            value = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        elif value is not None:
            value = str(value).strip()[: TEXT_LIMITS[column]]
        out[column] = value
    out["obs_start"] = parse_time(out["date_obs"])
    out["obs_end"] = parse_time(out["date_end"])
    return out
