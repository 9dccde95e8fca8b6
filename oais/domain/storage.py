"""What storage is asked to write: plain values shared by the AIP builder and the storage layer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Entry:
    """One file to write under an object root: from bytes in memory or from a staged file.

    ``sha512`` is the digest the written copy must have once re-read.
    """

    path: str
    sha512: str
    data: bytes | None = None
    source: Path | None = None

    def __post_init__(self) -> None:
        if (self.data is None) == (self.source is None):
            raise ValueError(f"{self.path}: give exactly one of data or source")
