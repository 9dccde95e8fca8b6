"""Computing sha256 and sha512 of a bitstream in one read pass (streaming, memory independent of size)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from oais.domain.fixity import Fixity

BUFFER = 1 << 20


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
    return Fixity(size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                  sha512=hashlib.sha512(data).hexdigest())
