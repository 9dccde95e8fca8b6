"""A failure anywhere leaves no AIP in the catalog and no partial object in any replica."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from oais.bootstrap import Archive
from oais.domain.package import Disposition
from oais.domain.storage import Entry
from oais.services import holdings
from oais.services.ingest import IngestRequest, ingest
from oais.storage.base import PreparedCopies, ProgressFn
from oais.storage.local import LocalStagedObject, LocalStorage
from tests.conftest import tree_snapshot


class DiskFullStorage(LocalStorage):
    """The real local storage on a disk that fills up after ``capacity`` bytes of content. It takes
    none of the copies made ahead of time, so that every byte of the object goes through
    ``_write_entry``."""

    def __init__(self, inner: LocalStorage, capacity: int) -> None:
        super().__init__(inner.name, inner.path, fsync=inner.fsync, root_files=inner.root_files)
        self.capacity = capacity

    def stage(self, object_path: str, entries: Iterable[Entry], progress: ProgressFn | None = None, *,
              adopt: bool = False, prepared: PreparedCopies | None = None) -> LocalStagedObject:
        return super().stage(object_path, entries, progress, adopt=adopt)

    def _write_entry(self, target: Path, entry: Entry, progress: ProgressFn | None,
                     buf: bytearray | None) -> None:
        data = entry.data
        if data is None:
            assert entry.source is not None
            data = entry.source.read_bytes()
        if len(data) > self.capacity:  # write what fits, then fail as a full disk does
            with open(target, "xb") as out:
                out.write(data[: self.capacity])
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        self.capacity -= len(data)
        super()._write_entry(target, entry, progress, buf)


class RejectingMets:
    """A metadata validator that finds METS.xml invalid (and PREMIS valid)."""

    def errors(self, name: str, data: bytes) -> list[str]:
        return [f"line 1: {name} refused by the schema"] if name == "METS.xml" else []


def _nothing_anywhere(archive) -> None:  # type: ignore[no-untyped-def]
    for loc in archive.locations:
        assert list(loc.root.rglob("0=ocfl_object_1.1")) == [], f"object left in {loc.name}"
        assert [p for p in loc.root.iterdir() if p.is_dir() and p.name != "extensions"] == [], \
            f"folders left in {loc.name}: {list(loc.root.iterdir())}"
        assert loc.staging_leftovers() == [], f"temporary copy left in {loc.name}"
    assert list(archive.settings.staging.iterdir()) == []
    with archive.sessions() as s:
        assert holdings.list_aips(s) == []
        for table in ("aips", "aip_versions", "files", "replicas"):
            assert s.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table


def _refused(archive, result, code: str) -> None:  # type: ignore[no-untyped-def]
    from oais.catalog import repository as repo

    assert result.disposition is Disposition.REFUSED
    assert result.aip_id is None
    assert code in result.reason
    with archive.sessions() as s:
        d = repo.delivery(s, result.delivery_id)
        assert d.disposition == "refused" and code in d.reason


def test_STO_E001_disk_full_while_writing_second_replica(archive, fits_delivery: Path) -> None:  # type: ignore[no-untyped-def]
    before = tree_snapshot(fits_delivery)
    ctx = archive.ingest_context()
    ctx.locations = [archive.locations[0], DiskFullStorage(archive.locations[1], capacity=100_000)]
    result = ingest(IngestRequest(fits_delivery, "eit-195"), ctx)
    _refused(archive, result, "STO-E001")
    assert "No space left on device" in result.reason and "replica-b" in result.reason
    _nothing_anywhere(archive)
    assert tree_snapshot(fits_delivery) == before

    again = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    assert again.disposition is Disposition.ACCEPTED, again.issues


def test_STO_E001_second_replica_cannot_take_the_object(archive, fits_delivery: Path) -> None:  # type: ignore[no-untyped-def]
    """Moving the object into place fails on replica-b after replica-a has committed: a real
    NotADirectoryError, since every first-level folder name of the layout is taken by a file."""
    blockers = []
    for i in range(16 ** 3):
        p = archive.locations[1].root / f"{i:03x}"
        p.write_bytes(b"")
        blockers.append(p)
    result = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    _refused(archive, result, "STO-E001")
    assert "cannot move object into place" in result.reason and "replica-b" in result.reason
    for p in blockers:
        p.unlink()
    _nothing_anywhere(archive)
    assert ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context()).aip_id


def test_CAT_E001_catalog_failure_rolls_back_both_replicas(archive, fits_delivery: Path) -> None:  # type: ignore[no-untyped-def]
    with archive.engine.begin() as conn:
        conn.execute(text("CREATE TRIGGER no_replicas BEFORE INSERT ON replicas "
                          "BEGIN SELECT RAISE(ABORT, 'injected catalog failure'); END"))
    result = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    _refused(archive, result, "CAT-E001")
    assert "injected catalog failure" in result.reason
    with archive.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER no_replicas"))
    _nothing_anywhere(archive)
    assert ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context()).aip_id


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_catalog(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Archive]:
    """An archive whose catalog is SQLite, then PostgreSQL (the real server)."""
    from oais.bootstrap import init_archive, open_archive

    if request.param == "postgresql":
        monkeypatch.setenv("OAIS_CATALOG_URL", request.getfixturevalue("pg_url"))
    settings, _ = init_archive(tmp_path / "archive")
    archive = open_archive(settings)
    try:
        yield archive
    finally:
        archive.close()


def test_CAT_E001_failure_at_commit_takes_back_the_copies_put_in_place(any_catalog: Archive, fits_delivery: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalog refuses the transaction only when it commits, after every copy was moved into place:
    a deferred constraint (SQLite: a deferred foreign key; PostgreSQL: a deferred constraint trigger)."""
    archive = any_catalog
    with archive.engine.begin() as conn:
        if archive.engine.dialect.name == "sqlite":
            conn.execute(text("CREATE TABLE nowhere (id INTEGER PRIMARY KEY)"))
            conn.execute(text("CREATE TABLE commit_guard (ref INTEGER REFERENCES nowhere(id) "
                              "DEFERRABLE INITIALLY DEFERRED)"))
            conn.execute(text("CREATE TRIGGER guard AFTER INSERT ON aips "
                              "BEGIN INSERT INTO commit_guard VALUES (42); END"))
        else:
            conn.execute(text("CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS "
                              "$$ BEGIN RAISE EXCEPTION 'injected failure at commit'; END $$"))
            conn.execute(text("CREATE CONSTRAINT TRIGGER guard AFTER INSERT ON aips DEFERRABLE INITIALLY "
                              "DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit()"))
    rolled_back: list[str] = []
    real_rollback = LocalStorage.rollback

    def recording(self: LocalStorage, object_path: str) -> None:
        assert self.exists(object_path), "rolled back a copy that was not in place"
        rolled_back.append(self.name)
        real_rollback(self, object_path)

    monkeypatch.setattr(LocalStorage, "rollback", recording)
    result = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    _refused(archive, result, "CAT-E001")
    assert ("FOREIGN KEY" in (result.reason or "") if archive.engine.dialect.name == "sqlite"
            else "injected failure at commit" in (result.reason or ""))
    assert rolled_back == ["replica-a", "replica-b"]
    _nothing_anywhere(archive)


