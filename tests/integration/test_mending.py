"""Mending allowed by the agreement: originals bit for bit, a normalized representation beside them,
one PREMIS event per change."""

from __future__ import annotations

import shutil
from pathlib import Path

import bagit
from lxml import etree

from oais.domain.package import Disposition
from oais.services import agreements, holdings
from oais.services.ingest import IngestRequest, ingest
from aip.ocfl import content_path_for, logical_state, read_inventory
from tests.conftest import files_under, ocfl_py_errors, tree_snapshot
from tests.fixtures.deliveries import agreement_xml, mendable_folder

PREMIS = "{http://www.loc.gov/premis/v3}"
ALL = ("remove-system-files", "safe-names", "compute-checksums", "fix-fits")


def _setup(archive, mending=ALL) -> None:  # type: ignore[no-untyped-def]
    from oais.bootstrap import utc_now

    with archive.sessions.begin() as s:
        agreements.add_agreement(s, agreement_xml(mending=mending), utc_now())


def _premis(archive, aip_id: str) -> etree._ElementTree:  # type: ignore[no-untyped-def]
    with archive.sessions() as s:
        obj = archive.locations[0].object_dir(holdings.show_aip(s, aip_id)["object_path"])
    return etree.parse(str(obj / "v1/content/metadata/preservation/premis.xml")), obj


def test_MND_I001_MND_I002_MND_I004_mended_representation_beside_untouched_original(archive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _setup(archive)
    delivery = mendable_folder(tmp_path / "delivery")
    before = tree_snapshot(delivery)
    result = ingest(IngestRequest(delivery, "eit-195", agreement="EIT-2026"), archive.ingest_context())
    assert result.disposition is Disposition.ACCEPTED, result.issues
    assert tree_snapshot(delivery) == before
    codes = sorted(str(i.code) for i in result.issues if str(i.code).startswith("MND"))
    assert codes == ["MND-I001", "MND-I001", "MND-I002", "MND-I004"], result.issues

    premis, obj = _premis(archive, result.aip_id)
    inventory = read_inventory(obj)
    state = logical_state(inventory)

    def stored(logical: str) -> Path:  # OCFL stores identical content once: follow the inventory
        return obj / content_path_for(inventory, logical)

    # the original representation holds every delivered file, bit for bit (junk included)
    for rel in files_under(delivery):
        assert stored(f"representations/original/data/{rel}").read_bytes() == (delivery / rel).read_bytes()
    prefix = "representations/normalized/data/"
    normalized = {p.removeprefix(prefix) for p in state if p.startswith(prefix)}
    assert normalized == {"eit/good.fits", "eit/fixable.fits", "notes_ draft_.txt"}
    assert state[prefix + "eit/good.fits"] == state["representations/original/data/eit/good.fits"]
    fixed = stored(prefix + "eit/fixable.fits").read_bytes()
    assert fixed != (delivery / "eit/fixable.fits").read_bytes() and b"EXPTIME =" in fixed
    assert b"exptime =" not in fixed
    from astropy.io import fits

    with fits.open(stored(prefix + "eit/fixable.fits")) as h:
        h.verify("exception")  # the normalized copy is standard FITS

    # one PREMIS event per change, each naming the normalized or original file it concerns
    events = [(e.findtext(f"{PREMIS}eventType"), e.findtext(f".//{PREMIS}linkingObjectIdentifierValue"))
              for e in premis.iter(f"{PREMIS}event")]
    aip = result.aip_id
    changes = [(t, o.removeprefix(aip + "/")) for t, o in events if t in ("normalization", "filename change")]
    assert sorted(changes) == sorted([
        ("normalization", "representations/original/data/.DS_Store"),
        ("normalization", "representations/original/data/__MACOSX/._good.fits"),
        ("filename change", "representations/normalized/data/notes_ draft_.txt"),
        ("normalization", "representations/normalized/data/eit/fixable.fits"),
    ]), changes
    names = {e.findtext(f"{PREMIS}originalName") for e in premis.iter(f"{PREMIS}object")}
    assert "notes: draft?.txt" in names
    errors, warnings, report = ocfl_py_errors(obj)
    assert errors == 0, report


def test_SIP_W001_SIP_W002_FITS_W001_nothing_is_mended_without_permission(archive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _setup(archive, mending=())
    delivery = mendable_folder(tmp_path / "delivery")
    result = ingest(IngestRequest(delivery, "eit-195", agreement="EIT-2026"), archive.ingest_context())
    assert result.disposition is Disposition.ACCEPTED, result.issues
    codes = {str(i.code) for i in result.issues}
    assert {"SIP-W002", "SIP-W001", "FITS-W001"} <= codes and not any(c.startswith("MND") for c in codes)
    _, obj = _premis(archive, result.aip_id)
    assert not (obj / "v1/content/representations/normalized").exists()


def test_MND_I003_checksums_computed_for_unlisted_bag_files(archive, tmp_path: Path, fits_delivery: Path) -> None:  # type: ignore[no-untyped-def]
    _setup(archive, mending=("compute-checksums",))
    bag = tmp_path / "bag"
    shutil.copytree(fits_delivery, bag)
    bagit.make_bag(str(bag), checksums=["sha256"])
    (bag / "data" / "late-addition.txt").write_text("added after bagging\n")
    refused = ingest(IngestRequest(bag, "eit-195"), archive.ingest_context())  # default agreement
    assert "SIP-E013" in {str(i.code) for i in refused.issues}
    result = ingest(IngestRequest(bag, "eit-195", agreement="EIT-2026"), archive.ingest_context())
    assert result.disposition is Disposition.ACCEPTED, result.issues
    assert [(str(i.code), i.path) for i in result.issues if str(i.code) == "MND-I003"][0][1].endswith(
        "late-addition.txt")
    premis, _ = _premis(archive, result.aip_id)
    mes = [e for e in premis.iter(f"{PREMIS}event") if e.findtext(f"{PREMIS}eventType") == "message digest calculation"
           and "late-addition.txt" in (e.findtext(f".//{PREMIS}linkingObjectIdentifierValue") or "")]
    assert mes and "computed by the archive" in mes[0].findtext(f".//{PREMIS}eventDetail")
