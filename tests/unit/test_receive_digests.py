"""Receiving hashes every file in the pass that stages it: the digests equal a fresh read, for
every form of delivery (folder, zip, tar.gz), and the copy is bit for bit the delivered file."""

from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from oais.formats.digest import digest_file
from oais.formats.fileio import WRITE_MAX
from sip.receive import stage_delivery


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "delivery"
    (root / "a" / "b").mkdir(parents=True)
    rng = __import__("random").Random(7)
    for i, size in enumerate([0, 1, 4095, 1 << 20, (1 << 20) + 17, 3 << 20]):
        (root / ("a/b" if i % 2 else "a") / f"f{i}.bin").write_bytes(rng.randbytes(size))
    return root


def _archive(folder: Path, form: str) -> Path:
    if form == "folder":
        return folder
    if form == "zip":
        out = folder.parent / "d.zip"
        with zipfile.ZipFile(out, "w") as z:
            for p in sorted(folder.rglob("*")):
                z.write(p, p.relative_to(folder.parent).as_posix())
        return out
    out = folder.parent / "d.tar.gz"
    with tarfile.open(out, "w:gz") as t:
        t.add(folder, arcname=folder.name)
    return out


@pytest.mark.parametrize("form", ["folder", "zip", "tar"])
def test_staged_digests_equal_a_fresh_read(folder: Path, tmp_path: Path, form: str) -> None:
    staged = stage_delivery(_archive(folder, form), tmp_path / "staging")
    files = sorted(p for p in staged.root.rglob("*") if p.is_file())
    assert len(files) == 6
    assert set(staged.digests) == set(files)
    for p in files:
        assert staged.digests[p] == digest_file(p), p
    delivered = sorted(digest_file(p).sha512 for p in folder.rglob("*") if p.is_file())
    assert sorted(f.sha512 for f in staged.digests.values()) == delivered  # bit for bit what was delivered


@pytest.mark.parametrize("form", ["folder", "zip", "tar"])
def test_staging_writes_at_most_write_max_at_a_time(folder: Path, tmp_path: Path, form: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Files are read 1 MiB at a time, but each is written WRITE_MAX bytes at a time at most (larger
    writes cost several times the system time per byte: see oais.formats.fileio)."""
    delivery = _archive(folder, form)
    sizes: list[int] = []
    real_write = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        sizes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    staged = stage_delivery(delivery, tmp_path / "staging")
    monkeypatch.undo()
    delivered = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert sum(sizes) >= delivered  # every staged byte went through os.write
    assert max(sizes) <= WRITE_MAX < 1 << 20
    if form != "zip":  # read 1 MiB at a time (a zip member comes in zipfile's 64 KiB reads)
        assert WRITE_MAX in sizes
    assert sorted(f.sha512 for f in staged.digests.values()) == sorted(
        digest_file(p).sha512 for p in folder.rglob("*") if p.is_file())


def test_a_large_staged_file_is_handed_to_the_disk_as_it_is_written(tmp_path: Path) -> None:
    """Staging starts the disk's writing of a large file every WRITEBACK_CHUNK bytes (the flush that
    makes the AIP durable then finds little left to write): right after staging, no extent of the
    staged copy waits for its place on the disk, while the delivered file, merely written, does."""
    from oais.formats.fileio import WRITEBACK_CHUNK, _sync_file_range
    from tests.conftest import delayed_extents, unavailable

    if _sync_file_range() is None:
        unavailable("no sync_file_range here (Linux only)")
    source = tmp_path / "delivery"
    source.mkdir()
    data = os.urandom(3 * WRITEBACK_CHUNK)
    (source / "big.bin").write_bytes(data)
    if not delayed_extents(source / "big.bin"):
        unavailable(f"the file system of {tmp_path} shows no delayed allocation through FIEMAP")
    staged = stage_delivery(source, tmp_path / "staged")
    copy = staged.root / "big.bin"
    assert delayed_extents(copy) == 0
    assert copy.read_bytes() == data
    assert staged.digests[copy] == digest_file(source / "big.bin")


def test_the_end_of_a_staged_file_goes_to_the_disk_unless_the_file_is_small(tmp_path: Path) -> None:
    """A file of WRITEBACK_TAIL bytes or more (a FITS image of 1 MiB), smaller than WRITEBACK_CHUNK,
    is handed to the disk once staged; a smaller one is left to the kernel and the final flush."""
    import os

    from oais.formats.fileio import WRITEBACK_CHUNK, WRITEBACK_TAIL, _sync_file_range
    from tests.conftest import delayed_extents, unavailable

    if _sync_file_range() is None:
        unavailable("no sync_file_range here (Linux only)")
    source = tmp_path / "delivery"
    source.mkdir()
    sizes = {"image.fits": WRITEBACK_TAIL + 2880, "at-the-line.bin": WRITEBACK_TAIL, "small.txt": WRITEBACK_TAIL - 1}
    assert max(sizes.values()) < WRITEBACK_CHUNK
    for name, size in sizes.items():
        (source / name).write_bytes(os.urandom(size))
    if not delayed_extents(source / "small.txt"):
        unavailable(f"the file system of {tmp_path} shows no delayed allocation through FIEMAP")
    staged = stage_delivery(source, tmp_path / "staged")
    assert delayed_extents(staged.root / "image.fits") == 0
    assert delayed_extents(staged.root / "at-the-line.bin") == 0
    assert delayed_extents(staged.root / "small.txt") > 0
    for name in sizes:
        assert (staged.root / name).read_bytes() == (source / name).read_bytes()
