"""Ingest of real FITS deliveries into two local replicas and a SQLite catalog."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import zipfile
from pathlib import Path

import bagit
import pytest
from lxml import etree

from oais.bootstrap import Archive
from oais.domain.package import Disposition
from oais.services import holdings
from oais.services.ingest import IngestRequest, ingest
from tests.conftest import corpus, files_under, ocfl_py_errors, tree_snapshot

METS = "{http://www.loc.gov/METS/}"
PREMIS = "{http://www.loc.gov/premis/v3}"


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _object_dirs(archive) -> list[Path]:  # type: ignore[no-untyped-def]
    out = []
    for loc in archive.locations:
        out.extend(p.parent for p in loc.root.rglob("0=ocfl_object_1.1"))
    return sorted(out)


def _make_bag(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    bagit.make_bag(str(dest), {"Source-Organization": "IDOC test"}, checksums=["sha256", "sha512"])
    return dest


def test_ingest_folder_of_real_fits(archive, fits_delivery: Path) -> None:  # type: ignore[no-untyped-def]
    before = tree_snapshot(fits_delivery)
    result = ingest(IngestRequest(fits_delivery, "eit-195", "SOHO/EIT team"), archive.ingest_context())
    assert result.disposition is Disposition.ACCEPTED, result.issues
    assert tree_snapshot(fits_delivery) == before, "the producer's input was modified"

    delivered = files_under(fits_delivery)
    assert result.files == len(delivered)
    for loc in archive.locations:
        obj = loc.object_dir(ocfl_object_path(archive, result.aip_id))
        for rel in delivered:  # bit for bit in every replica
            stored = obj / "v1" / "content" / "representations" / "original" / "data" / rel
            assert stored.read_bytes() == (fits_delivery / rel).read_bytes(), rel
        errors, warnings, report = ocfl_py_errors(obj)
        assert (errors, warnings) == (0, 0), report
    assert not any(loc.staging_leftovers() for loc in archive.locations)
    assert not any(archive.settings.staging.iterdir())


def ocfl_object_path(archive, aip_id: str) -> str:  # type: ignore[no-untyped-def]
    with archive.sessions() as s:
        return holdings.show_aip(s, aip_id)["object_path"]


def test_catalog_records_files_replicas_and_events(archive, fits_delivery: Path) -> None:  # type: ignore[no-untyped-def]
    result = ingest(IngestRequest(fits_delivery, "eit-195", "SOHO/EIT team"), archive.ingest_context())
    with archive.sessions() as s:
        shown = holdings.show_aip(s, result.aip_id)
        listed = holdings.list_aips(s)
    assert [a["aip_id"] for a in listed] == [result.aip_id]
    assert shown["dataset"] == "eit-195" and shown["producer"] == "SOHO/EIT team" and shown["version"] == 1
    by_path = {f["path"]: f for f in shown["files"]}
    for rel in files_under(fits_delivery):
        f = by_path[f"representations/original/data/{rel}"]
        assert f["sha256"] == _sha256(fits_delivery / rel)
        assert f["size"] == (fits_delivery / rel).stat().st_size
        assert f["role"] == "original" and f["original_name"] == rel
    assert by_path["representations/original/data/test0.fits"]["format"] == "x-fmt/383"
    assert {"METS.xml", "metadata/preservation/premis.xml", "metadata/descriptive/fits-headers.json"} <= set(by_path)
    assert sorted((r["location"], r["state"]) for r in shown["replicas"]) == [("replica-a", "ok"), ("replica-b", "ok")]
    types = [e["type"] for e in shown["events"]]
    for required in ("ing", "mes", "for", "mee", "ipc"):
        assert required in types
    assert types.count("fix") == 2
    fix = {e["detail"] for e in shown["events"] if e["type"] == "fix"}
    assert fix == {  # replica-a's links were read, and checked, as the source of replica-b's copies
        "copy written to storage location 'replica-a' and flushed; its files hard-linked to the staged delivery "
        "verified (sha256) by reading them into the verified copies of 'replica-b', every other file re-read "
        "and verified (sha256)",
        "copy written to storage location 'replica-b', flushed, re-read and verified (sha256)"}
    # nothing failed; checks may warn on real data (fitsverify notes, no ClamAV signature database)
    assert {e["outcome"] for e in shown["events"]} <= {"suc", "war"}
    assert all(e["outcome"] == "suc" for e in shown["events"] if e["type"] in ("ing", "ipc", "mes", "for", "mee"))


@pytest.mark.parametrize("form", ["bag", "zip-of-bag", "tar.gz-of-bag", "zip-of-folder", "tar-of-folder"])
def test_ingest_accepts_bags_and_archives(archive, fits_delivery: Path, tmp_path: Path, form: str) -> None:  # type: ignore[no-untyped-def]
    bag = _make_bag(fits_delivery, tmp_path / "bag")
    inner = bag if "bag" in form else fits_delivery
    if form == "bag":
        source = bag
    elif form.startswith("zip"):
        source = tmp_path / "delivery.zip"
        with zipfile.ZipFile(source, "w") as zf:
            for p in sorted(inner.rglob("*")):
                zf.write(p, f"delivery/{p.relative_to(inner).as_posix()}")
    else:
        source = tmp_path / ("delivery.tar.gz" if "gz" in form else "delivery.tar")
        with tarfile.open(source, "w:gz" if "gz" in form else "w") as tf:
            tf.add(inner, arcname="delivery")
    before = tree_snapshot(source)
    result = ingest(IngestRequest(source, "hst"), archive.ingest_context())
    assert result.disposition is Disposition.ACCEPTED, result.issues
    assert tree_snapshot(source) == before
    with archive.sessions() as s:
        paths = {f["path"] for f in holdings.show_aip(s, result.aip_id)["files"]}
    for rel in files_under(fits_delivery):
        assert f"representations/original/data/{rel}" in paths
    if "bag" in form:
        assert {"submission/bagit.txt", "submission/manifest-sha256.txt", "submission/bag-info.txt"} <= paths
        with archive.sessions() as s:
            events = holdings.show_aip(s, result.aip_id)["events"]
        val = [e for e in events if e["type"] == "val"]
        assert val and val[0]["outcome"] == "suc"
        assert {a["role"] for a in val[0]["agents"]} == {"exe", "val"}


def test_mets_and_premis_valid_against_both_schema_sets(archive, fits_delivery: Path) -> None:  # type: ignore[no-untyped-def]
    from oais.formats.xmlschema import SchemaSet

    result = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    obj = archive.locations[0].object_dir(ocfl_object_path(archive, result.aip_id)) / "v1" / "content"
    installed = SchemaSet.installed()
    official = SchemaSet.from_catalog(corpus("xsd", "catalog.xml"))
    for name in ("METS.xml", "metadata/preservation/premis.xml"):
        data = (obj / name).read_bytes()
        assert installed.validate(data) == [], name
        assert official.validate(data) == [], name

    mets = etree.parse(str(obj / "METS.xml"))
    from urllib.parse import unquote

    checksums = {unquote(f.find(f"{METS}FLocat").get("{http://www.w3.org/1999/xlink}href")): f.get("CHECKSUM")
                 for f in mets.iter(f"{METS}file")}
    for rel in files_under(fits_delivery):
        assert checksums[f"representations/original/data/{rel}"] == _sha256(fits_delivery / rel)
    premis = etree.parse(str(obj / "metadata/preservation/premis.xml"))
    originals = {e.text for e in premis.iter(f"{PREMIS}originalName")}
    assert set(files_under(fits_delivery)) <= originals
    digests = {e.text for e in premis.iter(f"{PREMIS}messageDigest")}
    assert _sha256(fits_delivery / "test0.fits") in digests
    event_types = {e.text for e in premis.iter(f"{PREMIS}eventType")}
    assert {"ingestion", "message digest calculation"} <= event_types or {"ing", "mes"} <= event_types
    object_ids = {e.text for e in premis.iter(f"{PREMIS}objectIdentifierValue")}
    links = [e.text for e in premis.iter(f"{PREMIS}linkingObjectIdentifierValue")]
    assert links and set(links) <= object_ids, set(links) - object_ids
    agent_ids = {e.text for e in premis.iter(f"{PREMIS}agentIdentifierValue")}
    assert {e.text for e in premis.iter(f"{PREMIS}linkingAgentIdentifierValue")} <= agent_ids
    order = [e.text for e in premis.iter(f"{PREMIS}eventType")]
    assert order.index("message digest calculation") < order.index("information package creation") \
        < order.index("ingestion")
    versions = {e.text for e in premis.iter(f"{PREMIS}agentVersion")}
    import oais

    assert oais.__version__ in versions


def test_refused_bag_is_quarantined_and_input_untouched(archive, fits_delivery: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bag = _make_bag(fits_delivery, tmp_path / "bag")
    target = bag / "data" / "test0.fits"
    data = bytearray(target.read_bytes())
    data[5000] ^= 0xFF  # damaged in transit
    target.write_bytes(bytes(data))
    before = tree_snapshot(bag)
    result = ingest(IngestRequest(bag, "eit-195"), archive.ingest_context())
    assert result.disposition is Disposition.REFUSED
    errors = [i for i in result.issues if i.severity == "error"]
    assert {(i.code, i.path) for i in errors} == {("SIP-E011", "data/test0.fits")}
    assert len(errors) == 2  # the sha256 and the sha512 manifest both disagree
    assert "data/test0.fits" in result.reason
    assert tree_snapshot(bag) == before
    assert _object_dirs(archive) == []
    assert result.quarantine and Path(result.quarantine, "data", "test0.fits").read_bytes() == bytes(data)
    with archive.sessions() as s:
        assert holdings.list_aips(s) == []
        from oais.catalog import repository as repo

        d = repo.delivery(s, result.delivery_id)
        assert d.disposition == "refused" and "SIP-E011" in d.reason
        assert d.report["issues"][0]["code"] == "SIP-E011"


def test_same_content_twice_gives_two_aips(archive, fits_delivery: Path) -> None:  # type: ignore[no-untyped-def]
    a = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    b = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    assert a.aip_id != b.aip_id and a.disposition == b.disposition == Disposition.ACCEPTED
    assert len(_object_dirs(archive)) == 4


def test_fits_keywords_are_in_the_catalog(archive, fits_delivery: Path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from oais.catalog import models as m

    result = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    with archive.sessions() as s:
        rows = {h.file.path.rsplit("/", 1)[-1]: h for h in s.scalars(select(m.FitsHeader))}
    assert set(rows) == {p.rsplit("/", 1)[-1] for p in files_under(fits_delivery) if p.endswith(".fits")}
    from astropy.io import fits

    for name, row in rows.items():  # values as astropy reads them from the real files
        path = next(fits_delivery.rglob(name))
        with fits.open(path) as hdul:
            instrument = next((h.header["INSTRUME"] for h in hdul if h.header.get("INSTRUME")), None)
        assert row.instrument == (str(instrument).strip() if instrument is not None else None), name
    assert rows["test0.fits"].instrument == "WFPC2"
    assert rows["test0.fits"].keywords["hdus"][0]["keywords"]["INSTRUME"] == "WFPC2"
    assert result.aip_id


def test_header_rows_carry_their_files_version_role_format_and_size(archive, fits_delivery: Path) -> None:  # type: ignore[no-untyped-def]
    """The copies that the search totals read from ``ix_fits_headers_search`` equal the file's own
    values, and the size is the size of the producer's file."""
    from sqlalchemy import select

    from oais.catalog import models as m

    result = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    with archive.sessions() as s:
        rows = s.execute(select(m.FitsHeader, m.File, m.AipVersion.number, m.Aip.identifier)
                         .join(m.File, m.FitsHeader.file_id == m.File.id)
                         .join(m.AipVersion, m.File.version_id == m.AipVersion.id)
                         .join(m.Aip, m.AipVersion.aip_id == m.Aip.id)).all()
        assert len(rows) == len([p for p in files_under(fits_delivery) if p.endswith(".fits")]) > 0
        for header, file, number, aip in rows:
            assert (aip, number) == (result.aip_id, 1)
            assert (header.version_id, header.role, header.puid, header.size) == \
                (file.version_id, file.role, file.puid, file.size), file.path
            assert header.role == "original" and header.puid == "x-fmt/383", file.path
            assert header.size == next(fits_delivery.rglob(file.path.rsplit("/", 1)[-1])).stat().st_size


