"""``oais.formats.fileio.copy_data``: every byte copied, by sendfile or by the read/write fallback."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from oais.formats import fileio


def _copy(src: Path, dst: Path) -> tuple[int, list[int]]:
    seen: list[int] = []
    with open(src, "rb", buffering=0) as s, open(dst, "xb", buffering=0) as d:
        n = fileio.copy_data(s.fileno(), d.fileno(), seen.append)
    return n, seen


def test_copies_a_file_larger_than_one_chunk_exactly(tmp_path: Path) -> None:
    data = os.urandom(fileio.COPY_CHUNK * 2 + 12345)
    (tmp_path / "a").write_bytes(data)
    n, seen = _copy(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b").read_bytes() == data
    assert n == len(data) == sum(seen)
    assert len(seen) >= 3  # progress at least once per chunk


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"")
    assert _copy(tmp_path / "a", tmp_path / "b") == (0, [])
    assert (tmp_path / "b").read_bytes() == b""


def test_falls_back_to_read_write_where_sendfile_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def refuse(out_fd: int, in_fd: int, offset: object, count: int) -> int:
        calls.append(count)
        raise OSError(22, "Invalid argument")  # what Linux says for files sendfile cannot read

    monkeypatch.setattr(fileio.os, "sendfile", refuse)
    data = os.urandom(3 << 20)
    (tmp_path / "a").write_bytes(data)
    n, seen = _copy(tmp_path / "a", tmp_path / "b")
    assert calls and n == len(data) == sum(seen)
    assert (tmp_path / "b").read_bytes() == data


def test_the_read_write_fallback_writes_at_most_write_max_at_a_time(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback reads 1 MiB at a time but never hands the kernel more than WRITE_MAX in one write
    (larger writes cost several times the system time per byte: see the module)."""
    sizes: list[int] = []
    real_write = os.write

    def refuse(out_fd: int, in_fd: int, offset: object, count: int) -> int:
        raise OSError(22, "Invalid argument")

    def write(fd: int, data: bytes | memoryview) -> int:
        sizes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(fileio.os, "sendfile", refuse)
    monkeypatch.setattr(fileio.os, "write", write)
    data = os.urandom((3 << 20) + 4321)
    (tmp_path / "a").write_bytes(data)
    n, _ = _copy(tmp_path / "a", tmp_path / "b")
    assert n == len(data) and (tmp_path / "b").read_bytes() == data
    assert sum(sizes) == len(data)
    assert max(sizes) == fileio.WRITE_MAX < 1 << 20


def test_a_pipe_is_copied_whatever_the_kernel_allows(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    r, w = os.pipe()
    def feed() -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(w, view):]
        os.close(w)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        with open(tmp_path / "b", "xb", buffering=0) as d:
            n = fileio.copy_data(r, d.fileno())
    finally:
        writer.join()
        os.close(r)
    assert n == len(data)
    assert (tmp_path / "b").read_bytes() == data


def test_a_write_error_is_raised_not_hidden(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 1000)
    with open(tmp_path / "a", "rb", buffering=0) as s, open(tmp_path / "a", "rb", buffering=0) as not_writable:
        with pytest.raises(OSError):
            fileio.copy_data(s.fileno(), not_writable.fileno())


@pytest.mark.parametrize("how", ["copy_data", "start_writeback"])
def test_large_writes_go_to_the_disk_without_waiting_for_a_flush(tmp_path: Path, how: str) -> None:
    """A copy's bytes are handed to the disk as they are written (``sync_file_range``), not left in
    memory until the final flush: right after the copy, no extent of the file is still waiting for
    its place on the disk, whereas the same bytes merely written wait (delayed allocation), as the
    kernel keeps new dirty pages up to 30 s and this file is far below its writeback threshold."""
    from tests.conftest import delayed_extents, unavailable

    if fileio._sync_file_range() is None:
        unavailable("no sync_file_range here (Linux only)")
    size = 4 * fileio.WRITEBACK_CHUNK
    data = os.urandom(size)
    (tmp_path / "a").write_bytes(data)
    waiting = delayed_extents(tmp_path / "a")
    if not waiting:
        unavailable(f"the file system of {tmp_path} shows no delayed allocation through FIEMAP")
    if how == "copy_data":
        _copy(tmp_path / "a", tmp_path / "b")
    else:
        with open(tmp_path / "b", "xb", buffering=0) as f:
            f.write(data)
            fileio.start_writeback(f.fileno(), 0, size)
    assert delayed_extents(tmp_path / "b") == 0
    assert (tmp_path / "b").read_bytes() == data


@pytest.mark.parametrize(("size", "handed"), [(fileio.WRITEBACK_TAIL + 1, True), (fileio.WRITEBACK_TAIL - 1, False)],
                         ids=["the-end-of-a-copy-handed-to-the-disk", "a-small-copy-left-to-the-kernel"])
def test_the_end_of_a_copy_goes_to_the_disk_unless_the_copy_is_small(tmp_path: Path, size: int,
                                                                      handed: bool) -> None:
    from tests.conftest import delayed_extents, unavailable

    if fileio._sync_file_range() is None:
        unavailable("no sync_file_range here (Linux only)")
    assert size < fileio.WRITEBACK_CHUNK
    data = os.urandom(size)
    (tmp_path / "a").write_bytes(data)
    if not delayed_extents(tmp_path / "a"):
        unavailable(f"the file system of {tmp_path} shows no delayed allocation through FIEMAP")
    _copy(tmp_path / "a", tmp_path / "b")
    assert (delayed_extents(tmp_path / "b") == 0) is handed
    assert (tmp_path / "b").read_bytes() == data


