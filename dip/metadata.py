"""``headers`` and ``votable``: the selection's FITS headers as JSON, one CSV table, and a VOTable.

``headers`` writes ``headers/<input key>.json`` for each FITS input (every card of every HDU, in order:
keyword, value, comment; a tile-compressed image shows its image header) and one ``headers.csv``
(one row per FITS input, sorted by AIP id, version and path). ``votable`` writes ``selection.vot.xml``:
the same columns plus size and sha512, one row per input (FITS or not), typed (numbers are numbers;
a value that is not a number is left null).

A table column holds the keyword's value from the first HDU that has it (HDU 0 first), exactly as written:
``DATE_OBS`` is not ``DATE-OBS``, ``OBSRVTRY`` is not ``TELESCOP``. NAXIS1/NAXIS2 come from the first
image HDU with at least two axes (not from a binary table, whose NAXIS1 counts bytes).
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from dip.base import RenderContext, Transform
from dip.fitsread import is_fits, open_fits
from dip.model import DipInput, OutputFile

KEYWORDS = ("TELESCOP", "INSTRUME", "DETECTOR", "DATE-OBS", "DATE-END", "WAVELNTH", "WAVEUNIT", "EXPTIME",
            "OBJECT", "NAXIS1", "NAXIS2", "BUNIT", "LEVEL")
IMAGE_KEYWORDS = ("NAXIS1", "NAXIS2")
CSV_NAME = "headers.csv"
VOTABLE_NAME = "selection.vot.xml"
_FLOATS = {"WAVELNTH", "EXPTIME"}
_INTS = {"NAXIS1", "NAXIS2"}


def jsonable(value: Any) -> Any:
    """A FITS card value as JSON: bool/int/finite float/str; undefined -> None; anything else as text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if type(value).__name__ == "Undefined":
        return None
    return str(value)


def read_headers(path: Any) -> list[dict[str, Any]]:
    """Every HDU's header: ``{"index", "name", "type", "image", "compressed", "cards": [...]}``."""
    from astropy.io import fits

    hdus: list[dict[str, Any]] = []
    with open_fits(path) as hdul:
        for index, hdu in enumerate(hdul):
            cards = []
            for card in hdu.header.cards:
                try:
                    cards.append({"keyword": card.keyword, "value": jsonable(card.value),
                                  "comment": card.comment or ""})
                except Exception:  # noqa: BLE001 - an unparsable card is kept as its raw text
                    cards.append({"keyword": card.keyword, "value": None, "comment": "",
                                  "unparsed": str(card.image)})
            hdus.append({"index": index, "name": hdu.name or "", "type": type(hdu).__name__,
                         "image": isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)),
                         "compressed": isinstance(hdu, fits.CompImageHDU), "cards": cards})
    return hdus


