"""``quicklook``: FITS image -> PNG, 8-bit grayscale (or an instrument colour map when sunpy is installed).

The image is the first HDU with 2-D image data (``dip.fitsread.find_image``); a cube gives its first plane.
Scaling follows ``astropy.visualization``: an interval (``zscale`` by default, ``minmax``, or
``percentile:P``) computed on the finite pixels, then a stretch (``linear``, ``sqrt`` or ``asinh``).
NaN and infinite pixels are drawn black. Row 0 of the FITS image is the bottom row of the PNG (as ds9 and
matplotlib's ``origin='lower'`` show it). Images are shrunk (Lanczos, never enlarged) so that their longer
side is at most ``size`` pixels. The PNG carries no time or text chunks: the same input and parameters
give the same bytes.
"""

from __future__ import annotations

import io
from typing import Any

from dip.base import Param, RenderContext, Transform, choice, has_module, integer
from dip.fitsread import find_image, hdu_label, is_fits, open_fits, plane
from dip.model import DipInput, OutputFile

MAX_SIDE = 4096
DEFAULT_SIDE = 1024


def parse_interval(text: str) -> tuple[str, float | None]:
    """``zscale`` | ``minmax`` | ``percentile:P`` (0 < P <= 100) -> (kind, P or None)."""
    if text in ("zscale", "minmax"):
        return text, None
    kind, _, value = text.partition(":")
    if kind == "percentile":
        try:
            p = float(value)
        except ValueError:
            p = float("nan")
        if not 0 < p <= 100:
            raise ValueError("percentile:P needs 0 < P <= 100")
        return kind, p
    raise ValueError("must be zscale, minmax or percentile:P")


class Quicklook(Transform):
    name = "quicklook"
    summary = "a PNG preview of the first 2-D image of each FITS file (8-bit, scaled with astropy.visualization)"
    params = (
        Param("interval", "zscale, minmax or percentile:P (P in (0, 100])", parse_interval, "zscale"),
        Param("stretch", "linear, sqrt or asinh", choice("linear", "sqrt", "asinh"), "linear"),
        Param("size", f"longest side in pixels, 16..{MAX_SIDE}; smaller images keep their size",
              integer(16, MAX_SIDE), str(DEFAULT_SIDE)),
        Param("cmap", "gray, or instrument (the instrument's colour map; needs sunpy)",
              choice("gray", "instrument"), "gray"),
    )

    def check(self, values: dict[str, Any], given: Any) -> None:
        if values["cmap"] == "instrument" and not has_module("sunpy"):
            raise self.bad("cmap", "instrument colour maps need sunpy, which is not installed (use cmap=gray)")

    def _render(self, inputs: list[DipInput], values: dict[str, Any], ctx: RenderContext) -> list[OutputFile]:
        out: list[OutputFile] = []
        for inp in inputs:
            if not is_fits(inp.source):
                ctx.note(f"{inp.ref}: not FITS, no quicklook")
                continue
            try:
                png, detail = quicklook_png(inp.source, **values)
            except Exception as exc:  # noqa: BLE001 - one unreadable file does not stop the order
                ctx.note(f"{inp.ref}: no quicklook ({type(exc).__name__}: {exc})")
                continue
            if png is None:
                ctx.note(f"{inp.ref}: no quicklook ({detail})")
                continue
            if detail:
                ctx.note(f"{inp.ref}: {detail}")
            out.append(OutputFile(f"{ctx.folder}/{inp.key}.png", png, None, ctx.folder, (inp.ref,)))
        return out


def quicklook_png(path: Any, *, interval: tuple[str, float | None] = ("zscale", None), stretch: str = "linear",
                  size: int = DEFAULT_SIDE, cmap: str = "gray") -> tuple[bytes | None, str]:
    """(PNG bytes, a remark) or (None, why not) for the FITS file at ``path``."""
    import numpy as np

    with open_fits(path) as hdul:
        index, why = find_image(hdul)
        if index is None:
            return None, why
        header = hdul[index].header.copy()
        data = np.asarray(plane(hdul[index]), dtype=np.float32)  # plenty for 8 bits, half the memory
        where = hdu_label(hdul, index)
    levels = scale_to_bytes(data, interval=interval, stretch=stretch)
    if levels is None:
        return None, f"{where} has no finite pixel"
    remark = ""
    rgb = None
    if cmap == "instrument":
        rgb, remark = _instrument_colours(levels, data, header)
    return encode_png(levels if rgb is None else rgb, size), remark


def scale_to_bytes(data: Any, *, interval: tuple[str, float | None], stretch: str) -> Any:
    """Finite pixels scaled to 0..255 (uint8) with the interval and stretch; non-finite pixels 0.
    None when no pixel is finite."""
    import numpy as np
    from astropy.visualization import (AsinhStretch, LinearStretch, MinMaxInterval, PercentileInterval,
                                       SqrtStretch, ZScaleInterval)

    finite = np.isfinite(data)
    values = data[finite]
    if values.size == 0:
        return None
    kind, p = interval
    chosen = {"zscale": ZScaleInterval, "minmax": MinMaxInterval}.get(kind)
    limits = chosen() if chosen else PercentileInterval(p)
    vmin, vmax = (float(v) for v in limits.get_limits(values))
    if not vmax > vmin:  # a flat image: everything mid-grey rather than a division by zero
        scaled = np.where(finite, 0.5, 0.0)
    else:
        scaled = np.clip((np.where(finite, data, vmin) - vmin) / (vmax - vmin), 0.0, 1.0)
    stretched = {"linear": LinearStretch(), "sqrt": SqrtStretch(), "asinh": AsinhStretch()}[stretch](scaled, clip=True)
    levels = np.round(np.clip(stretched, 0.0, 1.0) * 255.0).astype(np.uint8)
    levels[~finite] = 0
    return levels


def encode_png(levels: Any, size: int) -> bytes:
    """PNG bytes of a (rows, cols) uint8 or (rows, cols, 3) RGB array, FITS row 0 at the bottom, shrunk so its
    longer side is at most ``size``; no metadata chunks."""
    import numpy as np
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(np.flipud(levels)))  # uint8: "L", or "RGB" for (rows, cols, 3)
    longest = max(image.size)
    if longest > size:
        scale = size / longest
        new = (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale)))
        image = image.resize(new, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _instrument_colours(levels: Any, data: Any, header: Any) -> tuple[Any, str]:
    """RGB levels through the colour map sunpy gives this instrument, or (None, why) to stay gray."""
    import numpy as np

    try:
        import sunpy.map

        smap = sunpy.map.Map(data, header)
        colormap = smap.plot_settings.get("cmap")
        if isinstance(colormap, str):
            import matplotlib

            colormap = matplotlib.colormaps[colormap]
    except Exception as exc:  # noqa: BLE001 - not a solar image sunpy knows: keep gray
        return None, f"no instrument colour map ({type(exc).__name__}: {exc}); gray used"
    if colormap is None or getattr(colormap, "name", "") in ("gray", "Greys_r", "grey"):
        return None, "no instrument colour map for this file; gray used"
    rgba = colormap(levels.astype(np.float64) / 255.0)
    return np.round(np.asarray(rgba)[..., :3] * 255.0).astype(np.uint8), ""


__all__ = ["Quicklook", "encode_png", "parse_interval", "quicklook_png", "scale_to_bytes"]
