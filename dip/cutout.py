"""``cutout`` (a pixel box of the image, with its WCS) and ``decompress`` (tile-compressed FITS -> plain FITS).

Cutout boxes use astropy's pixel convention: 0-based, pixel centres at integers, ``x`` along NAXIS1 (columns)
and ``y`` along NAXIS2 (rows). Either a centre ``x,y`` and a size ``w,h`` (the w x h pixels around the centre,
as ``astropy.nddata.Cutout2D`` picks them; the image centre when ``x,y`` are not given), or corners
``x0,y0`` (first pixel) and ``x1,y1`` (one past the last). Boxes that stick out of the image are trimmed;
a box outside it gives no file (a note says so). With ``frame=helioprojective`` (sunpy needed), ``x,y`` are
Tx/Ty and ``w,h`` the size, in arcseconds.

The cutout is a single-HDU FITS file holding the stored values of the box (same BITPIX, BSCALE/BZERO/BLANK
kept, so uint16 images stay uint16 and blank pixels stay blank). Its header: the image's header (and, for an
image in an extension, the primary header's keywords under it) without the structural, compression and WCS
keywords, then the cutout's WCS
(``cutout.wcs.to_header(relax=True)``, SIP included; alternate WCSs shifted the same way), IRAF's LTV1/LTV2
shifted, HISTORY cards naming the AIP, version, path, HDU and box, and CHECKSUM/DATASUM. Date and
observer keywords of the original are kept as written rather than wcslib's normalised copies.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from dip.base import Param, RenderContext, Transform, choice, has_module, hdu_selector, integer, number
from dip.fitsread import (find_image, fits_stem, hdu_label, is_fits, open_fits, plane, restore_scaling,
                          write_fits)
from dip.model import DipInput, OutputFile

MAX_PIXELS = 100_000
_STRUCTURAL = re.compile(r"(SIMPLE|XTENSION|BITPIX|NAXIS\d*|EXTEND|PCOUNT|GCOUNT|GROUPS|CHECKSUM|DATASUM|BSCALE|"
                         r"BZERO|BLANK|EXTNAME|EXTVER|EXTLEVEL|INHERIT|NEXTEND|Z[A-Z0-9_]+|TFIELDS|TTYPE\d+|"
                         r"TFORM\d+|THEAP)")
_WCS = re.compile(r"(WCSAXES|CRPIX\d+|CRVAL\d+|CDELT\d+|CTYPE\d+|CUNIT\d+|CROTA\d+|CRDER\d+|CSYER\d+|PC\d+_\d+|"
                  r"CD\d+_\d+|PV\d+_\d+|PS\d+_\d+|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|EPOCH|WCSNAME|"
                  r"(A|B|AP|BP)_(ORDER|DMAX|\d+_\d+)|CPDIS\d+|CPERR\d+|DP\d+|DQ\d+|D2IMDIS\d+|D2IMERR\d+|"
                  r"D2IMEXT|D2IM\d+|AXISCORR)[A-Z]?")
_ALTERNATES = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _is(pattern: re.Pattern[str], keyword: str) -> bool:
    return pattern.fullmatch(keyword.split(".", 1)[0]) is not None


class Cutout(Transform):
    name = "cutout"
    summary = "a pixel box of each FITS image as a FITS file with its WCS updated and CHECKSUM/DATASUM"
    params = (
        Param("x", "box centre, column (0-based pixels; arcsec Tx for frame=helioprojective)", number()),
        Param("y", "box centre, row (0-based pixels; arcsec Ty for frame=helioprojective)", number()),
        Param("w", "box width (pixels; arcsec for frame=helioprojective)", number(0)),
        Param("h", "box height (pixels; arcsec for frame=helioprojective)", number(0)),
        Param("x0", "first column of the box (0-based)", integer(0, MAX_PIXELS)),
        Param("y0", "first row of the box (0-based)", integer(0, MAX_PIXELS)),
        Param("x1", "one past the last column", integer(1, MAX_PIXELS)),
        Param("y1", "one past the last row", integer(1, MAX_PIXELS)),
        Param("hdu", "auto (first 2-D image), an HDU index or an EXTNAME", hdu_selector, "auto"),
        Param("frame", "pixel, or helioprojective (needs sunpy)", choice("pixel", "helioprojective"), "pixel"),
    )

    def check(self, values: dict[str, Any], given: Any) -> None:
        corners = [k for k in ("x0", "y0", "x1", "y1") if values[k] is not None]
        centre = [k for k in ("x", "y", "w", "h") if values[k] is not None]
        if values["frame"] == "helioprojective":
            if not has_module("sunpy"):
                raise self.bad("frame", "helioprojective boxes need sunpy, which is not installed (use pixels)")
            if corners:
                raise self.bad(corners[0], "helioprojective boxes are given as x,y,w,h (arcsec)")
        if corners:
            if centre:
                raise self.bad(centre[0], "give either x,y,w,h or x0,y0,x1,y1, not both")
            for k in ("x0", "y0", "x1", "y1"):
                if values[k] is None:
                    raise self.bad(k, "missing: a corner box needs x0, y0, x1 and y1")
            if values["x1"] <= values["x0"]:
                raise self.bad("x1", "must be greater than x0")
            if values["y1"] <= values["y0"]:
                raise self.bad("y1", "must be greater than y0")
            return
        for k in ("w", "h"):
            if values[k] is None:
                raise self.bad(k, "missing: give w and h (and x, y), or x0, y0, x1, y1")
            if values[k] <= 0:
                raise self.bad(k, "must be > 0")
            if values["frame"] == "pixel" and (values[k] != int(values[k]) or values[k] > MAX_PIXELS):
                raise self.bad(k, f"must be a whole number of pixels, 1..{MAX_PIXELS}")
        if (values["x"] is None) != (values["y"] is None):
            raise self.bad("y" if values["y"] is None else "x", "give both x and y (or neither: the image centre)")

    def _render(self, inputs: list[DipInput], values: dict[str, Any], ctx: RenderContext) -> list[OutputFile]:
        out: list[OutputFile] = []
        for inp in inputs:
            if not is_fits(inp.source):
                ctx.note(f"{inp.ref}: not FITS, no cutout")
                continue
            try:
                data, why = cutout_fits(inp, values)
            except Exception as exc:  # noqa: BLE001 - one unreadable file does not stop the order
                ctx.note(f"{inp.ref}: no cutout ({type(exc).__name__}: {exc})")
                continue
            if data is None:
                ctx.note(f"{inp.ref}: no cutout ({why})")
                continue
            if why:
                ctx.note(f"{inp.ref}: {why}")
            out.append(OutputFile(f"{ctx.folder}/{fits_stem(inp.key)}", data, None, ctx.folder, (inp.ref,)))
        return out


def cutout_fits(inp: DipInput, values: dict[str, Any]) -> tuple[bytes | None, str]:
    """(FITS bytes, a remark) or (None, why not) for one input."""
    from astropy.io import fits
    from astropy.nddata import Cutout2D, NoOverlapError
    from astropy.wcs import WCS

    from oais import __version__

    remarks: list[str] = []
    with open_fits(inp.source, do_not_scale_image_data=True) as hdul:  # cut the stored values, keep BITPIX
        index, why = find_image(hdul, values["hdu"])
        if index is None:
            return None, why
        hdu = hdul[index]
        where = hdu_label(hdul, index)
        image_header = hdu.header.copy()
        primary = hdul[0].header.copy() if index > 0 else None
        data = plane(hdu)
        ndim = image_header.get("NAXIS", 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = None
            try:
                if any(_is(_WCS, k) for k in image_header):  # none at all: add no made-up pixel WCS
                    wcs = WCS(image_header, fobj=hdul, naxis=2)
            except Exception as exc:  # noqa: BLE001 - cut without a WCS, say so
                remarks.append(f"WCS unreadable, cut without it ({type(exc).__name__}: {exc})")
            alternates = _alternate_wcs(image_header, hdul, remarks)
    ny, nx = data.shape
    if values["frame"] == "helioprojective":
        position, size, box_text = _helioprojective_box(data, image_header, values, nx, ny)
    elif values["x0"] is not None:
        w, h = values["x1"] - values["x0"], values["y1"] - values["y0"]
        position, size = (values["x0"] + (w - 1) / 2, values["y0"] + (h - 1) / 2), (h, w)
        box_text = f"corners x0={values['x0']} y0={values['y0']} x1={values['x1']} y1={values['y1']}"
    else:
        w, h = int(values["w"]), int(values["h"])
        x = (nx - 1) / 2 if values["x"] is None else values["x"]
        y = (ny - 1) / 2 if values["y"] is None else values["y"]
        position, size = (x, y), (h, w)
        box_text = f"centre x={x:g} y={y:g}, w={w} h={h}"
    try:
        cut = Cutout2D(data, position, size, wcs=wcs, mode="trim", copy=True)
    except NoOverlapError:
        return None, f"the box ({box_text}) lies outside the {nx} x {ny} image of {where}"
    (ymin, ymax), (xmin, xmax) = cut.bbox_original
    header = _header(primary, image_header, cut, alternates, remarks)
    if (ymax - ymin + 1, xmax - xmin + 1) != tuple(size):
        remarks.append(f"box trimmed to the image: x {xmin}..{xmax}, y {ymin}..{ymax}")
    header.add_history(f"oais-archive {__version__} DIP cutout of AIP {inp.aip_id} version {inp.version}")
    header.add_history(f"file {inp.path}, {where}" + (f", first plane of a {ndim}-D cube" if ndim > 2 else ""))
    header.add_history(f"pixel box x {xmin}..{xmax}, y {ymin}..{ymax} (0-based, inclusive) of the "
                       f"{nx} x {ny} image; asked: {box_text}")
    hdu = fits.PrimaryHDU(data=cut.data, header=header)
    restore_scaling(hdu.header, image_header, cut.data)
    return write_fits(fits.HDUList([hdu])), "; ".join(remarks)


def _alternate_wcs(header: Any, hdul: Any, remarks: list[str]) -> dict[str, Any]:
    """Alternate WCSs (key A..Z) present in ``header``, as astropy WCS objects (unreadable ones are noted)."""
    from astropy.wcs import WCS

    found = {}
    for key in _ALTERNATES:
        if f"CTYPE1{key}" in header or f"CRPIX1{key}" in header:
            try:
                found[key] = WCS(header, fobj=hdul, key=key, naxis=2)
            except Exception as exc:  # noqa: BLE001 - dropped, and said so
                remarks.append(f"alternate WCS {key} unreadable, dropped ({type(exc).__name__})")
    return found


def _header(primary: Any, image: Any, cut: Any, alternates: dict[str, Any], remarks: list[str]) -> Any:
    """The cutout's header: kept keywords of the primary and image headers, then the shifted WCSs."""
    from astropy.io import fits

    header = fits.Header()
    seen: set[tuple[str, str]] = set()
    for source in (primary, image):
        if source is None:
            continue
        kept = [c for c in source.cards if not _is(_STRUCTURAL, c.keyword) and not _is(_WCS, c.keyword)
                and (c.keyword, str(c.value)) not in seen]  # commentary repeated from the primary header
        header.extend(kept, update=True)
        seen = {(c.keyword, str(c.value)) for c in header.cards if c.keyword in ("COMMENT", "HISTORY", "")}
    x0, y0 = cut.origin_original
    for key in ("LTV1", "LTV2"):
        if isinstance(header.get(key), (int, float)) and not isinstance(header.get(key), bool):
            header[key] = header[key] - (x0 if key == "LTV1" else y0)
    wcs_cards = []
    if cut.wcs is not None:
        if cut.wcs.cpdis1 or cut.wcs.cpdis2 or cut.wcs.det2im1 or cut.wcs.det2im2:
            remarks.append("lookup-table distortions (CPDIS/D2IM) are not carried to the cutout")
        wcs_cards += _wcs_cards(cut.wcs, " ")
    for key, alt in sorted(alternates.items()):
        shifted = alt.deepcopy()
        shifted.wcs.crpix = shifted.wcs.crpix - [x0, y0]
        if shifted.sip is not None:
            from astropy.wcs import Sip

            s = shifted.sip
            shifted.sip = Sip(s.a, s.b, s.ap, s.bp, s.crpix - [x0, y0])
        wcs_cards += _wcs_cards(shifted, key)
    for card in wcs_cards:
        if _is(_WCS, card.keyword):
            header[card.keyword] = (card.value, card.comment)
        elif card.keyword not in header and card.keyword not in ("COMMENT", "HISTORY", ""):
            header[card.keyword] = (card.value, card.comment)
    return header


