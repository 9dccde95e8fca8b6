"""Submission agreements (producer-archive agreements, PAIMAS ISO 20652) and delivery manifests as values."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Mending(StrEnum):
    REMOVE_SYSTEM_FILES = "remove-system-files"
    SAFE_NAMES = "safe-names"
    COMPUTE_CHECKSUMS = "compute-checksums"
    FIX_FITS = "fix-fits"


class Requirement(StrEnum):
    REQUIRED = "required"
    IF_AVAILABLE = "if-available"
    OFF = "off"


DEFAULT_AGREEMENT_ID = "default"


@dataclass(frozen=True)
class Agreement:
    """What a producer delivers and what the archive checks and may mend.

    ``accepted_formats`` / ``checksum_algorithms`` are ``None`` when anything is accepted; ``datasets``
    containing ``"*"`` covers every dataset.
    """

    identifier: str
    version: int
    producer: str
    datasets: tuple[str, ...]
    title: str | None = None
    contacts: tuple[tuple[str, str | None], ...] = ()
    accepted_formats: frozenset[str] | None = None
    required_keywords: tuple[str, ...] = ()
    checksum_algorithms: frozenset[str] | None = None
    max_file_bytes: int | None = None
    max_delivery_bytes: int | None = None
    max_files: int | None = None
    virus_check: Requirement = Requirement.IF_AVAILABLE
    fitsverify: Requirement = Requirement.IF_AVAILABLE
    mending: frozenset[Mending] = field(default_factory=frozenset)

    @property
    def ref(self) -> str:
        return f"{self.identifier}/v{self.version}"

    def covers_dataset(self, dataset: str) -> bool:
        return "*" in self.datasets or dataset in self.datasets

    def covers_producer(self, producer: str | None) -> bool:
        return self.producer == "*" or producer is None or producer == self.producer

    def allows(self, action: Mending) -> bool:
        return action in self.mending


@dataclass(frozen=True)
class DeliveryManifest:
    """What a delivery says about itself (``delivery.xml`` or bag-info fields)."""

    sip_id: str | None = None
    sequence: int | None = None
    project: str | None = None
    agreement_id: str | None = None
    agreement_version: int | None = None
    producer: str | None = None
    dataset: str | None = None
    source: str | None = None  # where it was read: "delivery.xml", "bag-info.txt"
