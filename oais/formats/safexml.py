"""Parsing untrusted XML (delivery manifests, submission agreements) without letting it reach out.

``parse_xml`` uses an lxml parser that never resolves entities, never loads a DTD and never touches
the network (``resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False``), and on top
of that refuses, with ``UnsafeXml``, any document whose DOCTYPE

* declares entities (internal or external, general or parameter): billion laughs, quadratic blow-up,
  XXE such as ``<!ENTITY x SYSTEM "file:///etc/passwd">`` or an ``http://`` URL;
* names an external DTD (``SYSTEM`` or ``PUBLIC`` identifier): our documents are validated against our
  own XSDs, never against a DTD they point at;

and any document still holding an entity reference after parsing. A plain ``<!DOCTYPE root>`` is
accepted. A document that is not well-formed raises lxml's ``etree.XMLSyntaxError`` unchanged.
Documents above ``max_bytes`` are refused before they are parsed.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from lxml import etree

MAX_XML_BYTES = 64 << 20
"""Manifests and agreements are small; nothing larger is parsed."""

# "<!ENTITY" in the encodings an XML document may declare without a BOM-less ambiguity
_ENTITY_MARKERS = tuple("<!ENTITY".encode(enc) for enc in ("utf-8", "utf-16-le", "utf-16-be",
                                                            "utf-32-le", "utf-32-be"))


class UnsafeXml(ValueError):
    """The document declares entities or points at an external DTD: refused before it is used."""


def safe_parser() -> etree.XMLParser:
    """A fresh lxml parser that resolves nothing and loads nothing (parsers are not thread-safe)."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           dtd_validation=False, attribute_defaults=False)


def _read(data: bytes | Path, max_bytes: int) -> tuple[bytes, str]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        name = "<bytes>"
    else:
        path = Path(data)
        name = str(path)
        with open(path, "rb", opener=lambda p, f: os.open(p, f | getattr(os, "O_NONBLOCK", 0))) as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise UnsafeXml(f"{name}: not a regular file")
            raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise UnsafeXml(f"{name}: larger than {max_bytes} bytes")
    return raw, name


def parse_xml(data: bytes | Path, *, max_bytes: int = MAX_XML_BYTES) -> etree._ElementTree:
    """Parse untrusted XML safely; raise ``UnsafeXml`` for entity declarations or external DTDs."""
    raw, name = _read(data, max_bytes)
    # refuse before libxml2 sees the declarations at all
    if any(marker in raw for marker in _ENTITY_MARKERS):
        raise UnsafeXml(f"{name}: the DOCTYPE declares entities (refused: entity expansion and "
                        "external entities are never allowed)")
    tree = etree.parse(io.BytesIO(raw), safe_parser())
    docinfo = tree.docinfo
    dtd = docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise UnsafeXml(f"{name}: the DOCTYPE declares entities")
    if docinfo.system_url or docinfo.public_id:
        raise UnsafeXml(f"{name}: the DOCTYPE names an external DTD "
                        f"({docinfo.public_id or ''} {docinfo.system_url or ''})".replace("( ", "("))
    root = tree.getroot()
    if any(True for _ in root.iter(etree.Entity)):
        raise UnsafeXml(f"{name}: the document holds an entity reference")
    return tree


__all__ = ["MAX_XML_BYTES", "UnsafeXml", "parse_xml", "safe_parser"]
