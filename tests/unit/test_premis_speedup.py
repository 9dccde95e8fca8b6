"""PREMIS file objects and identifier lists written as text from a serialised template, METS file
elements made by copying a prebuilt one: every file still gets its own texts and attributes,
escaped as before, and the PREMIS bytes are those libxml2 writes for the same tree.
(canonical_json's writer: ``test_jsontext.py``.)"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from aip.mets import build_mets, file_id
from aip import premis
from aip.premis import build_premis
from aip.xmltext import xml_text
from oais.domain.fixity import Fixity
from oais.domain.package import AipVersionDescription, ContentFile, FileRole
from oais.domain.premis import Agent, AgentRole, AgentType, Event, EventType, LinkedAgent, Outcome, file_object_id

P = "{http://www.loc.gov/premis/v3}"
M = "{http://www.loc.gov/METS/}"
XL = "{http://www.w3.org/1999/xlink}"
AIP = "urn:uuid:6f1c2a4e-0000-4000-8000-000000000002"
DATA = "representations/original/data"
SOFTWARE = Agent("software:oais-archive/0.1.0", "oais-archive", AgentType.SOFTWARE, version="0.1.0")
ODD_MIME = "a\"b&c<d>'e"


def fixity(content: bytes) -> Fixity:
    return Fixity(len(content), hashlib.sha256(content).hexdigest(), hashlib.sha512(content).hexdigest())


def same_format_files() -> tuple[ContentFile, ...]:
    """Files with the same format values (so one template), names that need escaping or encoding."""
    names = ["plain.fits", "été & <co> \"q\" 'a'.fits", "ctl\x01\x1f.fits", "tab\tcr\r.fits"]
    made = [ContentFile(f"{DATA}/{name}", fixity(name.encode()), FileRole.ORIGINAL, name, "x-fmt/383",
                        ODD_MIME, "FITS") for name in names]
    made.append(ContentFile(f"{DATA}/unnamed.fits", fixity(b"unnamed"), FileRole.ORIGINAL, None, "x-fmt/383",
                            ODD_MIME, "FITS"))
    made.append(ContentFile(f"{DATA}/empty-name.fits", fixity(b""), FileRole.ORIGINAL, "", "x-fmt/383",
                            ODD_MIME, "FITS"))
    made.append(ContentFile(f"{DATA}/no-mime.bin", fixity(b"no mime"), FileRole.ORIGINAL, "no-mime.bin"))
    return tuple(made)


def description() -> AipVersionDescription:
    return AipVersionDescription(aip_id=AIP, version=1, dataset="d", producer="p",
                                 created=datetime(2024, 3, 1, 12, 0, tzinfo=UTC), files=same_format_files())


def premis_root() -> tuple[bytes, etree._Element]:
    event = Event("urn:uuid:00000000-0000-4000-8000-0000000000e9", EventType.INGESTION,
                  datetime(2024, 3, 1, 12, 0, tzinfo=UTC), Outcome.SUCCESS,
                  agents=(LinkedAgent(SOFTWARE.identifier, AgentRole.EXECUTING_PROGRAM),),
                  objects=(AIP, *(file_object_id(AIP, f.path) for f in same_format_files())))
    data = build_premis(description(), [event], [SOFTWARE])
    return data, etree.fromstring(data)


def test_each_copied_file_object_holds_its_own_texts() -> None:
    _, root = premis_root()
    objects = {o.findtext(f"{P}objectIdentifier/{P}objectIdentifierValue"): o for o in root.iter(f"{P}object")}
    for f in same_format_files():
        obj = objects[xml_text(file_object_id(AIP, f.path))]  # percent-encoded if it must be
        chars = obj.find(f"{P}objectCharacteristics")
        assert [d.text for d in chars.iter(f"{P}messageDigest")] == [f.fixity.sha256, f.fixity.sha512]
        assert chars.findtext(f"{P}size") == str(f.size)
        names = [etree.QName(child).localname for child in obj]
        if f.original_name is None:
            assert names == ["objectIdentifier", "objectCharacteristics", "relationship"]
        else:
            assert names == ["objectIdentifier", "objectCharacteristics", "originalName", "relationship"]


def test_copied_texts_are_escaped_or_percent_encoded_as_before() -> None:
    data, _ = premis_root()
    # XML special characters escaped in text; \r as a character reference; a control character,
    # which XML cannot carry, percent-encodes the whole value.
    assert "<premis:originalName>été &amp; &lt;co&gt; \"q\" 'a'.fits</premis:originalName>".encode() in data
    assert b"<premis:originalName>tab\tcr&#13;.fits</premis:originalName>" in data
    assert b"<premis:originalName>ctl%01%1F.fits</premis:originalName>" in data
    assert b"<premis:originalName></premis:originalName>" in data
    assert f"<premis:objectIdentifierValue>{AIP}/{DATA}/ctl%01%1F.fits</premis:objectIdentifierValue>".encode() in data
    assert f"<premis:linkingObjectIdentifierValue>{AIP}/{DATA}/ctl%01%1F.fits".encode() in data
    assert f"<premis:relatedObjectIdentifierValue>{AIP}/{DATA}/ctl%01%1F.fits".encode() in data
    assert b"\x01" not in data and b"\x1f" not in data


def test_copied_mets_file_elements_keep_attribute_order_and_escaping() -> None:
    data = build_mets(description())
    root = etree.fromstring(data)
    elements = {e.get("ID"): e for e in root.iter(f"{M}file")}
    for f in same_format_files():
        element = elements[file_id(f.path)]
        expected = ["ID", "MIMETYPE", "SIZE", "CHECKSUM", "CHECKSUMTYPE", "ADMID"] if f.mime else \
            ["ID", "SIZE", "CHECKSUM", "CHECKSUMTYPE", "ADMID"]
        assert list(element.attrib) == expected
        assert element.get("SIZE") == str(f.size) and element.get("CHECKSUM") == f.fixity.sha256
        assert element.get("MIMETYPE") == f.mime
        (location,) = element
        assert list(location.attrib) == ["LOCTYPE", f"{XL}type", f"{XL}href"]
    assert b' MIMETYPE="a&quot;b&amp;c&lt;d&gt;\'e" ' in data
    assert b'xlink:href="representations/original/data/ctl%01%1F.fits"' in data
    assert [p.get("FILEID") for p in root.iter(f"{M}fptr")] == [
        file_id(f.path) for f in sorted(same_format_files(), key=lambda f: f.path)]


def varied_premis() -> tuple[bytes, list[ContentFile], list[Event]]:
    """Files of several formats, with and without original names, names that need escaping or
    encoding; events linking some or all of them, at times out of order; an agent with odd texts."""
    odd = ["plain", "été & <co>", "ctl\x01", "cr\r", "nl\nx", "]]>", "&amp;", "q\"'", "😀", ""]
    formats = [(None, None, None), ("FITS", "x-fmt/383", "image/fits"), ("odd & <f>", "fmt/1", ODD_MIME),
               ("Text", None, "text/plain"), (None, "fmt/101", None)]
    files = []
    for i in range(60):
        name, puid, mime = formats[i % len(formats)]
        original = None if i % 3 == 0 else f"{odd[i % len(odd)]}-{i}"
        files.append(ContentFile(f"{DATA}/d{i % 4}/{odd[i % len(odd)]}-{i}.bin", fixity(b"%d" % i),
                                 FileRole.ORIGINAL, original, puid, mime, name))
    agent = Agent("software:oais & <x>", "oais\r\n<archive>", AgentType.SOFTWARE, version="1", note="n & n")
    linked = (LinkedAgent(agent.identifier, AgentRole.EXECUTING_PROGRAM),)
    ids = [file_object_id(AIP, f.path) for f in files]
    start = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    events = [Event("urn:uuid:00000000-0000-4000-8000-0000000000e1", EventType.INGESTION, start + timedelta(seconds=2),
                    Outcome.SUCCESS, detail="all <files> & more\r", agents=linked, objects=(AIP, *ids)),
              Event("local-event & 2", EventType.VALIDATION, start, Outcome.FAILURE, agents=linked,
                    objects=tuple(ids[::7])),
              Event("urn:uuid:00000000-0000-4000-8000-0000000000e3", EventType.MESSAGE_DIGEST_CALCULATION, start,
                    Outcome.SUCCESS, agents=linked)]
    desc = AipVersionDescription(aip_id=AIP, version=1, dataset="d", producer="p", created=start, files=tuple(files))
    return build_premis(desc, events, [agent]), files, events


def test_premis_bytes_are_what_libxml2_writes_for_the_same_tree() -> None:
    """Parsed, then written again by lxml (pretty-printed, as the document is): the same bytes,
    so every part written as text is indented, escaped and placed as libxml2 would have written it.
    (An element built with an empty text is written ``<a></a>``; parsed, its text is None: it is
    set back to the empty text. The document has no element written ``<a/>``.)"""
    for data in (premis_root()[0], varied_premis()[0]):
        assert b"/>" not in data
        tree = etree.fromstring(data, etree.XMLParser(remove_blank_text=True))
        for element in tree.iter():
            if len(element) == 0 and element.text is None:
                element.text = ""
        assert etree.tostring(tree, xml_declaration=True, encoding="UTF-8", pretty_print=True) == data
        assert b"oais-splice" not in data and "\U000f0000".encode() not in data


def test_parts_written_as_text_hold_each_files_and_each_events_own_values() -> None:
    data, files, events = varied_premis()
    root = etree.fromstring(data)
    objects = root.findall(f"{P}object")
    assert len(objects) == 1 + len(files)
    entity_links = [e.text for e in objects[0].iter(f"{P}relatedObjectIdentifierValue")]
    assert entity_links == [xml_text(file_object_id(AIP, f.path)) for f in sorted(files, key=lambda f: f.path)]
    for obj, f in zip(objects[1:], sorted(files, key=lambda f: f.path), strict=True):
        assert obj.findtext(f"{P}objectIdentifier/{P}objectIdentifierValue") == xml_text(file_object_id(AIP, f.path))
        assert [d.text for d in obj.iter(f"{P}messageDigest")] == [f.fixity.sha256, f.fixity.sha512]
        assert obj.findtext(f"{P}objectCharacteristics/{P}size") == str(f.size)
        expected = None if f.original_name is None else xml_text(f.original_name)
        assert obj.findtext(f"{P}originalName") == expected
        assert obj.findtext(f".//{P}formatName") == (f.format_name or ("unknown" if not f.puid else None))
        assert [e.text for e in obj.iter(f"{P}relatedObjectIdentifierValue")] == [AIP]
    written = {e.findtext(f"{P}eventIdentifier/{P}eventIdentifierValue"): e for e in root.iter(f"{P}event")}
    for event in events:
        links = written[event.identifier].findall(f"{P}linkingObjectIdentifier")
        assert [(x.findtext(f"{P}linkingObjectIdentifierType"), x.findtext(f"{P}linkingObjectIdentifierValue"))
                for x in links] == [("URN" if v == AIP else "local", xml_text(v)) for v in event.objects]


def test_a_placeholder_in_a_templates_own_text_is_refused_not_written() -> None:
    """The texts that vary are put in place of placeholders (private-use characters): a template
    whose fixed texts held one (no format name does) would be cut wrongly, so it is refused."""
    f = ContentFile(f"{DATA}/x.bin", fixity(b"x"), FileRole.ORIGINAL, "x.bin", None, None, premis._SLOT.format(0))
    desc = AipVersionDescription(aip_id=AIP, version=1, dataset="d", producer="p",
                                 created=datetime(2024, 3, 1, 12, 0, tzinfo=UTC), files=(f,))
    with pytest.raises(ValueError, match="placeholder 0"):
        build_premis(desc, [], [SOFTWARE])
