"""Coded validation issues: a validation report is a list of these.

Every rule has a stable code (``IssueCode``), a severity, a message naming the file, and a reference
to the rule or standard it comes from. Codes are never reused for another meaning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"  # the delivery is refused
    WARNING = "warning"  # accepted, reported
    INFO = "info"


class IssueCode(StrEnum):
    # the delivery as a whole
    SOURCE_NOT_FOUND = "SIP-E001"
    UNSUPPORTED_SOURCE = "SIP-E002"
    EMPTY_DELIVERY = "SIP-E003"
    UNSAFE_PATH = "SIP-E004"
    LINK_OR_SPECIAL_FILE = "SIP-E005"
    EXPANSION_LIMIT = "SIP-E006"
    ARCHIVE_UNREADABLE = "SIP-E007"
    UNREADABLE_FILE = "SIP-E008"
    NAME_COLLISION = "SIP-E009"
    # BagIt (RFC 8493)
    BAG_INVALID = "SIP-E010"
    BAG_CHECKSUM_MISMATCH = "SIP-E011"
    BAG_FILE_MISSING = "SIP-E012"
    BAG_UNEXPECTED_FILE = "SIP-E013"
    BAG_OXUM_MISMATCH = "SIP-E014"
    BAG_WARNING = "SIP-W010"
    # building and storing the AIP
    PACKAGE_METADATA_INVALID = "AIP-E001"
    STORAGE_FAILURE = "STO-E001"
    CATALOG_FAILURE = "CAT-E001"
    INTERNAL_ERROR = "OAIS-E999"


REFERENCES: dict[IssueCode, str] = {
    IssueCode.SOURCE_NOT_FOUND: "oais-archive: a delivery is a readable file or folder",
    IssueCode.UNSUPPORTED_SOURCE: "oais-archive: a folder, a BagIt bag, or a .zip/.tar/.tar.gz/.tgz of either",
    IssueCode.EMPTY_DELIVERY: "oais-archive: a delivery holds at least one file",
    IssueCode.UNSAFE_PATH: "oais-archive safety: no absolute paths or '..' in member names",
    IssueCode.LINK_OR_SPECIAL_FILE: "oais-archive safety: regular files and folders only",
    IssueCode.EXPANSION_LIMIT: "oais-archive safety: archive expansion limits",
    IssueCode.ARCHIVE_UNREADABLE: "oais-archive: archives must be readable zip or tar files",
    IssueCode.UNREADABLE_FILE: "oais-archive: every delivered file must be readable",
    IssueCode.NAME_COLLISION: "OCFL 1.1 §3.5.3.1 logical paths; case-insensitive storage",
    IssueCode.BAG_INVALID: "RFC 8493 (BagIt)",
    IssueCode.BAG_CHECKSUM_MISMATCH: "RFC 8493 §3 (payload manifest fixity)",
    IssueCode.BAG_FILE_MISSING: "RFC 8493 §3 (every manifest entry present)",
    IssueCode.BAG_UNEXPECTED_FILE: "RFC 8493 §3 (every payload file in every manifest)",
    IssueCode.BAG_OXUM_MISMATCH: "RFC 8493 §2.2.2 (Payload-Oxum)",
    IssueCode.BAG_WARNING: "RFC 8493 (BagIt)",
    IssueCode.PACKAGE_METADATA_INVALID: "METS 1.12 / PREMIS 3.0 XML Schemas",
    IssueCode.STORAGE_FAILURE: "oais-archive: every copy written, re-read and verified",
    IssueCode.CATALOG_FAILURE: "oais-archive: catalog updated in one transaction",
    IssueCode.INTERNAL_ERROR: "oais-archive: an unexpected error (a defect to report)",
}


@dataclass(frozen=True, slots=True)
class Issue:
    code: IssueCode
    severity: Severity
    message: str
    path: str | None = None

    @property
    def reference(self) -> str:
        return REFERENCES.get(self.code, "")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["code"] = str(self.code)
        d["severity"] = str(self.severity)
        d["reference"] = self.reference
        return d

    def __str__(self) -> str:
        where = f" [{self.path}]" if self.path else ""
        return f"{self.code} {self.severity}{where}: {self.message}"


def error(code: IssueCode, message: str, path: str | None = None) -> Issue:
    return Issue(code, Severity.ERROR, message, path)


def warning(code: IssueCode, message: str, path: str | None = None) -> Issue:
    return Issue(code, Severity.WARNING, message, path)
