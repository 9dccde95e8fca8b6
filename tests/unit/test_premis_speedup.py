"""PREMIS file objects and METS file elements made by copying a prebuilt one: every file still gets
its own texts and attributes, escaped as before. (canonical_json's writer: ``test_jsontext.py``.)"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from lxml import etree

from aip.mets import build_mets, file_id
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
