"""BagIt (RFC 8493) validation of a staged delivery with bagit-python, as coded issues.

Runs on the staged copy only (bagit-python is never pointed at a producer's input).
"""

from __future__ import annotations

import logging
from pathlib import Path

from oais.domain.issues import Issue, IssueCode, error, warning

TAG_FILE_PREFIXES = ("bagit.txt", "bag-info.txt", "manifest-", "tagmanifest-", "fetch.txt")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def validate_bag(root: Path) -> tuple[list[Issue], dict[str, str]]:
    """Validate the bag at ``root`` fully (structure, Oxum, completeness, every checksum).

    Returns the issues and the bag-info metadata (empty when the bag cannot be read).
    """
    import bagit

    log = logging.getLogger("bagit")
    handler = _Collect()
    log.addHandler(handler)
    issues: list[Issue] = []
    info: dict[str, str] = {}
    try:
        try:
            bag = bagit.Bag(str(root))
            info = {k: v if isinstance(v, str) else "; ".join(v) for k, v in bag.info.items()}
            bag.validate(processes=1)
        except bagit.BagValidationError as exc:
            details = getattr(exc, "details", None) or []
            for d in details:
                if isinstance(d, bagit.ChecksumMismatch):
                    issues.append(error(IssueCode.BAG_CHECKSUM_MISMATCH,
                                        f"{d.algorithm} expected {d.expected}, found {d.found}", d.path))
                elif isinstance(d, bagit.FileMissing):
                    issues.append(error(IssueCode.BAG_FILE_MISSING, "listed in a manifest but missing", d.path))
                elif isinstance(d, bagit.UnexpectedFile):
                    issues.append(error(IssueCode.BAG_UNEXPECTED_FILE, "present but in no manifest", d.path))
                else:
                    issues.append(error(IssueCode.BAG_INVALID, str(d)))
            if not details:
                msg = str(exc.message if hasattr(exc, "message") else exc)
                code = IssueCode.BAG_OXUM_MISMATCH if "Oxum" in msg else IssueCode.BAG_INVALID
                issues.append(error(code, msg, "bag-info.txt" if code is IssueCode.BAG_OXUM_MISMATCH else None))
        except bagit.BagError as exc:
            issues.append(error(IssueCode.BAG_INVALID, str(exc)))
        except (OSError, UnicodeError, ValueError) as exc:
            issues.append(error(IssueCode.BAG_INVALID, f"cannot read the bag: {exc}"))
    finally:
        log.removeHandler(handler)
    if not issues:  # on failure bagit logs each problem already reported above
        issues.extend(warning(IssueCode.BAG_WARNING, m) for m in handler.messages)
    return issues, info


def is_tag_file(relpath: str) -> bool:
    """True for a bag's top-level tag files (kept under ``submission/`` in the AIP)."""
    return "/" not in relpath and relpath.startswith(TAG_FILE_PREFIXES)