def _wcs_cards(wcs: Any, key: str) -> list[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(wcs.to_header(relax=True, key=None if key == " " else key).cards)


def _helioprojective_box(data: Any, header: Any, values: dict[str, Any], nx: int,
                         ny: int) -> tuple[tuple[float, float], tuple[int, int], str]:
    """Pixel centre and size of a helioprojective box (arcsec), through sunpy's reading of the header."""
    import astropy.units as u
    import sunpy.map
    from astropy.coordinates import SkyCoord

    smap = sunpy.map.Map(data, header)
    frame = smap.coordinate_frame
    if getattr(frame, "name", "") != "helioprojective":
        raise ValueError(f"the image is not in helioprojective coordinates ({getattr(frame, 'name', frame)})")
    w_arcsec, h_arcsec = values["w"], values["h"]
    sx = abs(smap.scale.axis1.to_value(u.arcsec / u.pix))
    sy = abs(smap.scale.axis2.to_value(u.arcsec / u.pix))
    size = (max(1, round(h_arcsec / sy)), max(1, round(w_arcsec / sx)))
    if values["x"] is None:
        return ((nx - 1) / 2, (ny - 1) / 2), size, f"image centre, {w_arcsec:g} x {h_arcsec:g} arcsec"
    px, py = smap.world_to_pixel(SkyCoord(values["x"] * u.arcsec, values["y"] * u.arcsec, frame=frame))
    text = f"helioprojective centre Tx={values['x']:g} Ty={values['y']:g} arcsec, {w_arcsec:g} x {h_arcsec:g} arcsec"
    return (float(px.to_value(u.pix)), float(py.to_value(u.pix))), size, text


class Decompress(Transform):
    name = "decompress"
    summary = "tile-compressed (or gzip-compressed) FITS files as plain FITS, with CHECKSUM/DATASUM"

    def _render(self, inputs: list[DipInput], values: dict[str, Any], ctx: RenderContext) -> list[OutputFile]:
        out: list[OutputFile] = []
        for inp in inputs:
            if not is_fits(inp.source):
                ctx.note(f"{inp.ref}: not FITS, nothing to decompress")
                continue
            target = ctx.scratch(".fits")
            try:
                made = decompress_fits(inp, target)
            except Exception as exc:  # noqa: BLE001 - one unreadable file does not stop the order
                target.unlink(missing_ok=True)
                ctx.note(f"{inp.ref}: not decompressed ({type(exc).__name__}: {exc})")
                continue
            if not made:
                target.unlink(missing_ok=True)
                ctx.note(f"{inp.ref}: neither tile- nor gzip-compressed, left out (order it as original)")
                continue
            out.append(OutputFile(f"{ctx.folder}/{fits_stem(inp.key)}", None, target, ctx.folder, (inp.ref,)))
        return out


def decompress_fits(inp: DipInput, target: Any) -> bool:
    """Write ``inp`` uncompressed to ``target``; False (nothing written) when it is not compressed.

    Stored integers and their BSCALE/BZERO/BLANK are kept as they are (no rescaling); quantized
    floating-point images come out as the floats the compression describes.
    """
    from astropy.io import fits

    from oais import __version__

    with open(inp.source, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    with open_fits(inp.source, do_not_scale_image_data=True) as hdul:
        tiled = [i for i, h in enumerate(hdul) if isinstance(h, fits.CompImageHDU)]
        if not tiled and not gzipped:
            return False
        hdus: list[Any] = []
        for index, hdu in enumerate(hdul):
            if index in tiled:
                header = hdu.header.copy()
                header.add_history(f"oais-archive {__version__} DIP: decompressed from tile-compressed HDU {index} "
                                   f"of {inp.path} (AIP {inp.aip_id} version {inp.version})")
                plain = fits.ImageHDU(data=hdu.data, header=header)
                restore_scaling(plain.header, hdu.header, plain.data)
                hdus.append(plain)
            else:
                hdus.append(hdu)
        write_fits(fits.HDUList(hdus), target)
    return True


__all__ = ["Cutout", "Decompress", "cutout_fits", "decompress_fits"]
