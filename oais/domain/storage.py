"""What storage is asked to write: plain values shared by the AIP builder and the storage layer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Entry:
    """One file to write under an object root: from bytes in memory or from a staged file.

    ``sha512`` (and ``sha256`` when known) are the digests the written copy must have. The copy is
    re-read and checked against ``sha256`` when given (twice as fast), else against ``sha512``.
    """

    path: str
    sha512: str
    data: bytes | None = None
    source: Path | None = None
    sha256: str | None = None
    size: int | None = None  # bytes of ``source`` when known (saves a stat per file)

    def __post_init__(self) -> None:
        if (self.data is None) == (self.source is None):
            raise ValueError(f"{self.path}: give exactly one of data or source")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A staged file a location may copy ahead of time (``StorageLocation.prepare``): its path, and the
    sha256 and size its copy must have."""

    path: Path
    sha256: str
    size: int
