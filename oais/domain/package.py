"""What an AIP holds, described without reference to any storage or database."""

from __future__ import annotations

import posixpath
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pathlib import Path

from oais.domain.fixity import Fixity
from oais.domain.issues import Issue
from oais.domain.premis import Agent, Event


class FileRole(StrEnum):
    """Why a file is in an AIP."""

    ORIGINAL = "original"  # a producer's file, bit for bit (representations/original/data/...)
    NORMALIZED = "normalized"  # a derived/normalized copy (representations/<name>/data/...)
    METADATA = "metadata"  # METS.xml, PREMIS, descriptive metadata written by the archive
    SUBMISSION = "submission"  # the delivery's own manifests and tag files (submission/...)


class Disposition(StrEnum):
    """How a delivery ended."""

    ACCEPTED = "accepted"
    REFUSED = "refused"
    QUARANTINED = "quarantined"


class ReplicaState(StrEnum):
    """State of one AIP copy in one storage location."""

    OK = "ok"
    MISSING = "missing"
    CORRUPT = "corrupt"
    UNKNOWN = "unknown"


def check_logical_path(path: str) -> str:
    """Return ``path`` if it is a safe, normalised, relative POSIX path; raise ``ValueError`` otherwise.

    Safe means: not empty, no leading ``/``, no ``.``/``..``/empty segments, no backslash, no NUL.
    These are the OCFL 1.1 rules for logical and content paths (E099, E100).
    """
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        raise ValueError(f"unsafe path: {path!r}")
    for seg in path.split("/"):
        if seg in ("", ".", ".."):
            raise ValueError(f"unsafe path segment in {path!r}")
    if posixpath.normpath(path) != path:
        raise ValueError(f"path is not normalised: {path!r}")
    return path


@dataclass(frozen=True, slots=True)
class ContentFile:
    """One file of an AIP version.

    ``path`` is the file's path inside the AIP (the OCFL logical path), e.g.
    ``representations/original/data/eit/efz20040301.fits``. ``original_name`` is the path as the
    producer delivered it (relative to the delivery's payload), kept in PREMIS.
    """

    path: str
    fixity: Fixity
    role: FileRole
    original_name: str | None = None
    puid: str | None = None  # PRONOM identifier, e.g. x-fmt/383 for FITS
    mime: str | None = None
    format_name: str | None = None

    def __post_init__(self) -> None:
        check_logical_path(self.path)
        if unicodedata.normalize("NFC", self.path) != self.path:
            raise ValueError(f"path is not NFC-normalised: {self.path!r}")

    @property
    def size(self) -> int:
        return self.fixity.size


@dataclass(frozen=True, slots=True)
class AipVersionDescription:
    """Everything needed to write one version of an AIP; identical input gives identical METS/PREMIS."""

    aip_id: str
    version: int
    dataset: str
    producer: str
    created: datetime
    files: tuple[ContentFile, ...]
    message: str = ""
    label: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ValueError("version numbers start at 1")
        if self.created.tzinfo is None:
            raise ValueError("created must be timezone-aware")
        seen: set[str] = set()
        for f in self.files:
            key = f.path.casefold()
            if key in seen:
                raise ValueError(f"duplicate path (case-insensitive) in AIP: {f.path}")
            seen.add(key)


@dataclass(frozen=True)
class DescribedDelivery:
    """A staged delivery after validation and description, ready to become an AIP.

    ``files`` are the AIP's content files taken from the delivery (originals and submission tag
    files), ``sources`` maps each one's logical path to its staged copy, ``documents`` are metadata
    files the archive writes (logical path -> bytes, e.g. FITS header extracts), and ``events`` /
    ``agents`` record what was done to the delivery so far.
    """

    kind: str
    is_bag: bool
    files: tuple[ContentFile, ...]
    sources: dict[str, Path]  # logical path -> staged copy
    documents: dict[str, bytes]
    events: tuple[Event, ...]
    agents: tuple[Agent, ...]
    issues: tuple[Issue, ...]
    bag_info: dict[str, str] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)