# -- copy_reread: a large copy made, re-read and dropped from the page cache window by window ---------

WINDOW = 1 << 20


def _copy_reread(src: Path, dst: Path, window: int = WINDOW) -> tuple[int, list[int], str]:
    import hashlib

    seen: list[int] = []
    h = hashlib.sha256()
    with open(src, "rb", buffering=0) as s, open(dst, "xb", buffering=0) as d:
        back = os.open(dst, os.O_RDONLY)
        try:
            n = fileio.copy_reread(s.fileno(), d.fileno(), back, h.update, seen.append, window)
        finally:
            os.close(back)
    return n, seen, h.hexdigest()


def _resident_pages(path: Path) -> tuple[int, int]:
    """(pages of ``path`` in the page cache, pages of the file), from mincore(2) on a mapping of it."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    vec = (ctypes.c_ubyte * pages)()
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert addr not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
        try:
            assert libc.mincore(addr, size, vec) == 0, os.strerror(ctypes.get_errno())
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)
    return sum(b & 1 for b in vec), pages


def test_copy_reread_copies_every_byte_and_digests_what_it_reads_back(tmp_path: Path) -> None:
    import hashlib

    data = os.urandom(3 * WINDOW + 12345)
    (tmp_path / "a").write_bytes(data)
    n, seen, digest = _copy_reread(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b").read_bytes() == data
    assert n == len(data) == sum(seen)
    assert digest == hashlib.sha256(data).hexdigest()


def test_copy_reread_of_an_empty_file(tmp_path: Path) -> None:
    import hashlib

    (tmp_path / "a").write_bytes(b"")
    assert _copy_reread(tmp_path / "a", tmp_path / "b") == (0, [], hashlib.sha256(b"").hexdigest())
    assert (tmp_path / "b").read_bytes() == b""


def test_copy_reread_falls_back_to_read_write_where_sendfile_refuses(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    calls: list[int] = []

    def refuse(out_fd: int, in_fd: int, offset: object, count: int) -> int:
        calls.append(count)
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(fileio.os, "sendfile", refuse)
    data = os.urandom(2 * WINDOW + 7)
    (tmp_path / "a").write_bytes(data)
    n, seen, digest = _copy_reread(tmp_path / "a", tmp_path / "b")
    assert calls == [WINDOW]  # refused once, at the start, then never asked again
    assert n == len(data) == sum(seen)
    assert (tmp_path / "b").read_bytes() == data
    assert digest == hashlib.sha256(data).hexdigest()


def test_copy_reread_digests_the_bytes_read_back_from_the_copy_not_those_sent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy that reads back differently (here: the first byte of the second window, as if the
    disk had changed it) gives another digest, so the caller's check against the sha256 fails."""
    import hashlib

    data = os.urandom(3 * WINDOW)
    (tmp_path / "a").write_bytes(data)
    real = os.preadv

    def flip(fd: int, buffers: list[memoryview], offset: int) -> int:
        n = real(fd, buffers, offset)
        if offset == WINDOW:
            buffers[0][0] ^= 0xFF
        return n

    monkeypatch.setattr(fileio.os, "preadv", flip)
    _n, _seen, digest = _copy_reread(tmp_path / "a", tmp_path / "b")
    changed = bytearray(data)
    changed[WINDOW] ^= 0xFF
    assert digest == hashlib.sha256(bytes(changed)).hexdigest() != hashlib.sha256(data).hexdigest()


def test_copy_reread_leaves_the_copy_on_the_disk_and_out_of_the_page_cache(tmp_path: Path) -> None:
    """Each window, once re-read, is written out and dropped: right after the copy, none of it waits
    for the disk and nearly none of it is in memory, whereas the same bytes copied by ``copy_data``
    all stay in the page cache."""
    from tests.conftest import delayed_extents, unavailable

    if fileio._sync_file_range() is None or not hasattr(os, "posix_fadvise"):
        unavailable("no sync_file_range or posix_fadvise here (Linux only)")
    data = os.urandom(16 * WINDOW)
    (tmp_path / "a").write_bytes(data)
    _copy(tmp_path / "a", tmp_path / "kept")
    kept, pages = _resident_pages(tmp_path / "kept")
    assert kept == pages  # the page cache keeps a plain copy: what the other one saves
    _copy_reread(tmp_path / "a", tmp_path / "b")
    assert delayed_extents(tmp_path / "b") == 0
    resident, pages = _resident_pages(tmp_path / "b")
    assert resident <= pages // 16, f"{resident} of {pages} pages still in memory"
    assert (tmp_path / "b").read_bytes() == data


def test_flush_and_drop_raises_what_the_kernel_refuses(tmp_path: Path) -> None:
    from tests.conftest import unavailable

    if fileio._sync_file_range() is None:
        unavailable("no sync_file_range here (Linux only)")
    r, w = os.pipe()
    try:
        with pytest.raises(OSError, match="sync_file_range"):
            fileio.flush_and_drop(r, 0, 4096)  # a pipe has no pages to write (ESPIPE)
    finally:
        os.close(r)
        os.close(w)
