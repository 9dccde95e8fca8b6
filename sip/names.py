"""File names in deliveries: system junk, unsafe names and the safe names that replace them."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import PurePosixPath

JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".Spotlight-V100", ".Trashes", ".fseventsd"})
JUNK_FOLDERS = frozenset({"__MACOSX"})

_UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"\\|?*]')


def is_system_junk(relpath: str) -> bool:
    """Operating-system litter: .DS_Store, Thumbs.db, AppleDouble ``._x`` files, ``__MACOSX/`` folders."""
    parts = PurePosixPath(relpath).parts
    if any(p in JUNK_FOLDERS for p in parts[:-1]):
        return True
    return is_junk_name(parts[-1])


def unsafe_reason(relpath: str) -> str | None:
    """Why a name is unsafe to keep as is (portable across file systems and tools), or None: the
    reason of its first unsafe component."""
    for part in PurePosixPath(relpath).parts:
        why = part_reason(part)
        if why:
            return why
    return None


def part_reason(part: str) -> str | None:
    """Why one component of a name (no ``/``) is unsafe to keep as is, or None."""
    if _UNSAFE_CHARS.search(part):
        return f"control or reserved character in {part!r}"
    if part != part.strip() or part.endswith("."):
        return f"leading/trailing space or trailing dot in {part!r}"
    if part.startswith("-"):
        return f"name starting with '-' in {part!r}"
    if len(part.encode("utf-8")) > 255:
        return "a name longer than 255 bytes"
    return None


def is_junk_name(name: str) -> bool:
    """A file name (last component) that is operating-system litter by itself (see ``is_system_junk``)."""
    return name in JUNK_NAMES or (name.startswith("._") and len(name) > 2)


def safe_name(relpath: str) -> str:
    """A portable name for ``relpath``: NFC, reserved and control characters replaced by '_'."""
    parts = []
    for part in PurePosixPath(unicodedata.normalize("NFC", relpath)).parts:
        p = _UNSAFE_CHARS.sub("_", part).strip().rstrip(".")
        if p.startswith("-"):
            p = "_" + p[1:]
        if len(p.encode("utf-8")) > 255:
            stem = p.encode("utf-8")[:240].decode("utf-8", "ignore")
            p = stem + "_" + hashlib.sha256(part.encode("utf-8")).hexdigest()[:8]
        parts.append(p or "_")
    return "/".join(parts)
