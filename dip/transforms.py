"""The registry of DIP transforms: small, documented renderers from AIP files to DIP files.

``TRANSFORMS`` maps a name to its renderer (a ``dip.base.Transform``):

============  ===============================================================================================
original      the files as they are (the default); streamed into the zip, checked against their sha512
quicklook     FITS image -> PNG (``interval``, ``stretch``, ``size``, ``cmap``)             ``dip.quicklook``
headers       every FITS header -> ``headers/<key>.json`` + one ``headers.csv``             ``dip.metadata``
votable       the selection's metadata -> ``selection.vot.xml``                             ``dip.metadata``
cutout        pixel (or helioprojective) box -> FITS with WCS, HISTORY, CHECKSUM            ``dip.cutout``
decompress    tile-compressed FITS -> plain FITS with CHECKSUM                              ``dip.cutout``
============  ===============================================================================================

Each renderer's ``render(inputs, params)`` returns ``OutputFile`` values whose paths are relative to the
bag's ``data/`` folder; ``<key>`` is ``DipInput.key`` (``<aip id>/v<version>/<logical path>``). A bad parameter
raises ``TransformError`` naming the transform and the parameter; ``help_text()`` documents them all.
Importing this module is cheap: astropy, numpy and Pillow are imported when a transform runs.
"""

from __future__ import annotations

from typing import Any

from dip.base import RenderContext, Transform
from dip.cutout import Cutout, Decompress
from dip.metadata import Headers, VOTable
from dip.model import DipInput, OutputFile, TransformError, TransformSpec
from dip.quicklook import Quicklook

DEFAULT_TRANSFORM = "original"


class Original(Transform):
    name = "original"
    summary = "the archived files, bit for bit (original/<key>)"

    def _render(self, inputs: list[DipInput], values: dict[str, Any], ctx: RenderContext) -> list[OutputFile]:
        return [OutputFile(f"{ctx.folder}/{inp.key}", None, inp.source, ctx.folder, (inp.ref,), sha512=inp.sha512)
                for inp in inputs]


TRANSFORMS: dict[str, Transform] = {t.name: t for t in (Original(), Quicklook(), Headers(), VOTable(), Cutout(),
                                                         Decompress())}


def get_transform(name: str) -> Transform:
    """The registered transform called ``name``; ``TransformError`` when there is none."""
    try:
        return TRANSFORMS[name]
    except KeyError:
        raise TransformError(name, None, f"unknown transform (known: {', '.join(sorted(TRANSFORMS))})") from None


def validate_spec(spec: TransformSpec) -> dict[str, str]:
    """Check ``spec`` against its transform; return every effective parameter as text (defaults filled in)."""
    return get_transform(spec.name).effective(spec.params)


def help_text() -> str:
    """Every transform with its parameters and defaults."""
    return "\n".join(TRANSFORMS[name].help() for name in sorted(TRANSFORMS))


__all__ = ["DEFAULT_TRANSFORM", "TRANSFORMS", "Original", "Transform", "TransformError", "get_transform",
           "help_text", "validate_spec"]
