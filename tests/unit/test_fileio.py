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