def test_AIP_E001_invalid_metadata_is_refused_before_anything_is_put_in_place(archive: Archive,
                                                                              fits_delivery: Path) -> None:
    ctx = archive.ingest_context()
    ctx.validator = RejectingMets()
    result = ingest(IngestRequest(fits_delivery, "eit-195"), ctx)
    _refused(archive, result, "AIP-E001")
    _nothing_anywhere(archive)


def test_AIP_E001_validation_runs_while_staging_and_nothing_is_put_in_place(archive: Archive,
                                                                            fits_delivery: Path) -> None:
    """The schemas are checked while every location stages its copy; the copies wait for the verdict."""
    import time

    seen: list[str] = []

    class SlowRejecting:
        def errors(self, name: str, data: bytes) -> list[str]:
            if name != "METS.xml":
                return []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(seen) < len(archive.locations):
                seen[:] = [loc.name for loc in archive.locations if list(loc.staging.glob("*.tmp"))]
                time.sleep(0.01)
            for loc in archive.locations:
                assert loc.list_objects() == [], "moved into place before the schemas were checked"
            return [f"line 1: {name} refused by the schema"]

    ctx = archive.ingest_context()
    ctx.validator = SlowRejecting()
    result = ingest(IngestRequest(fits_delivery, "eit-195"), ctx)
    assert seen == ["replica-a", "replica-b"]
    _refused(archive, result, "AIP-E001")
    _nothing_anywhere(archive)


def test_AIP_E001_invalid_metadata_is_reported_even_when_storage_fails_too(archive: Archive,
                                                                          fits_delivery: Path) -> None:
    ctx = archive.ingest_context()
    ctx.validator = RejectingMets()
    ctx.locations = [archive.locations[0], DiskFullStorage(archive.locations[1], capacity=100_000)]
    result = ingest(IngestRequest(fits_delivery, "eit-195"), ctx)
    _refused(archive, result, "AIP-E001")
    assert "STO-E001" not in (result.reason or "")
    _nothing_anywhere(archive)


@pytest.mark.parametrize(("name", "code"), [
    pytest.param("missing", "SIP-E001", id="SIP-E001_missing_source"),
    pytest.param("fifo", "SIP-E002", id="SIP-E002_fifo_as_source"),
    pytest.param("notes.rar", "SIP-E002", id="SIP-E002_unsupported_archive"),
])
def test_unreadable_sources_are_refused(archive, tmp_path: Path, name: str, code: str) -> None:  # type: ignore[no-untyped-def]
    import os

    source = tmp_path / name
    if name == "fifo":
        os.mkfifo(source)
    elif name.endswith(".rar"):
        source.write_bytes(b"Rar!\x1a\x07\x00")
    result = ingest(IngestRequest(source, "eit-195"), archive.ingest_context())
    assert result.disposition is Disposition.REFUSED
    assert result.issues[0].code == code
    _nothing_anywhere(archive)


