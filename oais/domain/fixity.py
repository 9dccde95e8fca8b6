"""Fixity values: the digests the archive records for every file it holds."""

from __future__ import annotations

import re
from dataclasses import dataclass

ALGORITHMS = ("sha256", "sha512")
"""Digests the archive computes itself for every file (sha512 is the OCFL inventory digest)."""

_HEX = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}


def is_hex_digest(algorithm: str, value: str) -> bool:
    """True when ``value`` is a lowercase hex digest of the right length for ``algorithm``."""
    n = _HEX.get(algorithm)
    return n is not None and len(value) == n and re.fullmatch(r"[0-9a-f]+", value) is not None


@dataclass(frozen=True, slots=True)
class Fixity:
    """Size and digests of one bitstream."""

    size: int
    sha256: str
    sha512: str

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"size must be >= 0, got {self.size}")
        for alg in ALGORITHMS:
            if not is_hex_digest(alg, getattr(self, alg)):
                raise ValueError(f"{alg} is not a lowercase hex digest: {getattr(self, alg)!r}")

    def mismatch(self, other: "Fixity") -> list[str]:
        """Names of the fields (size, sha256, sha512) on which ``other`` differs from this one."""
        return [f for f in ("size", *ALGORITHMS) if getattr(self, f) != getattr(other, f)]
