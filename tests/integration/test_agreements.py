"""Submission agreements: recorded and versioned, named by deliveries, enforced at intake."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bagit
import pytest

from oais.domain.package import Disposition
from oais.services import agreements, holdings
from oais.services.ingest import IngestRequest, ingest
from tests.fixtures.deliveries import CHECKSUM_OK, TEST0, agreement_xml, delivery_manifest


def _add(archive, data: bytes) -> None:  # type: ignore[no-untyped-def]
    from oais.bootstrap import utc_now

    with archive.sessions.begin() as s:
        agreements.add_agreement(s, data, utc_now())


def _codes(result) -> set[str]:  # type: ignore[no-untyped-def]
    return {str(i.code) for i in result.issues}


def test_init_records_the_default_agreement(archive) -> None:  # type: ignore[no-untyped-def]
    with archive.sessions() as s:
        rows = agreements.list_agreements(s)
    assert [(r["id"], r["version"], r["producer"]) for r in rows] == [("default", 1, "*")]


def test_versions_are_kept_and_never_overwritten(archive) -> None:  # type: ignore[no-untyped-def]
    _add(archive, agreement_xml(version=1))
    _add(archive, agreement_xml(version=1))  # same content again: nothing new
    _add(archive, agreement_xml(version=2, keywords=("INSTRUME",)))
    with pytest.raises(agreements.AgreementConflict):
        _add(archive, agreement_xml(version=2, keywords=("TELESCOP",)))
    with archive.sessions() as s:
        assert [(r["id"], r["version"]) for r in agreements.list_agreements(s)] == [
            ("EIT-2026", 1), ("EIT-2026", 2), ("default", 1)]


def test_AGR_E003_invalid_agreement_document(archive) -> None:  # type: ignore[no-untyped-def]
    from sip.agreement import AgreementError

    bad = agreement_xml().replace(b"<producer>SOHO/EIT team</producer>", b"")
    with pytest.raises(AgreementError) as info:
        _add(archive, bad)
    assert info.value.issues[0].code == "AGR-E003" and "line" in info.value.issues[0].message
    entity = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]>' + agreement_xml().split(b"?>", 1)[1]
    with pytest.raises(AgreementError):
        _add(archive, entity)


def test_AGR_E001_unknown_agreement(archive, fits_delivery: Path) -> None:  # type: ignore[no-untyped-def]
    result = ingest(IngestRequest(fits_delivery, "eit-195", agreement="NOPE"), archive.ingest_context())
    assert result.disposition is Disposition.REFUSED and "AGR-E001" in _codes(result)


def test_AGR_E002_agreement_does_not_cover_dataset(archive, fits_delivery: Path) -> None:  # type: ignore[no-untyped-def]
    _add(archive, agreement_xml())
    result = ingest(IngestRequest(fits_delivery, "lasco-c2", agreement="EIT-2026"), archive.ingest_context())
    assert "AGR-E002" in _codes(result) and result.aip_id is None


def test_agreement_named_in_delivery_manifest_and_SIP_E018_duplicate(archive, fits_delivery: Path,  # type: ignore[no-untyped-def]
                                                                     tmp_path: Path) -> None:
    _add(archive, agreement_xml(keywords=("INSTRUME",)))
    (fits_delivery / "delivery.xml").write_bytes(delivery_manifest("EIT-2026-0001", 1, "EIT-2026"))
    first = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    assert first.disposition is Disposition.ACCEPTED, first.issues
    assert first.agreement == "EIT-2026/v1" and first.sip_id == "EIT-2026-0001"
    with archive.sessions() as s:
        paths = {f["path"] for f in holdings.show_aip(s, first.aip_id)["files"]}
    assert "submission/delivery.xml" in paths
    assert "representations/original/data/delivery.xml" not in paths
    again = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    assert again.disposition is Disposition.REFUSED and "SIP-E018" in _codes(again)


def test_SIP_identifier_in_bag_info(archive, fits_delivery: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _add(archive, agreement_xml())
    bag = tmp_path / "bag"
    shutil.copytree(fits_delivery, bag)
    bagit.make_bag(str(bag), {"Submission-Agreement": "EIT-2026/v1", "SIP-Identifier": "EIT-B-7",
                              "SIP-Sequence": "7"}, checksums=["sha256"])
    result = ingest(IngestRequest(bag, "eit-195"), archive.ingest_context())
    assert result.disposition is Disposition.ACCEPTED, result.issues
    assert (result.agreement, result.sip_id) == ("EIT-2026/v1", "EIT-B-7")


def test_AGR_E004_invalid_delivery_manifest(archive, fits_delivery: Path) -> None:  # type: ignore[no-untyped-def]
    (fits_delivery / "delivery.xml").write_bytes(b"<delivery xmlns='urn:oais-archive:delivery-manifest:1'>"
                                                 b"<sip sequence='x'/></delivery>")
    result = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    assert "AGR-E004" in _codes(result)


def test_FITS_E007_required_keyword_missing(archive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _add(archive, agreement_xml(keywords=("INSTRUME", "WAVELNTH")))
    d = tmp_path / "d"
    d.mkdir()
    shutil.copyfile(TEST0, d / "test0.fits")
    result = ingest(IngestRequest(d, "eit-195", agreement="EIT-2026"), archive.ingest_context())
    found = [i for i in result.issues if i.code == "FITS-E007"]
    assert found and found[0].path == "test0.fits" and "WAVELNTH" in found[0].message


def test_FMT_E001_format_not_accepted(archive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _add(archive, agreement_xml(formats=("x-fmt/383",)))
    d = tmp_path / "d"
    d.mkdir()
    shutil.copyfile(TEST0, d / "test0.fits")
    (d / "notes.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    result = ingest(IngestRequest(d, "eit-195", agreement="EIT-2026"), archive.ingest_context())
    found = [i for i in result.issues if i.code == "FMT-E001"]
    assert result.aip_id is None and [i.path for i in found] == ["notes.pdf"]


@pytest.mark.parametrize("limits", [{"maxFileBytes": 30000}, {"maxDeliveryBytes": 60000}, {"maxFiles": 1}])
def test_SIP_E017_size_limits(archive, tmp_path: Path, limits: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    _add(archive, agreement_xml(limits=limits))
    d = tmp_path / "d"
    d.mkdir()
    shutil.copyfile(TEST0, d / "test0.fits")  # 57,600 bytes
    shutil.copyfile(CHECKSUM_OK, d / "checksum.fits")  # 20,160 bytes
    result = ingest(IngestRequest(d, "eit-195", agreement="EIT-2026"), archive.ingest_context())
    assert "SIP-E017" in _codes(result) and result.aip_id is None


def test_SIP_E024_checksum_algorithm_not_accepted(archive, fits_delivery: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _add(archive, agreement_xml(algorithms=("sha512",)))
    bag = tmp_path / "bag"
    shutil.copytree(fits_delivery, bag)
    bagit.make_bag(str(bag), checksums=["md5"])
    result = ingest(IngestRequest(bag, "eit-195", agreement="EIT-2026"), archive.ingest_context())
    assert "SIP-E024" in _codes(result)


def test_cli_agreement_add_list_and_validate(tmp_path: Path, fits_delivery: Path) -> None:
    from tests.e2e.test_cli import oais

    home = tmp_path / "home"
    oais("init", "--home", str(home))
    f = tmp_path / "eit.xml"
    f.write_bytes(agreement_xml(keywords=("WAVELNTH",)))
    r = oais("agreement", "add", str(f), "--home", str(home), "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {**json.loads(r.stdout), "id": "EIT-2026", "added": True}
    listed = json.loads(oais("agreement", "list", "--home", str(home), "--json").stdout)
    assert {(a["id"], a["version"]) for a in listed} == {("EIT-2026", 1), ("default", 1)}
    bad = tmp_path / "bad.xml"
    bad.write_text("<agreement/>")
    r = oais("agreement", "add", str(bad), "--home", str(home))
    assert r.returncode == 1 and "AGR-E003" in r.stderr

    r = oais("validate", str(fits_delivery), "--agreement", "EIT-2026", "--dataset", "eit-195",
             "--home", str(home), "--json")
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    assert report["valid"] is False and "FITS-E007" in {i["code"] for i in report["issues"]}
    r = oais("validate", str(fits_delivery), "--dataset", "eit-195", "--home", str(home), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["agreement"] == "default/v1"
    assert json.loads(oais("aip", "list", "--home", str(home), "--json").stdout) == []  # nothing ingested
    assert oais("validate", "--home", str(home)).returncode == 2