def test_OAIS_E999_unexpected_error_is_recorded_cleaned_up_and_raised(archive, fits_delivery: Path) -> None:  # type: ignore[no-untyped-def]
    from oais.catalog import repository as repo

    class Broken:
        def errors(self, name: str, data: bytes) -> list[str]:
            raise RuntimeError("validator crashed")

    ctx = archive.ingest_context()
    ctx.validator = Broken()
    ids = iter(f"urn:uuid:00000000-0000-0000-0000-{i:012d}" for i in range(1, 1000))
    ctx.new_id = lambda: next(ids)
    with pytest.raises(RuntimeError, match="validator crashed"):
        ingest(IngestRequest(fits_delivery, "eit-195"), ctx)
    _nothing_anywhere(archive)
    with archive.sessions() as s:
        d = repo.delivery(s, "urn:uuid:00000000-0000-0000-0000-000000000001")
        assert d.disposition == "refused" and "OAIS-E999" in d.reason


def test_STO_E001_flush_failure_on_second_replica(archive: Archive, fits_delivery: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk of replica-b reports an I/O error when its copy is flushed: nothing is committed."""
    import oais.storage.local as local

    real_sync = local._sync_tree
    replica_b = archive.locations[1].path

    def failing_sync(top: Path, files: list[Path]) -> None:
        if top.is_relative_to(replica_b):
            raise OSError(errno.EIO, "Input/output error")
        real_sync(top, files)

    monkeypatch.setattr(local, "_sync_tree", failing_sync)
    result = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    _refused(archive, result, "STO-E001")
    reason = result.reason or ""
    assert "cannot flush" in reason and "replica-b" in reason and "Input/output error" in reason
    _nothing_anywhere(archive)


def test_locations_are_flushed_once_all_are_written(archive: Archive, fits_delivery: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """No location is flushed while another is still writing (a flush of a shared disk would wait on
    that write), every location is flushed before anything is renamed into place, and exactly once."""
    import oais.storage.local as local

    steps: list[tuple[str, str]] = []
    real_sync, real_verify, real_rename = local._sync_tree, local.LocalStorage._verify, os.rename
    names: dict[Path, str] = {loc.path: loc.name for loc in archive.locations}

    def where(path: Path) -> str:
        return next(name for root, name in names.items() if Path(path).is_relative_to(root))

    def recording_verify(self: local.LocalStorage, written: list[tuple[Path, Entry]]) -> None:
        real_verify(self, written)
        steps.append(("written", self.name))

    def recording_sync(top: Path, files: list[Path]) -> None:
        steps.append(("flushed", where(top)))
        real_sync(top, files)

    def recording_rename(src: str | Path, dst: str | Path) -> None:
        if str(src).endswith(".tmp"):
            steps.append(("renamed", where(Path(src))))
        real_rename(src, dst)

    monkeypatch.setattr(local.LocalStorage, "_verify", recording_verify)
    monkeypatch.setattr(local, "_sync_tree", recording_sync)
    monkeypatch.setattr(os, "rename", recording_rename)  # the storage renames through os.rename
    result = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    assert result.disposition is Disposition.ACCEPTED, result.issues
    assert archive.settings.fsync, "the test archive must flush (storage.fsync = true)"
    kinds = [k for k, _ in steps]
    assert sorted(kinds) == ["flushed"] * 2 + ["renamed"] * 2 + ["written"] * 2, steps
    assert kinds[:2] == ["written", "written"], steps
    assert kinds[2:4] == ["flushed", "flushed"], steps
    assert {n for k, n in steps if k == "flushed"} == {"replica-a", "replica-b"}


def test_commit_flushes_a_copy_not_yet_flushed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller that commits without ``make_durable`` (a repair writing one location) still gets a
    durable object: ``commit`` flushes it before the rename, once."""
    import oais.storage.local as local

    flushed: list[Path] = []
    real_sync = local._sync_tree

    def recording_sync(top: Path, files: list[Path]) -> None:
        assert top.exists() and top.name.endswith(".tmp"), "flushed after the rename"
        flushed.append(top)
        real_sync(top, files)

    monkeypatch.setattr(local, "_sync_tree", recording_sync)
    store = LocalStorage("loc", tmp_path / "loc")
    store.ensure_root()
    data = b"payload\n"
    import hashlib

    staged = store.stage("obj", [Entry("v1/content/a.txt", hashlib.sha512(data).hexdigest(), data=data)])
    assert flushed == [] and not staged.durable
    staged.commit()
    assert len(flushed) == 1 and staged.durable
    assert (store.object_dir("obj") / "v1/content/a.txt").read_bytes() == data
    staged.make_durable()
    assert len(flushed) == 1
