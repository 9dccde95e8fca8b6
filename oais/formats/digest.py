"""Computing sha256 and sha512 of a file in one read pass (streaming, memory independent of size)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from oais.domain.fixity import Fixity

BUFFER = 1 << 20


def digest_file(path: Path) -> Fixity:
    """Size, sha256 and sha512 of ``path``, reading it once through a reused 1 MiB buffer."""
    h256 = hashlib.sha256()
    h512 = hashlib.sha512()
    size = 0
    buf = bytearray(BUFFER)
    view = memoryview(buf)
    with open(path, "rb") as f:
        while n := f.readinto(buf):
            chunk = view[:n]
            h256.update(chunk)
            h512.update(chunk)
            size += n
    return Fixity(size=size, sha256=h256.hexdigest(), sha512=h512.hexdigest())


def digest_bytes(data: bytes) -> Fixity:
    return Fixity(size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                  sha512=hashlib.sha512(data).hexdigest())
