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
