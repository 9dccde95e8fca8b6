"""BagIt (RFC 8493) validation of a staged delivery, as coded issues.

Delegates to our own read-only validator, ``sip.bagit_check`` (bagit-python alone gets 9 of the 60
conformance-suite bags wrong, and it moves files and changes the working folder).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from oais.domain.issues import Issue
from sip.bagit_check import validate_bag as check_bag

TAG_FILE_PREFIXES = ("bagit.txt", "bag-info.txt", "manifest-", "tagmanifest-", "fetch.txt")
_MANIFEST = re.compile(r"(tag)?manifest-[^/]+\.txt")


def validate_bag(root: Path) -> tuple[list[Issue], dict[str, str]]:
    """Validate the bag at ``root`` fully (structure, Oxum, completeness, every checksum).

    Returns the issues (errors first) and the bag-info metadata, repeated labels joined with "; "
    (empty when the bag cannot be read).
    """
    report = check_bag(root)
    return report.issues, {label: "; ".join(values) for label, values in report.info.items()}


def is_tag_file(relpath: str) -> bool:
    """True for a bag's top-level tag files (kept under ``submission/`` in the AIP)."""
    return "/" not in relpath and relpath.startswith(TAG_FILE_PREFIXES)


def looks_like_bag(root: Path) -> bool:
    """True when ``root`` is meant as a bag: ``bagit.txt``, or ``data/`` beside a (tag) manifest.

    A bag that lost its ``bagit.txt`` is still a bag (refused with SIP-E020), not a plain folder.
    Nothing is followed: links count as absent.
    """
    root_s = str(root)
    if os.path.isfile(os.path.join(root_s, "bagit.txt")) or os.path.islink(os.path.join(root_s, "bagit.txt")):
        return True
    data = os.path.join(root_s, "data")
    if not os.path.isdir(data) or os.path.islink(data):
        return False
    try:
        with os.scandir(root_s) as it:
            return any(_MANIFEST.fullmatch(e.name) and e.is_file(follow_symlinks=False) for e in it)
    except OSError:
        return False
