"""Copying ahead of time (``LocalStorage.prepare``): a real worker process, real files, real renames."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from oais.bootstrap import Archive
from oais.domain.package import Disposition
from oais.domain.storage import Entry, SourceFile
from oais.services.ingest import IngestRequest, ingest
from oais.storage.base import StorageError
from oais.storage.local import LocalPreparedCopies, LocalStorage

PREFIX = "v1/content/representations/original/data/"


def _delivery(root: Path) -> dict[str, bytes]:
    """A staged delivery: two folders, a nested one, and a file at the top."""
    files = {
        "a/one.bin": b"first file\n" * 300,
        "a/two.bin": b"second file\n" * 200,
        "b/c/three.bin": os.urandom(70_000),
        "b/four.bin": b"four\n",
        "top.txt": b"at the top\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _sources(root: Path, files: dict[str, bytes]) -> list[SourceFile]:
    return [SourceFile(root / rel, hashlib.sha256(data).hexdigest(), len(data)) for rel, data in files.items()]


def _entries(root: Path, files: dict[str, bytes], paths: dict[str, str] | None = None) -> list[Entry]:
    paths = paths or {rel: PREFIX + rel for rel in files}
    return [Entry(paths[rel], hashlib.sha512(data).hexdigest(), source=root / rel,
                  sha256=hashlib.sha256(data).hexdigest(), size=len(data)) for rel, data in files.items()
            if rel in paths]


def _prepare(store: LocalStorage, root: Path, sources: list[SourceFile], *,
             adopt: bool = False) -> LocalPreparedCopies:
    assert all(f.path.is_relative_to(root) for f in sources)
    return store.prepare(sources, adopt=adopt)


def _tree(top: Path) -> dict[str, bytes]:
    return {p.relative_to(top).as_posix(): p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file()}


@pytest.fixture
def staged(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path / "staging" / "delivery"
    return root, _delivery(root)


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    location = LocalStorage("loc", tmp_path / "loc")
    location.ensure_root()
    return location


def test_copies_are_moved_into_the_object_whole_folders_at_once(store: LocalStorage,
                                                                staged: tuple[Path, dict[str, bytes]],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    root, files = staged
    copies = _prepare(store, root, _sources(root, files))
    renamed = _renames(store, monkeypatch)
    obj = store.stage("obj", _entries(root, files), prepared=copies)
    monkeypatch.undo()
    # a and b go in as folders; top.txt is a top-level file, moved on its own
    assert sorted(renamed) == [PREFIX + "a", PREFIX + "b", PREFIX + "top.txt"]
    copies.close()
    assert copies.folder is not None and not copies.folder.exists()
    assert store.staging_leftovers() == [obj.tmp]
    obj.commit()
    assert _tree(store.object_dir("obj")) == {PREFIX + rel: data for rel, data in files.items()}
    for rel in files:  # copies, not the staged files themselves: two distinct inodes
        assert not os.path.samefile(store.object_dir("obj") / (PREFIX + rel), root / rel)
    assert _tree(root) == files


def _renames(store: LocalStorage, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records where ``os.rename`` moves things in the staged object (paths below the object)."""
    renamed: list[str] = []
    real_rename = os.rename

    def recording(src: str | Path, dst: str | Path) -> None:
        if Path(dst).is_relative_to(store.staging):
            renamed.append(Path(dst).relative_to(store.staging).as_posix().split("/", 1)[1])
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", recording)
    return renamed


