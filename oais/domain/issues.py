"""Coded validation issues: a validation report is a list of these.

Every rule has a stable code (``IssueCode``), a severity, a message naming the file, and a reference
to the rule or standard it comes from. Codes are never reused for another meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"  # the delivery is refused
    WARNING = "warning"  # accepted, reported
    INFO = "info"


class IssueCode(StrEnum):
    """Stable codes. ``E`` refuses the delivery, ``W`` is reported, ``I`` records a mending action."""

    # the delivery as a whole
    SOURCE_NOT_FOUND = "SIP-E001"
    UNSUPPORTED_SOURCE = "SIP-E002"
    EMPTY_DELIVERY = "SIP-E003"
    UNSAFE_PATH = "SIP-E004"  # absolute path or '..' in an archive member or file name
    LINK_OR_SPECIAL_FILE = "SIP-E005"  # device, FIFO, socket
    EXPANSION_LIMIT = "SIP-E006"  # archive expands past the size, count or ratio limit
    ARCHIVE_UNREADABLE = "SIP-E007"
    UNREADABLE_FILE = "SIP-E008"
    NAME_COLLISION = "SIP-E009"  # names equal after Unicode normalisation or case folding
    LINK = "SIP-E015"  # symbolic or hard link (the message says whether it points outside)
    MANIFEST_ESCAPE = "SIP-E016"  # a manifest or fetch entry that leaves the payload / the bag
    SIZE_LIMIT = "SIP-E017"  # the agreement's size limits
    DUPLICATE_SIP = "SIP-E018"  # a SIP id already received
    UNSAFE_NAME = "SIP-W001"  # a name that is legal but unsafe (control characters, leading '-', ...)
    SYSTEM_JUNK = "SIP-W002"  # .DS_Store, Thumbs.db, __MACOSX/
    # BagIt (RFC 8493)
    BAG_INVALID = "SIP-E010"
    BAG_CHECKSUM_MISMATCH = "SIP-E011"
    BAG_FILE_MISSING = "SIP-E012"
    BAG_UNEXPECTED_FILE = "SIP-E013"
    BAG_OXUM_MISMATCH = "SIP-E014"
    BAG_DECLARATION = "SIP-E020"  # bagit.txt missing, BOM, bad version or encoding line
    BAG_INFO = "SIP-E021"  # bag-info.txt malformed (bad line, whitespace, missing encoding)
    BAG_MANIFEST_SYNTAX = "SIP-E022"  # a manifest line that cannot be read
    BAG_DUPLICATE_ENTRY = "SIP-E023"  # a path listed twice in one manifest (different hashes; any in 1.0)
    BAG_ALGORITHM = "SIP-E024"  # a checksum algorithm the agreement does not accept
    BAG_FETCH = "SIP-W015"  # fetch.txt lists files that were not delivered (nothing is fetched)
    BAG_NO_MANIFEST = "SIP-E026"  # no payload manifest
    BAG_WARNING = "SIP-W010"
    BAG_WEAK_ALGORITHM = "SIP-W011"  # md5 or sha1 only
    BAG_DUPLICATE_SAME_HASH = "SIP-W012"  # a path listed twice with the same hash (BagIt 0.97)
    BAG_CASE_OR_NORMALIZATION = "SIP-W013"  # names differing only by case or Unicode normalisation
    BAG_RELATIVE_PATH = "SIP-W014"  # manifest paths with './' or other non-canonical forms
    # FITS
    FITS_UNREADABLE = "FITS-E001"
    FITS_TRUNCATED = "FITS-E002"
    FITS_MISSING_END = "FITS-E003"
    FITS_CHECKSUM = "FITS-E004"  # CHECKSUM keyword does not match the HDU
    FITS_DATASUM = "FITS-E005"  # DATASUM keyword does not match the data
    FITS_TRAILING_BYTES = "FITS-E006"  # bytes after the last HDU
    FITS_REQUIRED_KEYWORD = "FITS-E007"  # a keyword the agreement requires is missing
    FITS_VERIFY = "FITS-W001"  # astropy verify: non-standard but fixable cards
    FITS_FITSVERIFY = "FITS-W002"  # fitsverify warnings
    FITS_FITSVERIFY_ERROR = "FITS-E008"  # fitsverify errors
    # formats
    FORMAT_NOT_ACCEPTED = "FMT-E001"
    FORMAT_UNIDENTIFIED = "FMT-W001"
    # viruses
    VIRUS_FOUND = "VIR-E001"
    VIRUS_SCAN_FAILED = "VIR-E002"
    VIRUS_SCANNER_MISSING = "VIR-W001"
    # submission agreements
    AGREEMENT_UNKNOWN = "AGR-E001"
    AGREEMENT_SCOPE = "AGR-E002"  # the agreement does not cover this producer or dataset
    AGREEMENT_INVALID = "AGR-E003"  # the agreement document is not valid against its XSD
    DELIVERY_MANIFEST_INVALID = "AGR-E004"  # the delivery manifest (delivery.xml) is not valid
    # mending (recorded actions, never errors)
    MENDED_JUNK_REMOVED = "MND-I001"
    MENDED_RENAMED = "MND-I002"
    MENDED_CHECKSUMS_COMPUTED = "MND-I003"
    MENDED_FITS_NORMALIZED = "MND-I004"
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
    IssueCode.LINK: "oais-archive safety: no links in a delivery",
    IssueCode.MANIFEST_ESCAPE: "RFC 8493 §2.1.3, §7.2 (paths stay inside the bag)",
    IssueCode.SIZE_LIMIT: "submission agreement: size limits",
    IssueCode.DUPLICATE_SIP: "PAIS ISO 20104: a SIP identifier is unique",
    IssueCode.UNSAFE_NAME: "oais-archive: portable file names",
    IssueCode.SYSTEM_JUNK: "oais-archive: operating-system files are not data",
    IssueCode.BAG_DECLARATION: "RFC 8493 §2.1.1 (bagit.txt)",
    IssueCode.BAG_INFO: "RFC 8493 §2.2.2 (bag-info.txt)",
    IssueCode.BAG_MANIFEST_SYNTAX: "RFC 8493 §2.1.3 (manifest lines)",
    IssueCode.BAG_DUPLICATE_ENTRY: "RFC 8493 §2.1.3 (each payload file listed once)",
    IssueCode.BAG_ALGORITHM: "submission agreement: checksum algorithms",
    IssueCode.BAG_FETCH: "RFC 8493 §2.2.3 (fetch.txt; the archive fetches nothing)",
    IssueCode.BAG_NO_MANIFEST: "RFC 8493 §2.1.3 (at least one payload manifest)",
    IssueCode.BAG_WEAK_ALGORITHM: "RFC 8493 §6.2 (md5 and sha1 are deprecated)",
    IssueCode.BAG_DUPLICATE_SAME_HASH: "BagIt 0.97 (tolerated duplicate entry)",
    IssueCode.BAG_CASE_OR_NORMALIZATION: "RFC 8493 §6.1 (case and Unicode normalisation)",
    IssueCode.BAG_RELATIVE_PATH: "RFC 8493 §2.1.3 (paths relative to the bag, no './')",
    IssueCode.FITS_UNREADABLE: "FITS 4.0 §3 (file organisation)",
    IssueCode.FITS_TRUNCATED: "FITS 4.0 §3.3 (data unit length)",
    IssueCode.FITS_MISSING_END: "FITS 4.0 §4.4.1 (END keyword)",
    IssueCode.FITS_CHECKSUM: "FITS checksum convention (CHECKSUM)",
    IssueCode.FITS_DATASUM: "FITS checksum convention (DATASUM)",
    IssueCode.FITS_TRAILING_BYTES: "FITS 4.0 §3.1 (nothing after the last HDU)",
    IssueCode.FITS_REQUIRED_KEYWORD: "submission agreement: required FITS keywords",
    IssueCode.FITS_VERIFY: "FITS 4.0 §4 (keyword records), astropy verify",
    IssueCode.FITS_FITSVERIFY: "HEASARC fitsverify",
    IssueCode.FITS_FITSVERIFY_ERROR: "HEASARC fitsverify",
    IssueCode.FORMAT_NOT_ACCEPTED: "submission agreement: accepted formats (PRONOM)",
    IssueCode.FORMAT_UNIDENTIFIED: "PRONOM format identification",
    IssueCode.VIRUS_FOUND: "oais-archive: virus check (ClamAV)",
    IssueCode.VIRUS_SCAN_FAILED: "oais-archive: virus check (ClamAV)",
    IssueCode.VIRUS_SCANNER_MISSING: "oais-archive: virus check (ClamAV)",
    IssueCode.AGREEMENT_UNKNOWN: "PAIMAS ISO 20652: a delivery follows an agreement",
    IssueCode.AGREEMENT_SCOPE: "PAIMAS ISO 20652: agreement scope",
    IssueCode.AGREEMENT_INVALID: "schemas/submission-agreement.xsd",
    IssueCode.DELIVERY_MANIFEST_INVALID: "schemas/delivery-manifest.xsd",
    IssueCode.MENDED_JUNK_REMOVED: "submission agreement: mending 'remove-system-files'",
    IssueCode.MENDED_RENAMED: "submission agreement: mending 'safe-names'",
    IssueCode.MENDED_CHECKSUMS_COMPUTED: "submission agreement: mending 'compute-checksums'",
    IssueCode.MENDED_FITS_NORMALIZED: "submission agreement: mending 'fix-fits'",
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
        # written out rather than dataclasses.asdict, which deep-copies every field: a delivery of
        # 20,000 unidentified files reports 20,000 warnings, and asdict took 0.3 s of its recording
        return {"code": str(self.code), "severity": str(self.severity), "message": self.message,
                "path": self.path, "reference": self.reference}

    def __str__(self) -> str:
        where = f" [{self.path}]" if self.path else ""
        return f"{self.code} {self.severity}{where}: {self.message}"


def severity_of(code: IssueCode) -> Severity:
    """The severity a code carries by its letter: E error, W warning, I info."""
    letter = code.value.split("-", 1)[1][0]
    return {"E": Severity.ERROR, "W": Severity.WARNING, "I": Severity.INFO}[letter]


def issue(code: IssueCode, message: str, path: str | None = None) -> Issue:
    """An issue with the severity its code carries."""
    return Issue(code, severity_of(code), message, path)


def info(code: IssueCode, message: str, path: str | None = None) -> Issue:
    return Issue(code, Severity.INFO, message, path)


def error(code: IssueCode, message: str, path: str | None = None) -> Issue:
    return Issue(code, Severity.ERROR, message, path)


def warning(code: IssueCode, message: str, path: str | None = None) -> Issue:
    return Issue(code, Severity.WARNING, message, path)
