"""aip.mets.build_mets: deterministic METS 1.12, checksums, links, fileSec/structMap shape, odd names."""

from __future__ import annotations

import hashlib
import random
import re
from datetime import UTC, datetime
from urllib.parse import unquote

from lxml import etree

import oais
from aip.mets import build_mets, file_id, href
from oais.domain.fixity import Fixity
from oais.domain.package import AipVersionDescription, ContentFile, FileRole

M = "{http://www.loc.gov/METS/}"
XL = "{http://www.w3.org/1999/xlink}"
AIP = "urn:uuid:6f1c2a4e-0000-4000-8000-000000000001"
ODD = "representations/original/data/eit/efz 2004 été & <co>.fits"
NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def fixity(content: bytes) -> Fixity:
    return Fixity(len(content), hashlib.sha256(content).hexdigest(), hashlib.sha512(content).hexdigest())


def files() -> tuple[ContentFile, ...]:
    return (
        ContentFile("representations/original/data/eit/efz20040301.fits", fixity(b"1"), FileRole.ORIGINAL,
                    "eit/efz20040301.fits", "x-fmt/383", "application/fits"),
        ContentFile(ODD, fixity(b"2"), FileRole.ORIGINAL, "eit/efz 2004 été & <co>.fits", mime="application/fits"),
        ContentFile("representations/original/data/top.fits", fixity(b"3"), FileRole.ORIGINAL),
        ContentFile("representations/quicklook/data/eit/efz20040301.png", fixity(b"4"), FileRole.NORMALIZED,
                    mime="image/png"),
        ContentFile("submission/bag-info.txt", fixity(b"5"), FileRole.SUBMISSION, mime="text/plain"),
        ContentFile("submission/manifest-sha256.txt", fixity(b"6"), FileRole.SUBMISSION),
        ContentFile("metadata/descriptive/datacite.xml", fixity(b"7"), FileRole.METADATA),
        ContentFile("METS.xml", fixity(b"8"), FileRole.METADATA),
        ContentFile("metadata/preservation/premis.xml", fixity(b"9"), FileRole.METADATA),
    )


LISTED = files()[:6]
DESCRIPTIVE = (("metadata/descriptive/datacite.xml", fixity(b"7"), "DataCite"),
               ("metadata/descriptive/dc.xml", fixity(b"dc"), "DC"))


def description(content: tuple[ContentFile, ...] | None = None, version: int = 1) -> AipVersionDescription:
    return AipVersionDescription(
        aip_id=AIP, version=version, dataset="soho-eit", producer="MEDOC & partners",
        created=datetime(2024, 3, 1, 12, 0, tzinfo=UTC), files=files() if content is None else content,
        label="SOHO/EIT 2004-03",
    )


def build(**kwargs: object) -> bytes:
    args: dict[str, object] = {"premis_fixity": fixity(b"premis"), "descriptive": DESCRIPTIVE}
    args.update(kwargs)
    desc = args.pop("desc", description())
    return build_mets(desc, **args)  # type: ignore[arg-type]


def local(element: etree._Element) -> list[str]:
    return [etree.QName(child).localname for child in element]


def test_deterministic_and_independent_of_input_order() -> None:
    first = build()
    assert first == build()
    shuffled = list(files())
    random.Random(3).shuffle(shuffled)
    assert build(desc=description(tuple(shuffled)), descriptive=DESCRIPTIVE[::-1]) == first


def test_root_header_and_section_order() -> None:
    data = build()
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n")
    root = etree.fromstring(data)
    assert root.tag == f"{M}mets"
    assert (root.get("OBJID"), root.get("TYPE"), root.get("LABEL")) == (AIP, "Dataset", "SOHO/EIT 2004-03")
    assert root.get("PROFILE") is None
    assert local(root) == ["metsHdr", "dmdSec", "dmdSec", "amdSec", "fileSec", "structMap"]
    header = root.find(f"{M}metsHdr")
    assert (header.get("CREATEDATE"), header.get("RECORDSTATUS")) == ("2024-03-01T12:00:00Z", "NEW")
    creator = header.find(f"{M}agent")
    assert (creator.get("ROLE"), creator.get("OTHERTYPE")) == ("CREATOR", "SOFTWARE")
    assert (creator.findtext(f"{M}name"), creator.findtext(f"{M}note")) == ("oais-archive", oais.__version__)
    assert header.findall(f"{M}agent")[1].findtext(f"{M}name") == "MEDOC & partners"
    assert [a.text for a in header.findall(f"{M}altRecordID")] == ["soho-eit", "v1"]


def test_version_profile_and_software_version_options() -> None:
    root = etree.fromstring(build(desc=description(version=2), profile="urn:oais-archive:aip:1",
                                  software_version="9.9.9"))
    assert root.get("PROFILE") == "urn:oais-archive:aip:1"
    assert root.find(f"{M}metsHdr").get("RECORDSTATUS") == "VERSION"
    assert root.findtext(f"{M}metsHdr/{M}agent/{M}note") == "9.9.9"