def test_two_folders_for_one_place_go_file_by_file(store: LocalStorage, staged: tuple[Path, dict[str, bytes]],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root, files = staged
    paths = {rel: "v1/content/flat/" + rel.split("/", 1)[-1] for rel in files}  # a/one.bin -> flat/one.bin
    copies = _prepare(store, root, _sources(root, files))
    renamed = _renames(store, monkeypatch)
    obj = store.stage("obj", _entries(root, files, paths), prepared=copies)
    monkeypatch.undo()
    assert sorted(renamed) == sorted(paths.values())  # no folder moved whole: a and b would both be flat/
    copies.close()
    obj.commit()
    assert _tree(store.object_dir("obj")) == {path: files[rel] for rel, path in paths.items()}


@pytest.mark.parametrize("adopt", [False, True], ids=["copying", "linking"])
def test_the_bytes_copied_ahead_are_the_staging_progress(store: LocalStorage,
                                                         staged: tuple[Path, dict[str, bytes]], adopt: bool) -> None:
    """Every byte of the object is reported once: the copies while stage waits for them, the rest as
    it is written."""
    root, files = staged
    entries = _entries(root, files) + [Entry("inventory.json", hashlib.sha512(b"{}").hexdigest(), data=b"{}")]
    copies = _prepare(store, root, _sources(root, files), adopt=adopt)
    ticks: list[int] = []
    obj = store.stage("obj", entries, ticks.append, adopt=adopt, prepared=copies)
    copies.close()
    obj.abort()
    assert sum(ticks) == sum(len(d) for d in files.values()) + 2 and all(n > 0 for n in ticks)


def test_an_adopting_location_links_the_staged_files(store: LocalStorage,
                                                     staged: tuple[Path, dict[str, bytes]]) -> None:
    root, files = staged
    copies = _prepare(store, root, _sources(root, files), adopt=True)
    obj = store.stage("obj", _entries(root, files), prepared=copies, adopt=True)
    copies.close()
    obj.commit()
    for rel in files:
        stored = store.object_dir("obj") / (PREFIX + rel)
        assert os.path.samefile(stored, root / rel) and stored.stat().st_nlink == 2


def test_copies_not_wanted_are_removed_and_the_others_moved_one_by_one(
        store: LocalStorage, staged: tuple[Path, dict[str, bytes]]) -> None:
    """Folder a holds a copy no entry wants (a duplicate the object keeps once), and b/four.bin goes to
    another place: neither folder moves whole, and nothing unwanted reaches the object."""
    root, files = staged
    paths = {"a/one.bin": PREFIX + "a/one.bin", "b/c/three.bin": PREFIX + "b/c/three.bin",
             "b/four.bin": "v1/content/elsewhere/four.bin", "top.txt": PREFIX + "top.txt"}
    copies = _prepare(store, root, _sources(root, files))
    obj = store.stage("obj", _entries(root, files, paths), prepared=copies)
    copies.close()
    obj.commit()
    assert _tree(store.object_dir("obj")) == {path: files[rel] for rel, path in paths.items()}
    assert store.staging_leftovers() == []


def test_a_copy_with_another_digest_is_not_taken(store: LocalStorage,
                                                 staged: tuple[Path, dict[str, bytes]]) -> None:
    """An entry asking for other bytes than those copied ahead gets them written and re-read."""
    root, files = staged
    copies = _prepare(store, root, _sources(root, files))
    # the copies are made and verified first, then the source changes (never in an ingest)
    copies.ready()
    (root / "a/two.bin").write_bytes(b"changed after the copy was made\n")
    changed = {**files, "a/two.bin": b"changed after the copy was made\n"}
    obj = store.stage("obj", _entries(root, changed), prepared=copies)
    copies.close()
    obj.commit()
    assert _tree(store.object_dir("obj")) == {PREFIX + rel: data for rel, data in changed.items()}
    assert store.staging_leftovers() == []


def test_a_copy_that_does_not_match_fails_the_staging(store: LocalStorage,
                                                      staged: tuple[Path, dict[str, bytes]]) -> None:
    root, files = staged
    sources = _sources(root, files)
    sources[2] = SourceFile(sources[2].path, "0" * 64, sources[2].size)
    copies = _prepare(store, root, sources)
    with pytest.raises(StorageError, match=r"'loc'.*copy of .*b/c/three.bin does not match after writing"):
        store.stage("obj", _entries(root, files), prepared=copies)
    copies.close()
    assert store.staging_leftovers() == [] and not store.exists("obj")


def test_a_source_that_cannot_be_read_fails_the_staging(store: LocalStorage,
                                                        staged: tuple[Path, dict[str, bytes]]) -> None:
    root, files = staged
    sources = _sources(root, files) + [SourceFile(root / "gone.bin", "0" * 64, 1)]
    copies = _prepare(store, root, sources)
    with pytest.raises(StorageError, match=r"cannot copy .*gone.bin: No such file or directory"):
        copies.ready()
    copies.close()
    assert store.staging_leftovers() == []


def test_a_copying_process_killed_is_an_error_not_a_success(store: LocalStorage,
                                                            staged: tuple[Path, dict[str, bytes]]) -> None:
    root, files = staged
    copies = _prepare(store, root, _sources(root, files))
    assert copies.process is not None
    copies.process.send_signal(signal.SIGKILL)
    with pytest.raises(StorageError, match=r"ended without a result \(exit status -9\)"):
        store.stage("obj", _entries(root, files), prepared=copies)
    copies.close()
    assert store.staging_leftovers() == []


def test_close_stops_the_copying_and_removes_everything(store: LocalStorage,
                                                        staged: tuple[Path, dict[str, bytes]]) -> None:
    root, files = staged
    copies = _prepare(store, root, _sources(root, files))
    copies.close()  # at once: the process is still starting (it takes tens of milliseconds)
    assert copies.process is not None and copies.process.returncode == -signal.SIGKILL
    assert store.staging_leftovers() == []
    assert _tree(root) == files


def test_without_an_interpreter_to_start_stage_writes_everything(store: LocalStorage,
                                                                  staged: tuple[Path, dict[str, bytes]],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    root, files = staged
    monkeypatch.setattr(sys, "executable", "")
    copies = _prepare(store, root, _sources(root, files))
    monkeypatch.undo()
    assert copies.process is None and copies.folder is None and store.staging_leftovers() == []
    obj = store.stage("obj", _entries(root, files), prepared=copies)
    copies.close()
    obj.commit()
    assert _tree(store.object_dir("obj")) == {PREFIX + rel: data for rel, data in files.items()}


def test_copies_prepared_elsewhere_are_refused(tmp_path: Path, store: LocalStorage,
                                               staged: tuple[Path, dict[str, bytes]]) -> None:
    root, files = staged
    other = LocalStorage("other", tmp_path / "other")
    other.ensure_root()
    copies = _prepare(other, root, _sources(root, files))
    try:
        with pytest.raises(ValueError, match="was not prepared by"):
            store.stage("obj", _entries(root, files), prepared=copies)
    finally:
        copies.close()


def test_ingest_refuses_when_a_copy_made_ahead_does_not_verify(archive: Archive, fits_delivery: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """replica-b's copying is told a wrong sha256 for one staged file: its copy cannot verify."""
    real_prepare = LocalStorage.prepare

    def prepare(self: LocalStorage, files: Iterable[SourceFile], *, adopt: bool = False,
                check_links: bool = True) -> LocalPreparedCopies:
        listed = list(files)
        if self.name == "replica-b":
            listed[0] = SourceFile(listed[0].path, "0" * 64, listed[0].size)
        return real_prepare(self, listed, adopt=adopt, check_links=check_links)

    monkeypatch.setattr(LocalStorage, "prepare", prepare)
    result = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    assert result.disposition is Disposition.REFUSED
    reason = result.reason or ""
    assert "STO-E001" in reason and "replica-b" in reason and "does not match after writing" in reason
    for location in archive.locations:
        assert location.staging_leftovers() == [] and location.list_objects() == []
    assert result.quarantine is not None
    quarantined = sorted(p.name for p in Path(result.quarantine).rglob("*") if p.is_file())
    assert quarantined == sorted(p.name for p in fits_delivery.rglob("*") if p.is_file())


def test_ingest_refused_while_describing_stops_the_copying(archive: Archive, fits_delivery: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The copying has started when the bag's validation refuses the delivery: every copying process
    is stopped and its copies removed before the staged delivery goes to quarantine, whole."""
    import shutil

    import bagit

    bag = tmp_path / "bag"
    shutil.copytree(fits_delivery, bag)
    bagit.make_bag(str(bag), checksums=["sha256"])
    damaged = bag / "data" / "test0.fits"
    data = bytearray(damaged.read_bytes())
    data[5000] ^= 0xFF
    damaged.write_bytes(bytes(data))
    started: list[LocalPreparedCopies] = []
    real_prepare = LocalStorage.prepare

    def spying(self: LocalStorage, files: Iterable[SourceFile], *, adopt: bool = False,
               check_links: bool = True) -> LocalPreparedCopies:
        copies = real_prepare(self, files, adopt=adopt, check_links=check_links)
        started.append(copies)
        return copies

    monkeypatch.setattr(LocalStorage, "prepare", spying)
    result = ingest(IngestRequest(bag, "eit-195"), archive.ingest_context())
    assert result.disposition is Disposition.REFUSED and "SIP-E011" in (result.reason or "")
    assert [c.location for c in started] == ["replica-a", "replica-b"]
    for copies in started:
        assert copies.process is not None and copies.process.returncode is not None
        assert copies.folder is not None and not copies.folder.exists()
    for location in archive.locations:
        assert location.staging_leftovers() == []
    assert result.quarantine and Path(result.quarantine, "data", "test0.fits").read_bytes() == bytes(data)


def test_the_copying_process_imports_nothing_from_the_current_folder(store: LocalStorage,
                                                                     staged: tuple[Path, dict[str, bytes]],
                                                                     tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # an archivist may run `oais ingest .` inside a delivery: a json.py there must stay data
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    marker = tmp_path / "imported"
    (hostile / "json.py").write_text(f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8")
    monkeypatch.chdir(hostile)
    root, files = staged
    copies = _prepare(store, root, _sources(root, files))
    obj = store.stage("obj", _entries(root, files), prepared=copies)
    copies.close()
    obj.abort()
    assert not marker.exists()


def _job(folder: Path, files: list[tuple[Path, bytes]], digests: dict[str, str] | None = None, *,
         adopt: bool = False, check_links: bool | None = None) -> None:
    folder.mkdir()
    rows = [[str(path), path.name, (digests or {}).get(path.name, hashlib.sha256(data).hexdigest()), len(data)]
            for path, data in files]
    job: dict[str, object] = {"files": rows, "adopt": adopt, "fsync": False}
    if check_links is not None:
        job["check_links"] = check_links
    (folder / "job.json").write_text(json.dumps(job))


@pytest.fixture
def mixed(tmp_path: Path) -> list[tuple[Path, bytes]]:
    """Large and small files, in this order: big1, small1, big2, small2."""
    from oais.storage.copy_ahead import EARLY_CHECK

    out = []
    for name, size in (("big1", EARLY_CHECK + 1), ("small1", 1000), ("big2", EARLY_CHECK), ("small2", 10)):
        data = os.urandom(size)
        (tmp_path / name).write_bytes(data)
        out.append((tmp_path / name, data))
    return out


def test_a_large_copy_is_made_and_re_read_beside_the_next_ones(tmp_path: Path, mixed: list[tuple[Path, bytes]],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A large copy is made and re-read on a thread of its own (``copy_reread``), while the main
    thread copies the next files: the first large copy finishes only once the last small file is
    copied (it would wait 10 s for it, then report a failure, if the copies were made in turn)."""
    import threading

    from oais.formats import fileio
    from oais.storage.copy_ahead import run

    last_copied = threading.Event()
    waited: list[bool] = []
    copy, copy_reread = fileio.copy_data, fileio.copy_reread

    def copy_data(src: int, dst: int, progress: Callable[[int], None] | None = None) -> int:
        n = copy(src, dst, progress)
        if os.fstat(src).st_size == 10:  # small2, the last
            last_copied.set()
        return n

    def reread(src: int, dst: int, back: int, update: Callable[[memoryview], object],
               progress: Callable[[int], None] | None = None) -> int:
        if os.fstat(src).st_size == EARLY_CHECK + 1:  # big1, the first
            waited.append(last_copied.wait(10))
        return copy_reread(src, dst, back, update, progress)

    from oais.storage.copy_ahead import EARLY_CHECK

    monkeypatch.setattr(fileio, "copy_data", copy_data)
    monkeypatch.setattr(fileio, "copy_reread", reread)
    _job(tmp_path / "job", mixed)
    assert run(tmp_path / "job") == {"ok": True, "count": 4, "unread_links": 0}
    assert waited == [True]
    assert {p.name: p.read_bytes() for p in (tmp_path / "job" / "files").iterdir()} == {
        path.name: data for path, data in mixed}
    assert (tmp_path / "job" / "progress").read_text().strip() == str(sum(len(d) for _, d in mixed))


def test_a_large_copy_that_cannot_be_made_is_named(tmp_path: Path, mixed: list[tuple[Path, bytes]],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from oais.formats import fileio
    from oais.storage.copy_ahead import run

    def full(src: int, dst: int, back: int, update: Callable[[memoryview], object],
             progress: Callable[[int], None] | None = None) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio, "copy_reread", full)
    _job(tmp_path / "job", mixed)
    result = run(tmp_path / "job")
    assert result == {"ok": False, "error": f"cannot copy {tmp_path / 'big1'}: No space left on device"}


@pytest.mark.parametrize(("wrong", "named"), [(["big2", "small2"], "big2"), (["small1", "big2"], "small1"),
                                               (["small2"], "small2"), (["big1"], "big1")])
def test_the_first_copy_that_does_not_match_in_the_job_order_is_named(
        tmp_path: Path, mixed: list[tuple[Path, bytes]], wrong: list[str], named: str) -> None:
    from oais.storage.copy_ahead import run

    _job(tmp_path / "job", mixed, {name: "0" * 64 for name in wrong})
    result = run(tmp_path / "job")
    assert result["ok"] is False
    assert f"the copy of {tmp_path / named} does not match after writing" in str(result["error"])


@pytest.mark.parametrize("check_links", [None, True, False], ids=["links-checked-by-default", "links-checked",
                                                                   "links-left-unread"])
def test_links_are_re_read_unless_the_job_says_another_copy_reads_them(
        tmp_path: Path, mixed: list[tuple[Path, bytes]], check_links: bool | None) -> None:
    """Every file is linked (one link each, same file system); the job gives a wrong sha256 for a
    large one and a small one. Re-read, the links fail on the first of them; left unread (another
    location's checked copies read those files), the job succeeds and counts them."""
    from oais.storage.copy_ahead import run

    _job(tmp_path / "job", mixed, {"big1": "0" * 64, "small2": "0" * 64}, adopt=True, check_links=check_links)
    result = run(tmp_path / "job")
    if check_links is False:
        assert result == {"ok": True, "count": 4, "unread_links": 4}
    else:
        assert result["ok"] is False
        assert f"the copy of {tmp_path / 'big1'} does not match after writing" in str(result["error"])
    for path, _data in mixed:
        assert os.path.samefile(tmp_path / "job" / "files" / path.name, path)


def test_copies_are_checked_when_the_links_are_left_unread(tmp_path: Path, mixed: list[tuple[Path, bytes]]) -> None:
    """small1 and big2 have a second link, so they are copied, not linked: their copies are checked
    even when links are not (big1, wrong too and first in the job, is linked and not read)."""
    from oais.storage.copy_ahead import run

    for name in ("small1", "big2"):
        os.link(tmp_path / name, tmp_path / f"{name}.other")
    _job(tmp_path / "job", mixed, {"big1": "0" * 64, "small1": "0" * 64}, adopt=True, check_links=False)
    result = run(tmp_path / "job")
    assert result["ok"] is False
    assert f"the copy of {tmp_path / 'small1'} does not match after writing" in str(result["error"])
    copies = tmp_path / "job" / "files"
    assert os.path.samefile(copies / "big1", tmp_path / "big1")
    assert not os.path.samefile(copies / "big2", tmp_path / "big2")

    _job(tmp_path / "job2", mixed, {"big2": "0" * 64}, adopt=True, check_links=False)
    result = run(tmp_path / "job2")
    assert result["ok"] is False
    assert f"the copy of {tmp_path / 'big2'} does not match after writing" in str(result["error"])


def _damaging_prepare(monkeypatch: pytest.MonkeyPatch, calls: list[tuple[str, bool, bool]]) -> None:
    """``LocalStorage.prepare``, first flipping one byte of the staged README.txt (once), as a write
    that went wrong while staging would leave it; the calls are recorded."""
    real_prepare = LocalStorage.prepare

    def prepare(self: LocalStorage, files: Iterable[SourceFile], *, adopt: bool = False,
                check_links: bool = True) -> LocalPreparedCopies:
        listed = list(files)
        if not calls:
            readme = next(f.path for f in listed if f.path.name == "README.txt")
            with open(readme, "r+b") as fh:
                first = fh.read(1)
                fh.seek(0)
                fh.write(bytes([first[0] ^ 0x20]))
        calls.append((self.name, adopt, check_links))
        return real_prepare(self, listed, adopt=adopt, check_links=check_links)

    monkeypatch.setattr(LocalStorage, "prepare", prepare)


def test_a_staged_file_gone_wrong_is_caught_by_the_second_location_s_copy(
        archive: Archive, fits_delivery: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With two locations, replica-a's links are not re-read (``check_links=False``): replica-b's copy
    of the damaged staged file does not verify, and nothing is stored anywhere."""
    calls: list[tuple[str, bool, bool]] = []
    _damaging_prepare(monkeypatch, calls)
    result = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
    assert calls == [("replica-a", True, False), ("replica-b", False, True)]
    assert result.disposition is Disposition.REFUSED
    reason = result.reason or ""
    assert "STO-E001" in reason and "replica-b" in reason and "README.txt does not match after writing" in reason
    for location in archive.locations:
        assert location.staging_leftovers() == [] and location.list_objects() == []


def test_with_one_location_its_links_are_re_read(home: Path, fits_delivery: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """No other location copies the staged files: the only one re-reads its links, and the damaged
    staged file is caught there."""
    from oais.bootstrap import open_archive
    from oais.config import load_settings

    toml = home / "oais.toml"
    text = toml.read_text(encoding="utf-8")
    second = '[[storage.locations]]\nname = "replica-b"\nkind = "local"\npath = "replica-b"\n'
    assert second in text and "copies_required = 2" in text
    toml.write_text(text.replace(second, "").replace("copies_required = 2", "copies_required = 1"), encoding="utf-8")
    archive = open_archive(load_settings(home))
    try:
        calls: list[tuple[str, bool, bool]] = []
        _damaging_prepare(monkeypatch, calls)
        result = ingest(IngestRequest(fits_delivery, "eit-195"), archive.ingest_context())
        assert calls == [("replica-a", True, True)]
        assert result.disposition is Disposition.REFUSED
        reason = result.reason or ""
        assert "STO-E001" in reason and "replica-a" in reason and "README.txt does not match after writing" in reason
        assert [loc.name for loc in archive.locations] == ["replica-a"]
        assert archive.locations[0].list_objects() == []
    finally:
        archive.close()


def test_the_copying_process_runs_nicer_than_the_ingest(store: LocalStorage,
                                                        staged: tuple[Path, dict[str, bytes]]) -> None:
    """It gives the cores to the ingest's own process first (see ``COPY_AHEAD_NICENESS``)."""
    from oais.storage.local import COPY_AHEAD_NICENESS

    root, files = staged
    copies = _prepare(store, root, _sources(root, files))
    try:
        assert copies.ready()  # it copied every file
        assert copies.folder is not None
        result = json.loads((copies.folder / "result.json").read_text(encoding="utf-8"))
    finally:
        copies.close()
    assert COPY_AHEAD_NICENESS > 0
    assert result == {"ok": True, "count": len(files), "unread_links": 0,
                      "nice": min(19, os.nice(0) + COPY_AHEAD_NICENESS)}


@pytest.mark.parametrize("args", [[], ["--nice=x", "f"], ["--nice=-5", "f"], ["f", "g"]])
def test_the_copying_process_refuses_a_wrong_command_line(args: list[str], tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-P", "-m", "oais.storage.copy_ahead", *args], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "usage: python -m oais.storage.copy_ahead [--nice=N] FOLDER" in done.stderr
    assert list(tmp_path.iterdir()) == []
