"""aip.premis.build_premis: deterministic PREMIS 3.0, complete contents, element order, odd file names."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from lxml import etree

from aip.premis import build_premis
from oais.domain.fixity import Fixity
from oais.domain.package import AipVersionDescription, ContentFile, FileRole
from oais.domain.premis import (
    Agent,
    AgentRole,
    AgentType,
    Event,
    EventType,
    LinkedAgent,
    Outcome,
    file_object_id,
)

P = "{http://www.loc.gov/premis/v3}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
VOC = "http://id.loc.gov/vocabulary/preservation/"
AIP = "urn:uuid:6f1c2a4e-0000-4000-8000-000000000001"
SOFTWARE = Agent("software:oais-archive/0.1.0", "oais-archive", AgentType.SOFTWARE, version="0.1.0")
ARCHIVIST = Agent("person:jdoe", "Jane Doe", AgentType.PERSON, note="duty archivist")
ODD_NAME = "eit/efz 2004 été & <co>.fits"


def fixity(content: bytes) -> Fixity:
    return Fixity(len(content), hashlib.sha256(content).hexdigest(), hashlib.sha512(content).hexdigest())


def files() -> tuple[ContentFile, ...]:
    return (
        ContentFile("representations/original/data/eit/efz20040301.fits", fixity(b"fits-1"), FileRole.ORIGINAL,
                    "eit/efz20040301.fits", "x-fmt/383", "application/fits",
                    "Flexible Image Transport System (FITS)"),
        ContentFile(f"representations/original/data/{ODD_NAME}", fixity(b"fits-2"), FileRole.ORIGINAL,
                    ODD_NAME, "x-fmt/383", "application/fits"),
        ContentFile("representations/original/data/notes.bin", fixity(b"?"), FileRole.ORIGINAL, "notes.bin"),
        ContentFile("submission/bag-info.txt", fixity(b"Bag-Software-Agent: x\n"), FileRole.SUBMISSION,
                    mime="text/plain", format_name="Plain Text File"),
        ContentFile("METS.xml", fixity(b"<mets/>"), FileRole.METADATA),
        ContentFile("metadata/preservation/premis.xml", fixity(b"<premis/>"), FileRole.METADATA),
    )


def description(content: tuple[ContentFile, ...] | None = None) -> AipVersionDescription:
    return AipVersionDescription(
        aip_id=AIP, version=1, dataset="soho-eit", producer="MEDOC",
        created=datetime(2024, 3, 1, 12, 0, tzinfo=UTC), files=files() if content is None else content,
    )


def events() -> list[Event]:
    exe = LinkedAgent(SOFTWARE.identifier, AgentRole.EXECUTING_PROGRAM)
    return [
        Event("urn:uuid:00000000-0000-4000-8000-0000000000e1", EventType.TRANSFER,
              datetime(2024, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=2))), Outcome.SUCCESS,
              detail="delivery received", agents=(exe, LinkedAgent(ARCHIVIST.identifier, AgentRole.AUTHORIZER)),
              objects=(AIP,)),
        Event("urn:uuid:00000000-0000-4000-8000-0000000000e2", EventType.MESSAGE_DIGEST_CALCULATION,
              datetime(2024, 3, 1, 11, 30, tzinfo=UTC), Outcome.WARNING, outcome_detail="1 file & <2> warnings",
              agents=(exe,), objects=(file_object_id(AIP, f"representations/original/data/{ODD_NAME}"),)),
        Event("urn:uuid:00000000-0000-4000-8000-0000000000e3", EventType.INGESTION,
              datetime(2024, 3, 1, 12, 0, tzinfo=UTC), Outcome.SUCCESS, agents=(exe,), objects=(AIP,)),
    ]


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def local(element: etree._Element) -> list[str]:
    return [etree.QName(child).localname for child in element]


def test_output_is_deterministic_and_independent_of_input_order() -> None:
    first = build_premis(description(), events(), [SOFTWARE, ARCHIVIST])
    assert first == build_premis(description(), events(), [SOFTWARE, ARCHIVIST])
    shuffled_files = list(files())
    random.Random(7).shuffle(shuffled_files)
    shuffled = build_premis(description(tuple(shuffled_files)), list(reversed(events())), [ARCHIVIST, SOFTWARE])
    assert shuffled == first


def test_utf8_with_declaration_and_premis_root() -> None:
    data = build_premis(description(), events(), [SOFTWARE, ARCHIVIST])
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n")
    root = parse(data)
    assert root.tag == f"{P}premis" and root.get("version") == "3.0"
    assert b"\n  <premis:object" in data  # pretty printed
    assert "été".encode() in data


def test_top_level_order_objects_events_agents() -> None:
    root = parse(build_premis(description(), events(), [SOFTWARE, ARCHIVIST]))
    names = local(root)
    assert names == ["object"] * 5 + ["event"] * 3 + ["agent"] * 2
    assert root[0].get(XSI_TYPE) == "premis:intellectualEntity"
    assert {o.get(XSI_TYPE) for o in root[1:5]} == {"premis:file"}


def test_every_file_has_both_digests_size_and_identifier() -> None:
    data = build_premis(description(), events(), [SOFTWARE, ARCHIVIST])
    root = parse(data)
    by_id = {o.findtext(f"{P}objectIdentifier/{P}objectIdentifierValue"): o for o in root.iter(f"{P}object")}
    for f in files()[:4]:
        obj = by_id[file_object_id(AIP, f.path)]
        assert obj.findtext(f"{P}objectIdentifier/{P}objectIdentifierType") == "local"
        chars = obj.find(f"{P}objectCharacteristics")
        assert local(chars)[:4] == ["compositionLevel", "fixity", "fixity", "size"]
        digests = {fx.find(f"{P}messageDigestAlgorithm").get("valueURI"): fx.findtext(f"{P}messageDigest")
                   for fx in chars.iter(f"{P}fixity")}
        assert digests == {f"{VOC}cryptographicHashFunctions/sha256": f.fixity.sha256,
                           f"{VOC}cryptographicHashFunctions/sha512": f.fixity.sha512}
        assert chars.findtext(f"{P}size") == str(f.size)
        algorithm = chars.find(f"{P}fixity/{P}messageDigestAlgorithm")
        assert algorithm.get("authority") == "cryptographicHashFunctions"
        assert algorithm.get("authorityURI") == f"{VOC}cryptographicHashFunctions"


def test_metadata_files_written_by_the_archive_are_not_described() -> None:
    data = build_premis(description(), events(), [SOFTWARE, ARCHIVIST])
    assert b"METS.xml" not in data and b"premis.xml" not in data
    custom = build_premis(description(), events(), [SOFTWARE, ARCHIVIST], premis_path="submission/bag-info.txt")
    assert b"bag-info.txt" not in custom and b"premis.xml" in custom


def test_formats_pronom_name_or_unknown() -> None:
    root = parse(build_premis(description(), events(), [SOFTWARE, ARCHIVIST]))
    objects = {o.findtext(f"{P}objectIdentifier/{P}objectIdentifierValue"): o for o in root.iter(f"{P}object")}
    fits = objects[file_object_id(AIP, "representations/original/data/eit/efz20040301.fits")]
    fmt = fits.find(f"{P}objectCharacteristics/{P}format")
    assert local(fmt) == ["formatDesignation", "formatRegistry", "formatNote"]
    assert fmt.findtext(f"{P}formatDesignation/{P}formatName") == "Flexible Image Transport System (FITS)"
    assert fmt.findtext(f"{P}formatRegistry/{P}formatRegistryName") == "PRONOM"
    assert fmt.findtext(f"{P}formatRegistry/{P}formatRegistryKey") == "x-fmt/383"
    assert fmt.findtext(f"{P}formatNote") == "MIME type: application/fits"
    odd = objects[file_object_id(AIP, f"representations/original/data/{ODD_NAME}")]
    assert local(odd.find(f"{P}objectCharacteristics/{P}format")) == ["formatRegistry", "formatNote"]
    unknown = objects[file_object_id(AIP, "representations/original/data/notes.bin")]
    assert unknown.findtext(f"{P}objectCharacteristics/{P}format/{P}formatDesignation/{P}formatName") == "unknown"
    text = objects[file_object_id(AIP, "submission/bag-info.txt")]
    assert text.findtext(f"{P}objectCharacteristics/{P}format/{P}formatDesignation/{P}formatName") == "Plain Text File"


def test_original_names_and_special_characters_round_trip() -> None:
    root = parse(build_premis(description(), events(), [SOFTWARE, ARCHIVIST]))
    names = {o.findtext(f"{P}originalName") for o in root.iter(f"{P}object")}
    assert names == {None, "eit/efz20040301.fits", ODD_NAME, "notes.bin"}
    notes = [n.text for n in root.iter(f"{P}eventOutcomeDetailNote")]
    assert notes == ["1 file & <2> warnings"]


def test_file_object_element_order_and_relationships() -> None:
    root = parse(build_premis(description(), events(), [SOFTWARE, ARCHIVIST]))
    entity, first_file = root[0], root[1]
    assert local(entity) == ["objectIdentifier", "relationship"]
    assert entity.findtext(f"{P}objectIdentifier/{P}objectIdentifierType") == "URN"
    related = entity.findall(f"{P}relationship/{P}relatedObjectIdentifier/{P}relatedObjectIdentifierValue")
    assert [r.text for r in related] == sorted(file_object_id(AIP, f.path) for f in files()[:4])
    assert local(first_file) == ["objectIdentifier", "objectCharacteristics", "originalName", "relationship"]
    sub_type = first_file.find(f"{P}relationship/{P}relationshipSubType")
    assert sub_type.get("valueURI") == f"{VOC}relationshipSubType/isi"
    assert first_file.findtext(f"{P}relationship/{P}relatedObjectIdentifier/{P}relatedObjectIdentifierValue") == AIP


def test_events_vocabularies_times_and_links() -> None:
    root = parse(build_premis(description(), events(), [SOFTWARE, ARCHIVIST]))
    evs = root.findall(f"{P}event")
    # sorted by time: mes 11:30Z, ing 12:00Z, tra 13:00+02:00 = 11:00Z comes first
    assert [e.find(f"{P}eventType").get("valueURI") for e in evs] == [
        f"{VOC}eventType/tra", f"{VOC}eventType/mes", f"{VOC}eventType/ing"]
    assert [e.findtext(f"{P}eventDateTime") for e in evs] == [
        "2024-03-01T11:00:00Z", "2024-03-01T11:30:00Z", "2024-03-01T12:00:00Z"]
    transfer = evs[0]
    assert local(transfer) == ["eventIdentifier", "eventType", "eventDateTime", "eventDetailInformation",
                               "eventOutcomeInformation", "linkingAgentIdentifier", "linkingAgentIdentifier",
                               "linkingObjectIdentifier"]
    assert transfer.findtext(f"{P}eventType") == "transfer"
    assert transfer.find(f"{P}eventType").get("authorityURI") == f"{VOC}eventType"
    assert transfer.findtext(f"{P}eventDetailInformation/{P}eventDetail") == "delivery received"
    outcome = transfer.find(f"{P}eventOutcomeInformation/{P}eventOutcome")
    assert (outcome.text, outcome.get("valueURI")) == ("suc", f"{VOC}eventOutcome/suc")
    roles = [r.get("valueURI") for r in transfer.iter(f"{P}linkingAgentRole")]
    assert roles == [f"{VOC}eventRelatedAgentRole/exe", f"{VOC}eventRelatedAgentRole/aut"]
    obj = transfer.find(f"{P}linkingObjectIdentifier")
    assert (obj.findtext(f"{P}linkingObjectIdentifierType"), obj.findtext(f"{P}linkingObjectIdentifierValue")) == (
        "URN", AIP)
    warning = evs[1].find(f"{P}eventOutcomeInformation/{P}eventOutcome")
    assert warning.get("valueURI") == f"{VOC}eventOutcome/war"
    assert evs[1].findtext(f"{P}linkingObjectIdentifier/{P}linkingObjectIdentifierType") == "local"


def test_agents_with_type_uri_version_and_note() -> None:
    root = parse(build_premis(description(), events(), [SOFTWARE, ARCHIVIST, SOFTWARE]))
    agents = {a.findtext(f"{P}agentIdentifier/{P}agentIdentifierValue"): a for a in root.findall(f"{P}agent")}
    assert list(agents) == ["person:jdoe", "software:oais-archive/0.1.0"]  # sorted, duplicates merged
    software = agents[SOFTWARE.identifier]
    assert local(software) == ["agentIdentifier", "agentName", "agentType", "agentVersion"]
    assert software.find(f"{P}agentType").get("valueURI") == f"{VOC}agentType/sof"
    assert software.findtext(f"{P}agentVersion") == "0.1.0"
    person = agents[ARCHIVIST.identifier]
    assert local(person) == ["agentIdentifier", "agentName", "agentType", "agentNote"]
    assert person.find(f"{P}agentType").get("valueURI") == f"{VOC}agentType/per"


def test_empty_file_list_gives_a_lone_intellectual_entity() -> None:
    root = parse(build_premis(description(()), [], []))
    assert local(root) == ["object"]
    assert local(root[0]) == ["objectIdentifier"]


def test_inconsistent_agents_are_refused() -> None:
    with pytest.raises(ValueError, match="links agent"):
        build_premis(description(), events(), [SOFTWARE])  # ARCHIVIST is linked but not given
    clash = Agent(SOFTWARE.identifier, "other", AgentType.SOFTWARE, version="9")
    with pytest.raises(ValueError, match="share the identifier"):
        build_premis(description(), [], [SOFTWARE, clash])
    twice = events()[:1] * 2
    with pytest.raises(ValueError, match="unique"):
        build_premis(description(), twice, [SOFTWARE, ARCHIVIST])
