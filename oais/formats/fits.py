"""Reading FITS headers (astropy, imported only when used) for descriptive metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SEARCH_KEYWORDS = (
    "TELESCOP", "OBSRVTRY", "INSTRUME", "DETECTOR", "DATE-OBS", "DATE_OBS", "DATE-BEG", "DATE-END",
    "DATE-AVG", "EXPTIME", "XPOSURE", "WAVELNTH", "WAVEUNIT", "FILTER", "OBJECT", "OBS_MODE", "LEVEL",
    "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "BUNIT", "ORIGIN",
)


def header_extract(path: Path) -> dict[str, Any]:
    """Keywords worth searching, per HDU, as JSON-ready values. Never raises for a bad file:
    returns ``{"error": ...}`` instead (validation of FITS structure is a separate step)."""
    import warnings

    from astropy.io import fits

    hdus: list[dict[str, Any]] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                for index, hdu in enumerate(hdul):
                    header = hdu.header
                    values = {k: _jsonable(header[k]) for k in SEARCH_KEYWORDS if k in header}
                    hdus.append({"index": index, "name": hdu.name, "keywords": values})
    except Exception as exc:  # noqa: BLE001 - any astropy failure is reported, not raised
        return {"error": f"{type(exc).__name__}: {exc}", "hdus": hdus}
    return {"hdus": hdus}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)
