"""Text for XML 1.0, which cannot carry most control characters (file names on disk can).

A value holding a character XML 1.0 cannot carry is written percent-encoded in full (UTF-8, RFC 3986
style, ``%`` included); every other value is written as it is. The exact name is always in the OCFL
inventory (JSON), so nothing is lost.
"""

from __future__ import annotations

import re
from urllib.parse import quote

NOT_XML_CHARS = "\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff"  # a character class's inside
_NOT_XML = re.compile(f"[{NOT_XML_CHARS}]")


def xml_text(value: str) -> str:
    if _NOT_XML.search(value):
        return quote(value, safe="/ :")
    return value


def xml_attrs(attrs: dict[str, str]) -> dict[str, str]:
    return {k: xml_text(v) for k, v in attrs.items()}
