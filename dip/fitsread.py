"""FITS helpers shared by the transforms: recognise, open (read-only), pick the image, write reproducibly.

astropy is imported inside the functions. Choices:

* A file is FITS when it starts with ``SIMPLE  =`` (also inside a gzip stream: astropy reads ``.fits.gz``).
* "The image" of a file is the first HDU with image data of at least 2 x 2 pixels on its last two axes
  (primary, image extension or tile-compressed ``CompImageHDU``); a cube gives its first plane. HST files
  whose SCI extension is a 1 x 1 placeholder therefore have no image.
* ``write_fits`` writes CHECKSUM/DATASUM with fixed comments (astropy stamps the current time into their
  comments, which would make every run's bytes differ): the same HDUs give the same bytes every time.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FITS_MAGIC = b"SIMPLE  ="
CHECKSUM_COMMENT = "HDU checksum"
DATASUM_COMMENT = "data unit checksum"
FITS_SUFFIXES = (".fits", ".fit", ".fts")
PACKED_SUFFIXES = (".gz", ".fz")
SCALING = ("BSCALE", "BZERO", "BLANK")


def is_fits(path: Path) -> bool:
    """True when ``path`` holds a FITS file (plain or gzip-compressed)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(FITS_MAGIC))
            if head[:2] == b"\x1f\x8b":
                f.seek(0)
                with gzip.open(f) as g:
                    head = g.read(len(FITS_MAGIC))
    except (OSError, EOFError):
        return False
    return head == FITS_MAGIC


@contextlib.contextmanager
def open_fits(path: Path, **kwargs: Any) -> Iterator[Any]:
    """``fits.open`` read-only and lazily, with astropy's warnings about odd cards silenced."""
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        options = {"mode": "readonly", "lazy_load_hdus": True, "memmap": False}  # .section reads slices
        options.update(kwargs)
        with fits.open(path, **options) as hdul:
            yield hdul


def _is_image(hdu: Any) -> bool:
    from astropy.io import fits

    return isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))


def _axes(header: Any) -> list[int]:
    naxis = header.get("NAXIS", 0)
    if not isinstance(naxis, int) or isinstance(naxis, bool) or naxis < 0:
        return []
    return [header.get(f"NAXIS{n}", 0) for n in range(1, naxis + 1)]


def usable_image(hdu: Any) -> bool:
    """An image HDU with at least 2 x 2 pixels on its first two FITS axes."""
    if not _is_image(hdu):
        return False
    axes = _axes(hdu.header)
    return len(axes) >= 2 and all(isinstance(a, int) and a >= 2 for a in axes[:2])


def find_image(hdul: Any, selector: int | str = "auto") -> tuple[int | None, str]:
    """(index of the image HDU, "") or (None, why there is none). ``selector``: auto, an index or an EXTNAME."""
    if selector == "auto":
        for index, hdu in enumerate(hdul):
            if usable_image(hdu):
                return index, ""
        return None, "no HDU holds 2-D image data of at least 2 x 2 pixels"
    if isinstance(selector, int):
        if selector >= len(hdul):
            return None, f"no HDU {selector} (the file has {len(hdul)})"
        index = selector
    else:
        names = [i for i, h in enumerate(hdul) if (h.name or "").upper() == selector]
        if not names:
            return None, f"no HDU named {selector}"
        index = names[0]
    if not usable_image(hdul[index]):
        return None, f"HDU {index} holds no 2-D image data of at least 2 x 2 pixels"
    return index, ""


def plane(hdu: Any) -> Any:
    """The image as a numpy array (scaled by BSCALE/BZERO unless the file was opened with
    ``do_not_scale_image_data=True``); the first plane of a cube.

    Read through ``.section``, so only that plane is read (tile-compressed images too).
    """
    ndim = len(_axes(hdu.header))
    index = (0,) * (ndim - 2) + (slice(None), slice(None))
    return hdu.section[index]


def restore_scaling(target: Any, source: Any, data: Any) -> None:
    """Copy BSCALE, BZERO (and, for integer data, BLANK) from header ``source`` into ``target``.

    Set after an HDU is built around stored (unscaled) values: astropy drops these keywords from a header
    given with the data, which would silently change what the stored integers mean.
    """
    for key in SCALING:
        if key in source and (key != "BLANK" or data.dtype.kind in "iu"):
            target[key] = (source[key], source.comments[key])


def hdu_label(hdul: Any, index: int) -> str:
    hdu = hdul[index]
    name = hdu.name or ("PRIMARY" if index == 0 else "")
    return f"HDU {index} ({name})" if name else f"HDU {index}"


def write_fits(hdul: Any, target: Path | None = None) -> bytes | None:
    """Write ``hdul`` with CHECKSUM/DATASUM on every HDU, reproducibly; to ``target``, or return the bytes.

    astropy converts the data for writing in a first pass (unsigned integers to BZERO, ...); the checksums
    are then computed on that file as stored, with fixed comments, and the result re-verified.
    """
    from astropy.io import fits

    staged = None if target is None else target.with_name(target.name + ".pass1")
    first: Any = io.BytesIO() if staged is None else staged
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hdul.writeto(first, checksum=False, output_verify="exception", overwrite=staged is not None)
            if isinstance(first, io.BytesIO):
                first.seek(0)
            out: Any = io.BytesIO() if target is None else open(target, "wb")
            with out, fits.open(first, mode="readonly", do_not_scale_image_data=True,
                                disable_image_compression=True) as stored:
                for hdu in stored:
                    hdu.add_datasum(when=DATASUM_COMMENT)
                    hdu.add_checksum(when=CHECKSUM_COMMENT, override_datasum=True)
                stored.writeto(out, checksum=False, output_verify="exception")
                data = out.getvalue() if target is None else None
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)
    _verify_written(data if data is not None else target)
    return data


def _verify_written(what: bytes | Path | None) -> None:
    from astropy.io import fits

    source: Any = io.BytesIO(what) if isinstance(what, bytes) else what
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(source, mode="readonly", do_not_scale_image_data=True,
                       disable_image_compression=True) as check:
            for index, hdu in enumerate(check):
                if hdu.verify_checksum() != 1 or hdu.verify_datasum() != 1:
                    raise RuntimeError(f"HDU {index}: CHECKSUM/DATASUM of the written file do not verify")


def fits_stem(key: str) -> str:
    """``a/b.fits.gz`` -> ``a/b.fits``, ``a/b.fts`` -> ``a/b.fts``, ``a/b.dat`` -> ``a/b.dat.fits``: the name of
    a plain FITS file made from the input named ``key``."""
    stem = key
    for suffix in PACKED_SUFFIXES:
        if stem.lower().endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break
    if not stem.lower().endswith(FITS_SUFFIXES):
        stem += ".fits"
    return stem


__all__ = ["find_image", "fits_stem", "hdu_label", "is_fits", "open_fits", "plane", "restore_scaling", "usable_image",
           "write_fits"]
