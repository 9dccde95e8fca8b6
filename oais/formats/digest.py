"""Digests of bitstreams, streamed (memory independent of size).

* ``Digester``: sha256 and sha512 of the bytes fed to it, for hashing while copying.
* ``digest_file``: size, sha256 and sha512 of a file in one read pass.
* ``read_digest``: size and one digest of a stored file, read through a 64 KiB buffer reused by each
  thread (it stays in the CPU cache; ``hashlib.file_digest`` allocates and zeroes 256 KiB per file,
  which made re-reading 20,000 small files a third slower). The audit, the replica checks, repairs,
  DIP orders and the storage's re-read of each written copy all read through it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
from collections.abc import Callable

TYPE_CHECKING = False  # not ``typing``'s: the audit's hashing process imports this module and little else
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from oais.domain.fixity import Fixity

BUFFER = 1 << 20
READ_BUFFER = 64 << 10

_local = threading.local()
_HASHES: dict[str, Callable[[], Any]] = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
_O_RDONLY = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)  # a FIFO where a file should be must not block the open


class Digester:
    """sha256 and sha512 of the bytes fed to ``update``, in the order fed (for hashing while copying)."""

    __slots__ = ("_h256", "_h512", "size")

    def __init__(self) -> None:
        self._h256 = hashlib.sha256()
        self._h512 = hashlib.sha512()
        self.size = 0

    def update(self, chunk: bytes | memoryview) -> None:
        self._h256.update(chunk)
        self._h512.update(chunk)
        self.size += len(chunk)

    def fixity(self) -> Fixity:
        from oais.domain.fixity import Fixity

        return Fixity(size=self.size, sha256=self._h256.hexdigest(), sha512=self._h512.hexdigest())


def digest_file(path: Path) -> Fixity:
    """Size, sha256 and sha512 of ``path``, reading it once through a reused 1 MiB buffer."""
    d = Digester()
    buf = bytearray(BUFFER)
    view = memoryview(buf)
    with open(path, "rb") as f:
        while n := f.readinto(buf):
            d.update(view[:n])
    return d.fixity()


def digest_bytes(data: bytes) -> Fixity:
    from oais.domain.fixity import Fixity

    return Fixity(size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                  sha512=hashlib.sha512(data).hexdigest())


def _read_buffer() -> memoryview:
    """This thread's read buffer (allocated once per thread, not once per file)."""
    view: memoryview | None = getattr(_local, "view", None)
    if view is None:
        view = _local.view = memoryview(bytearray(READ_BUFFER))
    return view


def read_digest(path: str | os.PathLike[str], algorithm: str = "sha512",
                consume: Callable[[int], None] | None = None, *, dir_fd: int | None = None) -> tuple[int, str]:
    """``(size, hex digest)`` of the regular file at ``path`` (``algorithm``: sha256 or sha512), read up
    to its end (a short read is the end of a regular file); ``consume(n)`` after each read (a throttle).
    With ``dir_fd`` (an open folder), a relative ``path`` is found from that folder: the kernel then
    walks only the path below it, not the whole path from the root for every file.

    Raises ``OSError`` when it cannot be read, or is not a regular file (a directory, a FIFO, ...).
    """
    fd = open_for_digest(path, dir_fd=dir_fd)
    try:
        return fd_digest(fd, str(path), algorithm, consume)
    finally:
        os.close(fd)


def open_for_digest(path: str | os.PathLike[str], *, dir_fd: int | None = None) -> int:
    """A descriptor of ``path`` opened for :func:`fd_digest` (a FIFO does not block the open)."""
    return os.open(path, _O_RDONLY, dir_fd=dir_fd)


def fd_digest(fd: int, name: str, algorithm: str = "sha512",
              consume: Callable[[int], None] | None = None) -> tuple[int, str]:
    """:func:`read_digest` of the file open at ``fd`` (from its current position; ``name`` is the path
    named in an error)."""
    h = _HASHES[algorithm]()
    view = _read_buffer()
    full = len(view)
    size = 0
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        raise OSError(errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL,
                      "a directory, not a file" if stat.S_ISDIR(mode) else "not a regular file", name)
    while n := os.readv(fd, (view,)):
        h.update(view[:n])
        size += n
        if consume:
            consume(n)
        if n < full:
            break
    return size, h.hexdigest()