def summarize(hdus: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``KEYWORDS`` of one file (None when absent), from its ``read_headers`` result."""
    out: dict[str, Any] = {k: None for k in KEYWORDS}
    for hdu in hdus:
        values = {c["keyword"]: c["value"] for c in reversed(hdu["cards"]) if "unparsed" not in c}
        is_image = hdu["image"] and isinstance(values.get("NAXIS"), int) and values["NAXIS"] >= 2
        for key in KEYWORDS:
            if out[key] is not None:
                continue
            if key in IMAGE_KEYWORDS and not is_image:
                continue
            value = values.get(key)
            if value is not None and not (isinstance(value, str) and not value.strip()):
                out[key] = value.strip() if isinstance(value, str) else value
    return out


def _sorted(inputs: list[DipInput]) -> list[DipInput]:
    return sorted(inputs, key=lambda i: (i.aip_id, i.version, i.path))


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "T" if value else "F"
    return str(value)


class Headers(Transform):
    name = "headers"
    summary = "every FITS header as JSON (headers/...json) and one table of searchable keywords (headers.csv)"

    def _render(self, inputs: list[DipInput], values: dict[str, Any], ctx: RenderContext) -> list[OutputFile]:
        out: list[OutputFile] = []
        table = io.StringIO()
        writer = csv.writer(table, lineterminator="\r\n")
        writer.writerow(["aip_id", "version", "path", *KEYWORDS])
        used: list[str] = []
        for inp in _sorted(inputs):
            if not is_fits(inp.source):
                ctx.note(f"{inp.ref}: not FITS, no header extract")
                continue
            try:
                hdus = read_headers(inp.source)
            except Exception as exc:  # noqa: BLE001 - reported, the order goes on
                ctx.note(f"{inp.ref}: headers unreadable ({type(exc).__name__}: {exc})")
                continue
            doc = {"aip_id": inp.aip_id, "version": inp.version, "path": inp.path, "hdus": hdus}
            text = json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
            out.append(OutputFile(f"{ctx.folder}/{inp.key}.json", text.encode("utf-8"), None, ctx.folder,
                                  (inp.ref,)))
            row = summarize(hdus)
            writer.writerow([inp.aip_id, inp.version, inp.path, *(_csv_cell(row[k]) for k in KEYWORDS)])
            used.append(inp.ref)
        csv_name = CSV_NAME if ctx.folder == self.name else f"{ctx.folder}.csv"
        out.append(OutputFile(csv_name, table.getvalue().encode("utf-8"), None, ctx.folder, tuple(used)))
        return out


class VOTable(Transform):
    name = "votable"
    summary = "the selection's metadata (AIP, path, size, sha512, FITS keywords) as a VOTable (selection.vot.xml)"

    def _render(self, inputs: list[DipInput], values: dict[str, Any], ctx: RenderContext) -> list[OutputFile]:
        rows: list[tuple[DipInput, dict[str, Any]]] = []
        for inp in _sorted(inputs):
            row: dict[str, Any] = {k: None for k in KEYWORDS}
            if is_fits(inp.source):
                try:
                    row = summarize(read_headers(inp.source))
                except Exception as exc:  # noqa: BLE001 - reported, the row stays without keywords
                    ctx.note(f"{inp.ref}: headers unreadable ({type(exc).__name__}: {exc})")
            rows.append((inp, row))
        name = VOTABLE_NAME if ctx.folder == self.name else f"{ctx.folder}.vot.xml"
        return [OutputFile(name, votable_bytes(rows), None, ctx.folder, tuple(i.ref for i, _ in rows))]


def votable_bytes(rows: list[tuple[DipInput, dict[str, Any]]]) -> bytes:
    """A VOTable (TABLEDATA) with one typed row per input."""
    import numpy as np
    from astropy.io.votable import from_table
    from astropy.table import MaskedColumn, Table

    def text(values: list[Any]) -> MaskedColumn:
        return MaskedColumn([_csv_cell(v) for v in values], dtype=str, mask=[v is None for v in values])

    def typed(values: list[Any], dtype: Any, cast: Any) -> MaskedColumn:
        data, mask = [], []
        for v in values:
            try:
                ok = v is not None and not isinstance(v, bool) and math.isfinite(float(v))
                data.append(cast(v) if ok else 0)
            except (TypeError, ValueError):
                ok = False
                data.append(0)
            mask.append(not ok)
        return MaskedColumn(np.array(data, dtype=dtype), mask=mask)

    table = Table()
    table["aip_id"] = [i.aip_id for i, _ in rows]
    table["version"] = np.array([i.version for i, _ in rows], dtype=np.int32)
    table["path"] = [i.path for i, _ in rows]
    for key in KEYWORDS:
        values = [r[key] for _, r in rows]
        if key in _FLOATS:
            table[key] = typed(values, np.float64, float)
        elif key in _INTS:
            table[key] = typed(values, np.int64, lambda v: int(float(v)))
        else:
            table[key] = text(values)
    table["size"] = np.array([i.size for i, _ in rows], dtype=np.int64)
    table["size"].unit = "byte"
    table["sha512"] = [i.sha512 for i, _ in rows]
    if not rows:  # an empty table still needs typed string columns
        for key in ("aip_id", "path", "sha512"):
            table[key] = np.array([], dtype="U1")
    table.meta["description"] = "Files of a DIP order: archive identifiers, fixity and FITS keywords"
    vot = from_table(table, table_id="selection")
    first = vot.get_first_table()
    first.name = "selection"
    for f in first.fields:
        if f.datatype in ("char", "unicodeChar"):
            f.arraysize = "*"  # variable length, not the longest value of this selection
    buf = io.BytesIO()
    vot.to_xml(buf, tabledata_format="tabledata")
    return buf.getvalue()


__all__ = ["CSV_NAME", "Headers", "KEYWORDS", "VOTABLE_NAME", "VOTable", "read_headers", "summarize",
           "votable_bytes"]
