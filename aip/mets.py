"""METS 1.12 for one AIP version: the AIP's map, ``METS.xml`` at the root of the OCFL object content.

Layout, in the order the METS 1.12 schema requires:

- ``mets`` with ``OBJID`` (the AIP id), ``TYPE="Dataset"``, ``LABEL`` (the description's label, else the
  dataset) and an optional ``PROFILE``;
- ``metsHdr`` (``CREATEDATE`` = the version's creation time, ``RECORDSTATUS`` ``NEW`` for version 1 and
  ``VERSION`` after), a CREATOR agent for this software with its version, the producer, and
  ``altRecordID`` for the dataset and the version;
- one ``dmdSec`` per descriptive metadata file (``mdRef``);
- one ``amdSec`` whose ``digiprovMD`` points (``mdRef``) to the PREMIS file;
- ``fileSec`` with one ``fileGrp`` per representation (``USE`` = its name, e.g. ``original``) or role
  (``submission``, ``metadata``), each file with SIZE, SHA-256 CHECKSUM, MIMETYPE when known, ADMID to
  the PREMIS section and an ``FLocat`` with the percent-encoded relative path;
- a ``physical`` ``structMap``: the AIP, a div per representation, then one div per folder, ending in
  ``fptr``.

``METS.xml``, the PREMIS file and the descriptive files are not listed in the fileSec (they are in the
sections above). IDs are derived from paths (``file-`` + 16 hex digits of sha256), so identical input
gives identical bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from lxml import etree

from aip.xmltext import xml_attrs, xml_text

import oais
from aip.premis import PREMIS_PATH, utc_timestamp
from oais.domain.fixity import Fixity
from oais.domain.package import AipVersionDescription, ContentFile, FileRole
from oais.formats.xmlschema import METS_NS, XLINK_NS

__all__ = ["build_mets", "METS_PATH", "METS_SCHEMA_LOCATION", "file_id", "href"]

METS_PATH = "METS.xml"
METS_SCHEMA_LOCATION = "http://www.loc.gov/standards/mets/version112/mets.xsd"
XLINK_SCHEMA_LOCATION = "http://www.loc.gov/standards/xlink/xlink.xsd"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SOFTWARE = "oais-archive"
PREMIS_SECTION_ID = "digiprov-premis"

MDTYPES = frozenset({
    "MARC", "MODS", "EAD", "DC", "NISOIMG", "LC-AV", "VRA", "TEIHDR", "DDI", "FGDC", "LOM", "PREMIS",
    "PREMIS:OBJECT", "PREMIS:AGENT", "PREMIS:RIGHTS", "PREMIS:EVENT", "TEXTMD", "METSRIGHTS",
    "ISO 19115:2003 NAP", "EAC-CPF", "LIDO",
})
"""MDTYPE values of METS 1.12; any other metadata type is written as OTHER + OTHERMDTYPE."""

_MIME_BY_SUFFIX = {".xml": "text/xml", ".json": "application/json", ".txt": "text/plain"}
_ROLE_ORDER = {FileRole.ORIGINAL: 0, FileRole.NORMALIZED: 1, FileRole.SUBMISSION: 2, FileRole.METADATA: 3}
_NSMAP = {"mets": METS_NS, "xlink": XLINK_NS, "xsi": XSI_NS}
_HREF = f"{{{XLINK_NS}}}href"


def _q(name: str) -> str:
    return f"{{{METS_NS}}}{name}"


def _sub(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, _q(name), xml_attrs(attrs))
    if text is not None:
        element.text = xml_text(text)
    return element


def _xml_id(prefix: str, key: str) -> str:
    return f"{prefix}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:16]}"


def file_id(path: str) -> str:
    """The METS ``file/@ID`` of the file at logical ``path`` (an xs:ID, stable across versions)."""
    return _xml_id("file", path)


def href(path: str) -> str:
    """``path`` as a relative URL: UTF-8 percent-encoding of everything but unreserved characters and ``/``."""
    return quote(path, safe="/")


def _link(element: etree._Element, path: str) -> None:
    element.set("LOCTYPE", "URL")
    element.set(f"{{{XLINK_NS}}}type", "simple")
    element.set(_HREF, href(path))


def _core(element: etree._Element, fixity: Fixity, mime: str | None) -> None:
    if mime:
        element.set("MIMETYPE", mime)
    element.set("SIZE", str(fixity.size))
    element.set("CHECKSUM", fixity.sha256)
    element.set("CHECKSUMTYPE", "SHA-256")


def _group_name(f: ContentFile) -> str:
    """``representations/<name>/...`` belong to representation ``<name>``; other files to their role."""
    parts = f.path.split("/")
    if parts[0] == "representations" and len(parts) > 2:
        return parts[1]
    return f.role.value


def _header(root: etree._Element, desc: AipVersionDescription, software_version: str) -> None:
    header = _sub(root, "metsHdr", CREATEDATE=utc_timestamp(desc.created),
                  RECORDSTATUS="NEW" if desc.version == 1 else "VERSION")
    creator = _sub(header, "agent", ROLE="CREATOR", TYPE="OTHER", OTHERTYPE="SOFTWARE")
    _sub(creator, "name", SOFTWARE)
    _sub(creator, "note", software_version)
    if desc.producer:
        producer = _sub(header, "agent", ROLE="OTHER", OTHERROLE="PRODUCER", TYPE="ORGANIZATION")
        _sub(producer, "name", desc.producer)
    if desc.dataset:
        _sub(header, "altRecordID", desc.dataset, TYPE="dataset")
    _sub(header, "altRecordID", f"v{desc.version}", TYPE="version")


def _md_ref(section: etree._Element, path: str, fixity: Fixity | None, mdtype: str) -> None:
    ref = _sub(section, "mdRef")
    _link(ref, path)
    if mdtype in MDTYPES:
        ref.set("MDTYPE", mdtype)
    else:
        ref.set("MDTYPE", "OTHER")
        ref.set("OTHERMDTYPE", mdtype)
    if fixity is not None:
        suffix = path[path.rfind("."):] if "." in path.rsplit("/", 1)[-1] else ""
        _core(ref, fixity, _MIME_BY_SUFFIX.get(suffix.lower()))


@dataclass
class _Folder:
    files: list[ContentFile] = field(default_factory=list)
    folders: dict[str, _Folder] = field(default_factory=dict)


def _tree(files: Sequence[ContentFile]) -> _Folder:
    """The folder tree of ``files``; each folder is looked up once, not once per file in it."""
    top = _Folder()
    by_directory: dict[str, _Folder] = {}  # path up to its last "/" (or "") -> folder
    for f in files:
        directory = f.path[:f.path.rfind("/") + 1]
        node = by_directory.get(directory)
        if node is None:
            node = top
            for segment in directory.split("/")[:-1]:
                child = node.folders.get(segment)
                if child is None:
                    child = node.folders[segment] = _Folder()
                node = child
            by_directory[directory] = node
        node.files.append(f)
    return top


def _divs(parent: etree._Element, folder: _Folder, path: str, file_ids: dict[str, str]) -> None:
    """The fptr and div children of ``parent`` for ``folder``; ``file_ids`` maps paths to file IDs."""
    # divType is a sequence: every fptr comes before any child div.
    fptr = _q("fptr")
    for f in sorted(folder.files, key=lambda f: f.path):
        etree.SubElement(parent, fptr, {"FILEID": xml_text(file_ids[f.path])})
    for name in sorted(folder.folders):
        sub = folder.folders[name]
        child_path = f"{path}/{name}" if path else name
        if child_path == "representations" and not sub.files:
            _divs(parent, sub, child_path, file_ids)  # representation divs sit directly under the AIP div
            continue
        kind = "representation" if path == "representations" else "folder"
        _divs(_sub(parent, "div", TYPE=kind, LABEL=name), sub, child_path, file_ids)


def _file(group: etree._Element, f: ContentFile, identifier: str) -> etree._Element:
    """The ``file`` element of ``f`` with its ``FLocat``, built attribute by attribute."""
    element = _sub(group, "file", ID=identifier)
    _core(element, f.fixity, f.mime)
    element.set("ADMID", PREMIS_SECTION_ID)
    _link(_sub(element, "FLocat"), f.path)
    return element


class _FileCopies:
    """``file`` elements made by copying one built by ``_file`` (with or without MIMETYPE), then
    setting the attributes proper to each file.

    libxml2 copies the element and its ``FLocat`` in one call, instead of two elements and nine
    attributes being made from Python for each of the thousands of files of a large delivery.
    Setting an attribute an element already has replaces its value where it stands, so the copy
    keeps ``_file``'s attribute order; each value is computed and escaped as ``_file`` does (the ID
    through ``xml_text``, the others set as they are), so the bytes written are the same. The
    templates belong to one document: nothing is shared between calls (or threads).
    """

    def __init__(self) -> None:
        self._scratch = etree.Element(_q("mets"), nsmap=_NSMAP)
        self._templates: dict[bool, etree._Element] = {}

    def add(self, group: etree._Element, f: ContentFile, identifier: str) -> None:
        has_mime = bool(f.mime)
        template = self._templates.get(has_mime)
        if template is None:
            template = self._templates[has_mime] = _file(self._scratch, f, identifier)
        element = template.__copy__()  # lxml's copy of an element copies its whole subtree
        element.set("ID", xml_text(identifier))
        if f.mime:
            element.set("MIMETYPE", f.mime)
        element.set("SIZE", str(f.fixity.size))
        element.set("CHECKSUM", f.fixity.sha256)
        element[0].set(_HREF, href(f.path))
        group.append(element)


def build_mets(
    desc: AipVersionDescription,
    premis_path: str = PREMIS_PATH,
    premis_fixity: Fixity | None = None,
    descriptive: Sequence[tuple[str, Fixity, str]] = (),
    *,
    profile: str | None = None,
    software_version: str | None = None,
) -> bytes:
    """The METS 1.12 document (UTF-8 bytes with an XML declaration) for one AIP version.

    ``descriptive`` holds ``(logical path, fixity, metadata type)``; a type that is a METS MDTYPE
    (``DC``, ``MODS``...) is used as such, any other (``DataCite``, ``FITS-header-JSON``) becomes
    ``MDTYPE="OTHER" OTHERMDTYPE=...``. ``software_version`` defaults to ``oais.__version__``.
    """
    referenced = {METS_PATH, premis_path, *(path for path, _, _ in descriptive)}
    files = sorted((f for f in desc.files if f.path not in referenced), key=lambda f: f.path)
    ids = [file_id(f.path) for f in files]
    if len(set(ids)) != len(files):
        raise ValueError("two paths give the same METS file ID")  # 64-bit collision: never in practice
    file_ids = {f.path: identifier for f, identifier in zip(files, ids)}

    root = etree.Element(_q("mets"), nsmap=_NSMAP)
    root.set(f"{{{XSI_NS}}}schemaLocation",
             f"{METS_NS} {METS_SCHEMA_LOCATION} {XLINK_NS} {XLINK_SCHEMA_LOCATION}")
    root.set("OBJID", desc.aip_id)
    root.set("TYPE", "Dataset")
    if desc.label or desc.dataset:
        root.set("LABEL", desc.label or desc.dataset)
    if profile:
        root.set("PROFILE", profile)
    _header(root, desc, software_version or oais.__version__)

    dmd_ids = []
    for path, fixity, mdtype in sorted(descriptive, key=lambda d: d[0]):
        dmd_ids.append(_xml_id("dmd", path))
        section = _sub(root, "dmdSec", ID=dmd_ids[-1], CREATED=utc_timestamp(desc.created))
        _md_ref(section, path, fixity, mdtype)
    amd = _sub(root, "amdSec", ID="amd")
    digiprov = _sub(amd, "digiprovMD", ID=PREMIS_SECTION_ID, CREATED=utc_timestamp(desc.created))
    _md_ref(digiprov, premis_path, premis_fixity, "PREMIS")

    if files:
        groups: dict[str, list[ContentFile]] = {}
        for f in files:
            groups.setdefault(_group_name(f), []).append(f)
        file_sec = _sub(root, "fileSec")
        order = sorted(groups, key=lambda g: (min(_ROLE_ORDER[f.role] for f in groups[g]), g))
        copies = _FileCopies()
        for name in order:
            group = _sub(file_sec, "fileGrp", ID=_xml_id("grp", name), USE=name)
            for f in groups[name]:
                copies.add(group, f, file_ids[f.path])

    struct_map = _sub(root, "structMap", TYPE="physical", LABEL="AIP content")
    top = _sub(struct_map, "div", TYPE="AIP", LABEL=desc.aip_id, ADMID=PREMIS_SECTION_ID)
    if dmd_ids:
        top.set("DMDID", " ".join(dmd_ids))
    _divs(top, _tree(files), "", file_ids)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