def test_replicas_never_share_a_file_and_the_input_is_never_linked(archive, fits_delivery: Path) -> None:  # type: ignore[no-untyped-def]
    """The first location takes the staged copy by hard link; the second writes its own copy; the
    producer's files keep a single link (never adopted) and the staging area is emptied."""
    result = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    assert result.disposition is Disposition.ACCEPTED, result.issues
    path = ocfl_object_path(archive, result.aip_id)
    a, b = (loc.object_dir(path) for loc in archive.locations)
    content = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and "content" in p.parts)
    assert content
    for rel in content:
        sa, sb = (a / rel).stat(), (b / rel).stat()
        assert (sa.st_dev, sa.st_ino) != (sb.st_dev, sb.st_ino), f"{rel}: both replicas hold the same inode"
        assert sa.st_nlink == 1 and sb.st_nlink == 1, rel  # the staged name is gone
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    for rel in files_under(fits_delivery):
        assert (fits_delivery / rel).stat().st_nlink == 1, f"{rel}: the producer's file was linked"
    assert not any(archive.settings.staging.iterdir())


def test_storage_adopts_only_files_with_a_single_link(tmp_path: Path) -> None:
    from oais.domain.storage import Entry
    from oais.storage.local import LocalStorage

    src = tmp_path / "staged"
    src.mkdir()
    data = b"x" * 5000
    digest = hashlib.sha512(data).hexdigest()
    (src / "one").write_bytes(data)
    (src / "two").write_bytes(data)
    (src / "also-two").hardlink_to(src / "two")  # a file with two links: copied, never adopted
    store = LocalStorage("t", tmp_path / "loc")
    store.ensure_root()
    entries = [Entry(name, digest, source=src / name, sha256=hashlib.sha256(data).hexdigest())
               for name in ("one", "two")]
    staged = store.stage("obj", entries, adopt=True)
    staged.commit()
    obj = store.object_dir("obj")
    assert (obj / "one").stat().st_ino == (src / "one").stat().st_ino  # adopted
    assert (obj / "two").stat().st_ino != (src / "two").stat().st_ino  # copied
    assert (obj / "two").read_bytes() == data


