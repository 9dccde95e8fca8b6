"""Receiving a delivery: copy it into staging without ever touching the producer's input.

Accepted sources: a folder (plain or a BagIt bag), or a ``.zip`` / ``.tar`` / ``.tar.gz`` / ``.tgz``
holding either (a tar compressed with gzip, bzip2 or xz is recognised by its first bytes). Only
regular files and folders are staged. Problems raise ``DeliveryRefused`` carrying coded issues;
warnings of an accepted delivery travel in ``StagedDelivery.issues``.

Rules (every refusal names its code; nothing is ever written outside ``dest``):

* SIP-E001 the source cannot be read; SIP-E002 it is neither a folder nor a zip/tar file (a FIFO,
  socket or device given as the delivery is refused by ``stat`` alone, never opened).
* SIP-E004 unsafe names: absolute paths, ``..``, drive letters (``C:``), any backslash (a Windows
  separator: ``..\\evil`` must not become a path elsewhere), NUL, a component over
  ``Limits.max_name_bytes`` or a path over ``Limits.max_path_bytes``, and names that are not valid
  UTF-8 (on disk, or in a tar). Invalid UTF-8 is refused rather than warned about: such a name cannot
  be written into METS/PREMIS/JSON or an OCFL logical path, and renaming it would lose the original.
  All bad names of an archive or folder are collected into one report.
* SIP-E015 symbolic links (folder, zip ``external_attr`` S_IFLNK, tar) and tar hard links; the message
  says where the link points and whether that is outside the delivery. Hard links *inside a folder*
  are ordinary regular files and are copied.
* SIP-E005 FIFOs, sockets, devices (folder: found with ``lstat``, never opened; tar/zip members).
* SIP-E006 expansion limits (``Limits``): member count; total bytes, checked first on the sizes the
  archive declares (before a byte is written) and then on the real bytes while streaming; the
  expansion ratio; the free space left in staging; a zip member that expands past the size its header
  declares (a lying header); overlapping zip members (a known zip-bomb construction); a tar
  metadata header (pax, GNU long name) over ``MAX_TAR_META``. Every decompressed byte of a tar
  stream counts, skipped or not. Nested archives are payload and are never expanded.
* SIP-E007 a corrupt, truncated or encrypted archive, a CRC mismatch, an unsupported zip compression
  method (stored, deflate, bzip2 and lzma are read, by ``sip.receive_zip``, in bounded chunks), a tar without
  its end-of-archive block, a compressed tar whose checksum fails, a sparse tar member.
* SIP-E008 a file that cannot be read (or changes type while being copied).
* SIP-E009 names equal after Unicode NFC normalisation and case folding (storage is always assumed
  possibly case-insensitive: an archive must be portable), a name used for a file and a folder, and a
  member that appears twice.
* SIP-E003 no regular file at all (empty folder, only empty folders, empty zip or tar).
* SIP-W001 legal but unsafe names (control characters ``\\x01-\\x1f``, ``\\x7f``, characters Windows
  reserves, a leading ``-``, trailing dots or spaces: ``sip.names.unsafe_reason``) and SIP-W002
  operating-system junk (``sip.names.is_system_junk``): staged unchanged, reported in
  ``StagedDelivery.issues``, to be mended later. Names in issues are shown with control characters
  and undecodable bytes escaped (``\\x07``), so a report never carries a terminal escape sequence.

Choices:

* The source itself may be a symbolic link: it is followed once, because it is the argument the
  archivist gave us. Links *inside* a delivery are never followed.
* Staged files keep the source's modification time (and permission bits, without set-id bits) and
  are always readable and writable by the owner; staged folders are always ``rwx`` for the owner.
  Zip and tar members get their recorded modification time; their permissions are not applied.
* On refusal ``dest`` is left in place holding only what was safely staged so far: complete,
  verified regular files and folders, never a link or a partial file (the member being written when
  the refusal happened is deleted). Folders and zips are checked whole (names, types, collisions,
  declared sizes, counts) before the first byte is written, so a refusal for any of those leaves
  ``dest`` empty; a problem found only while copying (a corrupt member, an unreadable file) or in a
  tar, which is a stream, leaves the complete members before it. The caller moves ``dest`` to
  quarantine. A failure to write into staging itself is STO-E001 (or SIP-E004 for a name too long).
* The default ``Limits`` suit deliveries of astronomical data: up to 1 TiB and 100 000 members,
  a ratio of 200 (FITS compresses 2-10 times; only zeros reach 1000) enforced above 64 MiB, and
  256 MiB kept free on the staging disk. ``IngestContext.limits`` takes any other ``Limits``.

Modules (one idea each; this one is the entry point and imports the others, which never import it):

* ``sip.receive_common``: ``DeliveryRefused``, ``Limits``, ``StagedDelivery``, safe member names and
  warnings, the byte budget, writing into staging.
* ``sip.receive_folder``: copying a folder. ``sip.receive_zip``: expanding a zip.
  ``sip.receive_tar``: expanding a tar.

Every name other modules import from ``sip.receive`` is still importable from here.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from oais.domain.issues import IssueCode, error
from sip.bag import looks_like_bag
from sip.receive_common import (
    _O_CLOEXEC,
    _O_NONBLOCK,
    BUFFER,
    DeliveryRefused,
    Limits,
    StagedDelivery,
    _Budget,
    _safe_member_path,
    _special_kind,
    name_warnings,
    safe_member_path,
    shown,
)
from sip.receive_folder import _copy_tree
from sip.receive_tar import MAX_TAR_META, _expand_tar
from sip.receive_zip import _expand_zip

__all__ = [
    "ARCHIVE_SUFFIXES",
    "BUFFER",
    "MAX_TAR_META",
    "DeliveryRefused",
    "Limits",
    "StagedDelivery",
    "_safe_member_path",
    "delivery_kind",
    "name_warnings",
    "safe_member_path",
    "shown",
    "stage_delivery",
]

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


# -- the entry point -------------------------------------------------------------------------------
def delivery_kind(source: Path) -> str:
    if source.is_dir():
        return "directory"
    name = source.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz")):
        return "tar"
    raise DeliveryRefused([error(IssueCode.UNSUPPORTED_SOURCE,
                                 "not a folder, .zip, .tar, .tar.gz or .tgz", shown(str(source)))])


def stage_delivery(source: Path, dest: Path, limits: Limits = Limits()) -> StagedDelivery:
    """Copy or expand ``source`` into the new folder ``dest`` (which must not exist).

    A symbolic link given as ``source`` is followed (it is the archivist's own argument); links inside
    the delivery never are. Raises ``DeliveryRefused``; on refusal ``dest`` holds only what was safely
    staged so far (see the module documentation).
    """
    source = Path(source)
    where = shown(str(source))
    try:
        st = os.stat(source)  # follows a top-level link, opens nothing
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise DeliveryRefused([error(IssueCode.SOURCE_NOT_FOUND, f"cannot read: {reason}", where)]) from None
    real = Path(os.path.realpath(source))
    if stat.S_ISDIR(st.st_mode):
        kind = "directory"
    elif stat.S_ISREG(st.st_mode):
        try:
            kind = delivery_kind(source)
        except DeliveryRefused:
            kind = delivery_kind(real)  # a link named otherwise, pointing at a .zip/.tar
    else:
        raise DeliveryRefused([error(IssueCode.UNSUPPORTED_SOURCE,
                                     f"not a regular file or folder: a {_special_kind(st.st_mode)}", where)])
    dest.mkdir(parents=True)
    try:
        free = os.statvfs(dest)
        free_bytes: int | None = free.f_bavail * free.f_frsize
    except (OSError, AttributeError):
        free_bytes = None
    if kind == "directory":
        warnings, digests = _copy_tree(real, dest, limits, free_bytes, where)
    else:
        try:
            fd = os.open(real, os.O_RDONLY | _O_NONBLOCK | _O_CLOEXEC)
        except OSError as exc:
            raise DeliveryRefused([error(IssueCode.SOURCE_NOT_FOUND, f"cannot read: {exc.strerror}",
                                         where)]) from None
        with os.fdopen(fd, "rb") as fh:
            fst = os.fstat(fh.fileno())
            if not stat.S_ISREG(fst.st_mode):
                raise DeliveryRefused([error(IssueCode.UNSUPPORTED_SOURCE, "not a regular file", where)])
            budget = _Budget(*limits.byte_limit(fst.st_size, free_bytes), where)
            expand = _expand_zip if kind == "zip" else _expand_tar
            warnings = expand(fh, dest, limits, budget, where)
            digests = budget.digests
    root = _single_top_folder(dest)
    return StagedDelivery(kind=kind, root=root, is_bag=looks_like_bag(root), issues=tuple(warnings),
                          digests=digests)


def _single_top_folder(dest: Path) -> Path:
    """An archive of one folder (``delivery/…``) is read as that folder."""
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return dest
