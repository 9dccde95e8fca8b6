"""``oais.formats.digest.read_digest``: the one streaming digest of stored files (audit, repair, storage)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from oais.formats.digest import READ_BUFFER, read_digest


@pytest.mark.parametrize("size", [0, 1, READ_BUFFER - 1, READ_BUFFER, READ_BUFFER + 1, 5 * READ_BUFFER + 7])
def test_size_and_digest_at_buffer_edges(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    assert read_digest(tmp_path / "f", "sha256") == (size, hashlib.sha256(data).hexdigest())
    assert read_digest(tmp_path / "f") == (size, hashlib.sha512(data).hexdigest())


def test_every_byte_read_is_reported_to_the_throttle(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * (3 * READ_BUFFER + 5))
    seen: list[int] = []
    read_digest(tmp_path / "f", "sha256", seen.append)
    assert sum(seen) == 3 * READ_BUFFER + 5


def test_threads_do_not_share_a_buffer(tmp_path: Path) -> None:
    blobs = [os.urandom(3 * READ_BUFFER + i) for i in range(8)]
    for i, blob in enumerate(blobs):
        (tmp_path / str(i)).write_bytes(blob)
    results: dict[int, str] = {}

    def work(i: int) -> None:
        for _ in range(20):
            results[i] = read_digest(tmp_path / str(i), "sha256")[1]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: hashlib.sha256(b).hexdigest() for i, b in enumerate(blobs)}


def test_not_a_regular_file_is_an_error_never_a_wait(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="directory"):
        read_digest(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError, match="not a regular file"):
        read_digest(tmp_path / "fifo")  # opened without blocking, then refused
    with pytest.raises(FileNotFoundError):
        read_digest(tmp_path / "missing")


def test_relative_to_an_open_folder(tmp_path: Path) -> None:
    (tmp_path / "obj" / "v1" / "content").mkdir(parents=True)
    data = os.urandom(READ_BUFFER + 3)
    (tmp_path / "obj" / "v1" / "content" / "a.fits").write_bytes(data)
    fd = os.open(tmp_path / "obj", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_digest("v1/content/a.fits", "sha256", dir_fd=fd) == (len(data), hashlib.sha256(data).hexdigest())
        with pytest.raises(FileNotFoundError):
            read_digest("v1/content/b.fits", "sha256", dir_fd=fd)
        with pytest.raises(OSError, match="directory"):
            read_digest("v1", dir_fd=fd)
    finally:
        os.close(fd)