def test_every_file_listed_once_with_checksum_size_mime_and_admid() -> None:
    root = etree.fromstring(build())
    listed = {f.get("ID"): f for f in root.iter(f"{M}file")}
    assert set(listed) == {file_id(f.path) for f in LISTED}
    for f in LISTED:
        element = listed[file_id(f.path)]
        assert NCNAME.match(element.get("ID"))
        assert element.get("CHECKSUM") == f.fixity.sha256
        assert element.get("CHECKSUMTYPE") == "SHA-256"
        assert element.get("SIZE") == str(f.size)
        assert element.get("MIMETYPE") == f.mime
        assert element.get("ADMID") == "digiprov-premis"
        locat = element.find(f"{M}FLocat")
        assert (locat.get("LOCTYPE"), locat.get(f"{XL}type")) == ("URL", "simple")
        assert unquote(locat.get(f"{XL}href")) == f.path


def test_self_premis_and_descriptive_files_are_not_in_the_filesec() -> None:
    root = etree.fromstring(build())
    hrefs = [unquote(loc.get(f"{XL}href")) for loc in root.iter(f"{M}FLocat")]
    assert "METS.xml" not in hrefs
    assert "metadata/preservation/premis.xml" not in hrefs
    assert "metadata/descriptive/datacite.xml" not in hrefs
    assert b'href="METS.xml"' not in build()


def test_file_groups_per_representation_and_role() -> None:
    root = etree.fromstring(build())
    groups = root.findall(f"{M}fileSec/{M}fileGrp")
    assert [g.get("USE") for g in groups] == ["original", "quicklook", "submission"]
    assert all(NCNAME.match(g.get("ID")) for g in groups)
    assert len(groups[0]) == 3 and len(groups[1]) == 1 and len(groups[2]) == 2


def test_premis_and_descriptive_references() -> None:
    root = etree.fromstring(build())
    ref = root.find(f"{M}amdSec/{M}digiprovMD/{M}mdRef")
    assert ref.get("MDTYPE") == "PREMIS"
    assert ref.get(f"{XL}href") == "metadata/preservation/premis.xml"
    assert (ref.get("CHECKSUM"), ref.get("CHECKSUMTYPE"), ref.get("SIZE")) == (
        fixity(b"premis").sha256, "SHA-256", str(len(b"premis")))
    dmd = root.findall(f"{M}dmdSec")
    refs = [d.find(f"{M}mdRef") for d in dmd]
    assert [(r.get("MDTYPE"), r.get("OTHERMDTYPE")) for r in refs] == [("OTHER", "DataCite"), ("DC", None)]
    assert refs[0].get("CHECKSUM") == fixity(b"7").sha256
    top = root.find(f"{M}structMap/{M}div")
    assert top.get("DMDID").split() == [d.get("ID") for d in dmd]
    bare = etree.fromstring(build_mets(description()))  # no PREMIS fixity known: no CHECKSUM
    bare_ref = bare.find(f"{M}amdSec/{M}digiprovMD/{M}mdRef")
    assert bare_ref.get("CHECKSUM") is None and bare_ref.get("SIZE") is None
    assert bare.find(f"{M}dmdSec") is None


def test_special_characters_are_escaped_and_percent_encoded() -> None:
    data = build()
    assert href(ODD) == "representations/original/data/eit/efz%202004%20%C3%A9t%C3%A9%20%26%20%3Cco%3E.fits"
    assert href(ODD).encode() in data
    root = etree.fromstring(data)  # well-formed despite & and <
    hrefs = [loc.get(f"{XL}href") for loc in root.iter(f"{M}FLocat")]
    assert all(h.isascii() and " " not in h and "&" not in h and "<" not in h for h in hrefs)


def test_struct_map_mirrors_folders_with_fptr_before_div() -> None:
    root = etree.fromstring(build())
    struct_map = root.find(f"{M}structMap")
    assert struct_map.get("TYPE") == "physical"
    top = struct_map.find(f"{M}div")
    assert [(d.get("TYPE"), d.get("LABEL")) for d in top.findall(f"{M}div")] == [
        ("representation", "original"), ("representation", "quicklook"), ("folder", "submission")]
    fptrs = [p.get("FILEID") for p in struct_map.iter(f"{M}fptr")]
    assert sorted(fptrs) == sorted(file_id(f.path) for f in LISTED)
    for div in struct_map.iter(f"{M}div"):
        names = local(div)
        assert names == sorted(names, key=lambda n: n != "fptr"), "fptr must precede div"
    data_div = top.find(f"{M}div/{M}div")
    assert data_div.get("LABEL") == "data"
    assert data_div.find(f"{M}fptr").get("FILEID") == file_id("representations/original/data/top.fits")


def test_empty_file_list_has_no_filesec_but_a_struct_map() -> None:
    root = etree.fromstring(build_mets(description(())))
    assert local(root) == ["metsHdr", "amdSec", "structMap"]
    assert len(root.find(f"{M}structMap/{M}div")) == 0