def test_storage_refuses_a_copy_that_does_not_match(tmp_path: Path) -> None:
    from oais.domain.storage import Entry
    from oais.storage.base import StorageError
    from oais.storage.local import LocalStorage

    (tmp_path / "f").write_bytes(b"what was staged")
    store = LocalStorage("t", tmp_path / "loc")
    store.ensure_root()
    wrong = Entry("f", hashlib.sha512(b"x").hexdigest(), source=tmp_path / "f",
                  sha256=hashlib.sha256(b"what the catalog expects").hexdigest())
    with pytest.raises(StorageError, match="f: copy does not match after writing \\(sha256"):
        store.stage("obj", [wrong])
    assert store.staging_leftovers() == [] and not store.exists("obj")


def test_every_replica_catalogues_every_file_it_holds(archive: Archive, fits_delivery: Path) -> None:
    """Each location's ``stored_files`` rows list exactly the files of its copy of the object, with
    the size and digests of the bytes there (the second location's rows are copied from the first's
    in the database, so this checks them against the disk)."""
    from sqlalchemy import select

    from oais.catalog import models as m

    result = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    assert result.disposition is Disposition.ACCEPTED and result.aip_id is not None, result.issues
    path = ocfl_object_path(archive, result.aip_id)
    with archive.sessions() as s:
        rows = s.execute(select(m.Replica.location, m.StoredFile.path, m.StoredFile.size, m.StoredFile.sha256,
                                m.StoredFile.sha512, m.StoredFile.last_ok)
                         .join(m.Replica, m.StoredFile.replica_id == m.Replica.id)).all()
    assert {r[0] for r in rows} == {loc.name for loc in archive.locations}
    for loc in archive.locations:
        root = loc.object_dir(path)
        on_disk = {}
        for p in root.rglob("*"):
            if p.is_file():
                data = p.read_bytes()
                on_disk[p.relative_to(root).as_posix()] = (len(data), hashlib.sha256(data).hexdigest(),
                                                           hashlib.sha512(data).hexdigest(), True)
        catalogued = {r[1]: (r[2], r[3], r[4], r[5]) for r in rows if r[0] == loc.name}
        assert len(catalogued) == sum(1 for r in rows if r[0] == loc.name), f"{loc.name}: a path twice"
        assert catalogued == on_disk, loc.name
