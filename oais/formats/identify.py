"""Format identification by file signature, as PRONOM identifiers.

A small built-in signature table covering what deliveries to a space-science archive hold most
(FITS first). Files it does not recognise get no PUID rather than a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class FormatId:
    puid: str | None
    mime: str | None
    name: str


UNKNOWN = FormatId(None, None, "unknown")
FITS = FormatId("x-fmt/383", "application/fits", "Flexible Image Transport System (FITS)")
GZIP = FormatId("x-fmt/266", "application/gzip", "GZIP Format")
ZIP = FormatId("x-fmt/263", "application/zip", "ZIP Format")
PDF = FormatId("fmt/276", "application/pdf", "Acrobat PDF 1.7 - Portable Document Format")
PNG = FormatId("fmt/11", "image/png", "Portable Network Graphics")
XML = FormatId("fmt/101", "text/xml", "Extensible Markup Language")
JSON_ = FormatId("fmt/817", "application/json", "JSON Data Interchange Format")
TEXT = FormatId("x-fmt/111", "text/plain", "Plain Text File")


def identify(path: Path) -> FormatId:
    """Identify ``path`` from its first bytes (and its name for text formats)."""
    with open(path, "rb") as f:
        head = f.read(2880)
    if head.startswith(b"SIMPLE  =") and len(head) >= 30 and head[29:30] == b"T":
        return FITS
    if head.startswith(b"\x1f\x8b"):
        return GZIP
    if head.startswith(b"PK\x03\x04"):
        return ZIP
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<?xml"):
        return XML
    if _is_text(head):
        if path.suffix.lower() == ".json" and stripped[:1] in (b"{", b"["):
            return JSON_
        return TEXT
    return UNKNOWN


def _is_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a multibyte char cut at the end of the sample is fine
            return False
    return True
