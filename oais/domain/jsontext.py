"""JSON text with a 2-space indent, written faster than ``json.dumps`` writes it, and the same text.

With an indent, ``json.dumps`` runs its pure-Python encoder (a generator per list and dict): slow
for an OCFL inventory of 20,000 files, or for the ``--json`` result of an ingest that lists 20,000
warnings (0.36 s to print). ``indented_json`` writes the values such documents hold (dicts with
string keys, lists, tuples, strings, integers, booleans, None, finite floats) in the same layout,
with the same separators (``","`` and ``": "``) and strings escaped by the same function
(``json.encoder.encode_basestring``, written in C, as with ``ensure_ascii=False``). Any other value
(with ``default``: what ``default`` returns for it, as ``json.dumps`` does), a dict key that is not
a string, a float that is not finite, or a nesting more than 64 levels deep (a list or dict holding
itself included) stops this writer, and the text is left to ``json.dumps``: its result or its error
is the reference.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

_MAX_DEPTH = 64


class _LeftToJsonDumps(Exception):
    """A value this writer leaves to ``json.dumps``."""


def indented_json(value: Any, *, sort_keys: bool = False, default: Callable[[Any], Any] | None = None) -> str:
    """``json.dumps(value, indent=2, ensure_ascii=False, separators=(",", ": "), sort_keys=sort_keys,
    default=default)``: the same text (no trailing newline)."""
    encode_string = json.encoder.encode_basestring

    def text(item: Any, newline: str) -> str:
        """``item`` at the indent level of ``newline`` (a line break and the level's indent).

        Containers are tested first, being the common case; no value is of two of these types (bool,
        a subclass of int, is told apart before int, as ``json.dumps`` does)."""
        if isinstance(item, (list, tuple)):
            if not item:
                return "[]"
            if len(newline) > 1 + 2 * _MAX_DEPTH:
                raise _LeftToJsonDumps
            inner = newline + "  "
            parts = [encode_string(v) if isinstance(v, str) else text(v, inner) for v in item]
            return f"[{inner}{(',' + inner).join(parts)}{newline}]"
        if isinstance(item, dict):
            if not item:
                return "{}"
            if len(newline) > 1 + 2 * _MAX_DEPTH:
                raise _LeftToJsonDumps
            pairs = list(item.items())
            if not all(isinstance(key, str) for key, _ in pairs):
                raise _LeftToJsonDumps
            if sort_keys:
                pairs.sort(key=_first)  # as json.dumps sorts them
            inner = newline + "  "
            parts = [f"{encode_string(key)}: {encode_string(v) if isinstance(v, str) else text(v, inner)}"
                     for key, v in pairs]
            return f"{{{inner}{(',' + inner).join(parts)}{newline}}}"
        if isinstance(item, str):
            return encode_string(item)
        if item is None:
            return "null"
        if item is True:
            return "true"
        if item is False:
            return "false"
        if isinstance(item, int):
            return int.__repr__(item)
        if isinstance(item, float) and math.isfinite(item):
            return float.__repr__(item)
        if default is None or len(newline) > 1 + 2 * _MAX_DEPTH:
            raise _LeftToJsonDumps
        return text(default(item), newline)

    try:
        return text(value, "\n")
    except (_LeftToJsonDumps, RecursionError):
        return json.dumps(value, sort_keys=sort_keys, indent=2, ensure_ascii=False, separators=(",", ": "),
                          default=default)


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]


__all__ = ["indented_json"]
