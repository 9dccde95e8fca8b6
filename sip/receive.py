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
  method (stored, deflate, bzip2 and lzma are read, by this module, in bounded chunks), a tar without
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
"""

from __future__ import annotations

import bz2
import errno
import gzip
import lzma
import math
import os
import posixpath
import re
import stat
import struct
import tarfile
import time
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from oais.domain.issues import Issue, IssueCode, error, issue
from sip.bag import looks_like_bag
from sip.names import is_system_junk, unsafe_reason

BUFFER = 1 << 20
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_SET_ID_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX


class DeliveryRefused(Exception):
    """The delivery cannot be accepted; ``issues`` says exactly why."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))


@dataclass(frozen=True)
class Limits:
    """Bounds on a delivery (a zip bomb stops before it fills the disk). All sizes in bytes.

    The byte limit in force is the smallest of ``max_bytes``; for an archive, ``max_ratio`` times its
    size (but never less than ``ratio_floor``, so a small, very compressible delivery is not refused);
    and the free space of the staging disk less ``keep_free``.
    """

    max_bytes: int = 1 << 40  # 1 TiB staged
    max_files: int = 100_000  # members (files, folders, links...) in one delivery
    max_ratio: float = 200.0  # expanded size / archive size (math.inf: no ratio limit)
    ratio_floor: int = 64 << 20  # expansions below 64 MiB are never refused for their ratio
    keep_free: int = 256 << 20  # leave this much free on the staging disk
    max_name_bytes: int = 255  # one path component, UTF-8 (the usual file-system limit)
    max_path_bytes: int = 1024  # a whole relative path, UTF-8

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_files", "max_name_bytes", "max_path_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name}: must be a positive integer, got {value!r}")
        for name in ("ratio_floor", "keep_free"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Limits.{name}: must be an integer >= 0, got {value!r}")
        if isinstance(self.max_ratio, bool) or not isinstance(self.max_ratio, (int, float)) \
                or not self.max_ratio >= 1:
            raise ValueError(f"Limits.max_ratio: must be a number >= 1, got {self.max_ratio!r}")

    def byte_limit(self, archive_size: int | None = None, free: int | None = None) -> tuple[int, str]:
        """The number of bytes a delivery may stage, and the name of the limit that sets it."""
        candidates = [(self.max_bytes, f"max_bytes={self.max_bytes}")]
        if archive_size is not None and math.isfinite(self.max_ratio):
            by_ratio = max(int(archive_size * self.max_ratio), self.ratio_floor)
            candidates.append((by_ratio, f"max_ratio={self.max_ratio:g} x the archive's {archive_size} "
                                         f"bytes, at least ratio_floor={self.ratio_floor}"))
        if free is not None:
            candidates.append((max(free - self.keep_free, 0),
                               f"free space in staging ({free} bytes) less keep_free={self.keep_free}"))
        return min(candidates, key=lambda c: c[0])


@dataclass(frozen=True)
class StagedDelivery:
    """A delivery copied into staging. ``root`` is the folder holding the delivery's own tree."""

    kind: str  # "directory" or "zip" or "tar"
    root: Path
    is_bag: bool
    issues: tuple[Issue, ...] = ()  # warnings found while receiving (SIP-W001, SIP-W002)


# -- names ---------------------------------------------------------------------------------------
def shown(name: str) -> str:
    """``name`` safe to print and store: undecodable bytes and control characters as ``\\xNN``."""
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = name.encode("utf-8", "backslashreplace")
    text = raw.decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def safe_member_path(name: str, limits: Limits = Limits()) -> PurePosixPath | Issue:
    """The relative path a member name stands for, or a SIP-E004 issue saying why it is unsafe.

    ``""``, ``"."`` and ``"./"`` give the empty path (the delivery's root). Empty and ``.``
    components are dropped, so ``a//./b`` is ``a/b`` (and collides with a member ``a/b``).
    """
    where = shown(name)
    if not _is_utf8(name):
        return error(IssueCode.UNSAFE_PATH, "name is not valid UTF-8", where)
    if "\x00" in name:
        return error(IssueCode.UNSAFE_PATH, "NUL byte in name", where)
    if "\\" in name:
        return error(IssueCode.UNSAFE_PATH, "backslash in name (a Windows path separator)", where)
    if name.startswith("/"):
        return error(IssueCode.UNSAFE_PATH, "absolute path", where)
    if _DRIVE.match(name):
        return error(IssueCode.UNSAFE_PATH, "drive letter in name", where)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return error(IssueCode.UNSAFE_PATH, "'..' in name", where)
    for part in parts:
        if len(part.encode("utf-8")) > limits.max_name_bytes:
            return error(IssueCode.UNSAFE_PATH, f"a name longer than {limits.max_name_bytes} bytes", where)
    if len("/".join(parts).encode("utf-8")) > limits.max_path_bytes:
        return error(IssueCode.UNSAFE_PATH, f"path longer than {limits.max_path_bytes} bytes", where)
    return PurePosixPath(*parts)


_safe_member_path = safe_member_path  # the earlier private name


def name_warnings(rel: PurePosixPath) -> list[Issue]:
    """SIP-W002 for operating-system junk, else SIP-W001 for a legal but unsafe name (the rules of
    ``sip.names``, shared with describing and mending): kept as delivered, reported, mendable later."""
    path = rel.as_posix()
    if is_system_junk(path):
        return [issue(IssueCode.SYSTEM_JUNK, "operating-system file, not data", shown(path))]
    why = unsafe_reason(path)
    if why:
        return [issue(IssueCode.UNSAFE_NAME, shown(why) + " (shown escaped)" * bool(_CONTROL.search(path)),
                      shown(path))]
    return []


def _form(path: str) -> str:
    """A path for a collision message: shown, and its normal form said when that is the difference."""
    if unicodedata.is_normalized("NFC", path) and not unicodedata.is_normalized("NFD", path):
        return f"{shown(path)!r} (NFC)"
    if unicodedata.is_normalized("NFD", path) and not unicodedata.is_normalized("NFC", path):
        return f"{shown(path)!r} (NFD)"
    return repr(shown(path))


def _collision_key(path: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", path).casefold())


class _Names:
    """Every path of a delivery (and its parent folders), keyed as case-insensitive storage sees it."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, bool]] = {}
        self.reported: set[tuple[str, str]] = set()

    def add(self, rel: PurePosixPath, is_dir: bool) -> Issue | None:
        parts = rel.parts
        for i in range(1, len(parts) + 1):
            path = "/".join(parts[:i])
            folder = is_dir or i < len(parts)
            key = _collision_key(path)
            previous = self.seen.get(key)
            if previous is None:
                self.seen[key] = (path, folder)
                continue
            prev_path, prev_folder = previous
            if prev_path == path and prev_folder and folder:
                continue  # the same folder again
            if (prev_path, path) in self.reported:
                return None
            self.reported.add((prev_path, path))
            if prev_path != path:
                message = (f"{_form(path)} and {_form(prev_path)} are the same name after Unicode "
                           "normalisation or case folding")
            elif prev_folder != folder:
                message = "the same name is used for a file and a folder"
            else:
                message = "member appears twice"
            return error(IssueCode.NAME_COLLISION, message, shown(path))
        return None


def _link_issue(rel: PurePosixPath, target: str | None, hard: bool = False) -> Issue:
    what = "hard link" if hard else "symbolic link"
    if target is None:
        return error(IssueCode.LINK, f"{what} (target unreadable)", shown(rel.as_posix()))
    base = "" if hard else posixpath.dirname(rel.as_posix())
    resolved = posixpath.normpath(posixpath.join(base, target))
    outside = target.startswith(("/", "\\")) or bool(_DRIVE.match(target)) or resolved == ".." \
        or resolved.startswith("../")
    where = "points outside the delivery" if outside else f"points inside the delivery, to {shown(resolved)!r}"
    return error(IssueCode.LINK, f"{what} to {shown(target)!r} ({where}); links are never followed",
                 shown(rel.as_posix()))


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return f"special file (mode {stat.S_IFMT(mode):o})"


# -- writing into staging --------------------------------------------------------------------------
class _WriteFailed(Exception):
    """Writing into staging failed (not the delivery's fault, or a name the disk cannot hold)."""

    def __init__(self, rel: PurePosixPath, exc: OSError) -> None:
        self.issue = (error(IssueCode.UNSAFE_PATH, f"the name cannot be stored: {exc.strerror}",
                            shown(rel.as_posix())) if exc.errno == errno.ENAMETOOLONG
                      else error(IssueCode.STORAGE_FAILURE, f"cannot write to staging: {exc.strerror}",
                                 shown(rel.as_posix())))
        super().__init__(str(self.issue))


class _Budget:
    """The real bytes staged so far, against the byte limit in force."""

    def __init__(self, limit: int, which: str, source: str) -> None:
        self.limit, self.which, self.source = limit, which, source
        self.bytes = 0

    def refusal(self, message: str) -> DeliveryRefused:
        return DeliveryRefused([error(IssueCode.EXPANSION_LIMIT,
                                      f"{message} (limit: {self.limit} bytes, {self.which})", self.source)])

    def check_declared(self, declared: int) -> Issue | None:
        if self.bytes + declared > self.limit:
            return self.refusal(f"declares {self.bytes + declared} bytes once expanded").issues[0]
        return None

    def add(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.limit:
            raise self.refusal(f"expands to more than {self.limit} bytes")


def _ensure_owner(fd_or_path: int | Path, current: int, is_dir: bool, like: int | None = None) -> None:
    """Give the staged entry the permission bits of ``like`` (default: its own), never set-id bits,
    and always owner read and write (and search, for a folder)."""
    base = stat.S_IMODE(current if like is None else like)
    wanted = base & ~_SET_ID_BITS | (stat.S_IRWXU if is_dir else stat.S_IRUSR | stat.S_IWUSR)
    if wanted != stat.S_IMODE(current):
        os.chmod(fd_or_path, wanted)


def _mkdirs(dest: Path, rel: PurePosixPath) -> None:
    current = dest
    for part in rel.parts:
        current = current / part
        try:
            os.mkdir(current, 0o755)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                raise _WriteFailed(rel, OSError(errno.EEXIST, "a file of that name was staged")) from None
            continue
        except OSError as exc:
            raise _WriteFailed(rel, exc) from None
        _ensure_owner(current, os.lstat(current).st_mode, is_dir=True)


def _write(dest: Path, rel: PurePosixPath, chunks: Iterable[bytes], budget: _Budget,
           mode: int | None = None, times_ns: tuple[int, int] | None = None) -> None:
    """Write ``chunks`` to the new file ``dest/rel``; a partial file never stays behind."""
    _mkdirs(dest, rel.parent)
    target = dest.joinpath(*rel.parts)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o644)
    except OSError as exc:
        raise _WriteFailed(rel, exc) from None
    done = False
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:  # an error reading the source propagates as it is
                budget.add(len(chunk))
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise _WriteFailed(rel, exc) from None
            try:
                out.flush()  # before the times are set
            except OSError as exc:
                raise _WriteFailed(rel, exc) from None
            _ensure_owner(out.fileno(), os.fstat(out.fileno()).st_mode, is_dir=False, like=mode)
            if times_ns is not None:
                try:
                    os.utime(out.fileno(), ns=times_ns)
                except (OSError, OverflowError, ValueError):
                    pass  # an impossible date in an archive is not worth a refusal
        done = True
    finally:
        if not done:
            try:
                os.unlink(target)
            except OSError:
                pass


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
        warnings = _copy_tree(real, dest, limits, free_bytes, where)
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
    root = _single_top_folder(dest)
    return StagedDelivery(kind=kind, root=root, is_bag=looks_like_bag(root), issues=tuple(warnings))


def _single_top_folder(dest: Path) -> Path:
    """An archive of one folder (``delivery/…``) is read as that folder."""
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return dest


def _too_many(limits: Limits, where: str) -> Issue:
    return error(IssueCode.EXPANSION_LIMIT,
                 f"more than {limits.max_files} members (limit: max_files={limits.max_files})", where)


def _empty(where: str, what: str) -> DeliveryRefused:
    return DeliveryRefused([error(IssueCode.EMPTY_DELIVERY, f"the delivery holds no file: {what}", where)])


# -- folders ---------------------------------------------------------------------------------------
def _copy_tree(source: Path, dest: Path, limits: Limits, free: int | None, where: str) -> list[Issue]:
    """Scan the whole folder (``lstat`` only), refuse or copy regular files and folders."""
    issues: list[Issue] = []
    warnings: list[Issue] = []
    names = _Names()
    plan: list[tuple[PurePosixPath, str, os.stat_result]] = []
    declared = members = 0
    stack: list[tuple[str, PurePosixPath]] = [(str(source), PurePosixPath())]
    while stack:
        folder, rel_folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            issues.append(error(IssueCode.UNREADABLE_FILE, f"cannot list folder: {exc.strerror}",
                                shown(rel_folder.as_posix())))
            continue
        subfolders = []
        for entry in entries:
            members += 1
            if members > limits.max_files:
                raise DeliveryRefused(issues + [_too_many(limits, where)])
            rel_name = (rel_folder / entry.name).as_posix()
            rel = safe_member_path(rel_name, limits)
            if isinstance(rel, Issue):
                issues.append(rel)
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                issues.append(error(IssueCode.UNREADABLE_FILE, f"cannot stat: {exc.strerror}", shown(rel_name)))
                continue
            if stat.S_ISLNK(st.st_mode):
                try:
                    target: str | None = os.readlink(entry.path)
                except OSError:
                    target = None
                issues.append(_link_issue(rel, target))
                continue
            if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                issues.append(error(IssueCode.LINK_OR_SPECIAL_FILE,
                                    f"{_special_kind(st.st_mode)}: never opened", shown(rel_name)))
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            collision = names.add(rel, is_dir)
            if collision:
                issues.append(collision)
            warnings.extend(name_warnings(rel))
            plan.append((rel, entry.path, st))
            if is_dir:
                subfolders.append((entry.path, rel))
            else:
                declared += st.st_size
        stack.extend(reversed(subfolders))
    budget = _Budget(*limits.byte_limit(None, free), where)
    too_big = budget.check_declared(declared)
    if too_big:
        issues.append(too_big)
    if issues:
        raise DeliveryRefused(issues)
    if not any(stat.S_ISREG(st.st_mode) for _, _, st in plan):
        raise _empty(where, "only empty folders" if plan else "an empty folder")
    for rel, path, st in plan:
        try:
            if stat.S_ISDIR(st.st_mode):
                _mkdirs(dest, rel)
            else:
                _copy_regular(path, dest, rel, st, budget)
        except _WriteFailed as exc:
            issues.append(exc.issue)
        except _Unreadable as exc:
            issues.append(exc.issue)
    if issues:
        raise DeliveryRefused(issues)
    return warnings


class _Unreadable(Exception):
    def __init__(self, rel: PurePosixPath, message: str) -> None:
        self.issue = error(IssueCode.UNREADABLE_FILE, message, shown(rel.as_posix()))
        super().__init__(message)


def _copy_regular(path: str, dest: Path, rel: PurePosixPath, st: os.stat_result, budget: _Budget) -> None:
    """Copy one regular file seen by ``lstat``; refuse if it is no longer that file when opened."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC)
    except OSError as exc:
        raise _Unreadable(rel, f"cannot open: {exc.strerror}") from None
    with os.fdopen(fd, "rb", buffering=0) as src:
        fst = os.fstat(src.fileno())
        if not stat.S_ISREG(fst.st_mode) or (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
            raise _Unreadable(rel, "changed while being received (no longer the regular file scanned)")

        def chunks() -> Iterator[bytes]:
            left = fst.st_size  # the size when opened: a file growing meanwhile cannot run on
            while left > 0:
                try:
                    data = src.read(min(BUFFER, left))
                except OSError as exc:
                    raise _Unreadable(rel, f"cannot read: {exc.strerror}") from None
                if not data:
                    raise _Unreadable(rel, "the file shrank while being copied")
                left -= len(data)
                yield data

        _write(dest, rel, chunks(), budget, mode=fst.st_mode, times_ns=(fst.st_atime_ns, fst.st_mtime_ns))


# -- zip -------------------------------------------------------------------------------------------
class _Corrupt(Exception):
    pass


class _LyingHeader(Exception):
    pass


_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
                zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_CHUNK = 1 << 16


def _zip_member(fh: BinaryIO, info: zipfile.ZipInfo, cap: int) -> Iterator[bytes]:
    """The member's bytes, decompressed here in bounded chunks: never more than ``cap`` bytes (its
    declared size, or less), whatever the compressed stream holds; CRC and size checked at the end."""
    fh.seek(info.header_offset)
    head = fh.read(_LOCAL_HEADER.size)
    if len(head) != _LOCAL_HEADER.size or head[:4] != b"PK\x03\x04":
        raise _Corrupt("local header missing")
    fields = _LOCAL_HEADER.unpack(head)
    flags, name_len, extra_len = fields[3], fields[10], fields[11]
    name = fh.read(name_len)
    local_name = name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
    if local_name != info.orig_filename:
        raise _Corrupt(f"local header names {shown(local_name)!r}, the central directory another name")
    fh.seek(extra_len, os.SEEK_CUR)
    left = info.compress_size
    method = info.compress_type
    if method == zipfile.ZIP_DEFLATED:
        decomp = zlib.decompressobj(-15)
    elif method == zipfile.ZIP_BZIP2:
        decomp = bz2.BZ2Decompressor()
    elif method == zipfile.ZIP_LZMA:
        prefix = fh.read(4)
        if len(prefix) != 4:
            raise _Corrupt("truncated")
        (props_len,) = struct.unpack("<H", prefix[2:])
        props = fh.read(props_len)
        left -= 4 + props_len
        decomp = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[
            lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)])  # type: ignore[attr-defined]
    else:
        decomp = None
    is_zlib = method == zipfile.ZIP_DEFLATED
    produced = 0
    crc = 0

    def emit(data: bytes) -> bytes:
        nonlocal produced, crc
        produced += len(data)
        if produced > cap:
            raise _LyingHeader(produced)
        crc = zlib.crc32(data, crc)
        return data

    while left > 0 and not (decomp is not None and decomp.eof):
        raw = fh.read(min(_CHUNK, left))
        if not raw:
            raise _Corrupt("truncated: the archive ends inside this member")
        left -= len(raw)
        if decomp is None:
            yield emit(raw)
        elif is_zlib:
            data = raw
            while data and not decomp.eof:
                yield emit(decomp.decompress(data, _CHUNK))
                data = decomp.unconsumed_tail
        else:
            yield emit(decomp.decompress(raw, _CHUNK))
            while not decomp.eof and not decomp.needs_input:
                yield emit(decomp.decompress(b"", _CHUNK))
    if is_zlib:
        yield emit(decomp.flush())  # type: ignore[union-attr]
    # LZMA in zip may omit its end marker: then the declared size says where it ends
    if decomp is not None and not decomp.eof and not (method == zipfile.ZIP_LZMA and produced == cap):
        raise _Corrupt("truncated: the compressed data ends early")
    if produced != info.file_size:
        raise _Corrupt(f"{produced} bytes where the header declares {info.file_size}")
    if crc != info.CRC:
        raise _Corrupt("CRC-32 mismatch")


_ZIP_READ_ERRORS = (_Corrupt, zlib.error, lzma.LZMAError, OSError, EOFError, ValueError, struct.error)


def _zip_link_target(fh: BinaryIO, info: zipfile.ZipInfo) -> str | None:
    try:
        data = b"".join(_zip_member(fh, info, min(info.file_size, 4096)))
    except (_LyingHeader, *_ZIP_READ_ERRORS):
        return None
    return data.decode("utf-8", "surrogateescape")


def _expand_zip(fh: BinaryIO, dest: Path, limits: Limits, budget: _Budget, where: str) -> list[Issue]:
    try:  # the end record's member count, before the central directory is read into memory
        end = zipfile._EndRecData(fh)  # type: ignore[attr-defined]
        if end and end[zipfile._ECD_ENTRIES_TOTAL] > limits.max_files:  # type: ignore[attr-defined]
            raise DeliveryRefused([_too_many(limits, where)])
    except DeliveryRefused:
        raise
    except Exception:  # noqa: BLE001 - a damaged end record is reported by ZipFile below
        pass
    try:
        zf = zipfile.ZipFile(fh)
        infos = zf.infolist()
    except Exception as exc:  # noqa: BLE001 - any failure to parse hostile bytes means "unreadable"
        raise DeliveryRefused([error(IssueCode.ARCHIVE_UNREADABLE,
                                     f"not a readable zip: {type(exc).__name__}: {exc}", where)]) from None
    if len(infos) > limits.max_files:
        raise DeliveryRefused([_too_many(limits, where)])
    issues: list[Issue] = []
    warnings: list[Issue] = []
    names = _Names()
    plan: list[tuple[zipfile.ZipInfo, PurePosixPath, bool]] = []
    for info in infos:
        rel = safe_member_path(info.orig_filename, limits)
        if isinstance(rel, Issue):
            issues.append(rel)
            continue
        fmt = stat.S_IFMT(info.external_attr >> 16)
        is_dir = info.orig_filename.endswith("/") or fmt == stat.S_IFDIR
        if fmt == stat.S_IFLNK:
            issues.append(_link_issue(rel, _zip_link_target(fh, info)))
            continue
        if fmt and fmt not in (stat.S_IFREG, stat.S_IFDIR):
            issues.append(error(IssueCode.LINK_OR_SPECIAL_FILE, _special_kind(fmt),
                                shown(info.orig_filename)))
            continue
        if not rel.parts:
            if not is_dir:
                issues.append(error(IssueCode.UNSAFE_PATH, "empty member name", shown(info.orig_filename)))
            continue
        if not is_dir and info.flag_bits & 0x1:
            issues.append(error(IssueCode.ARCHIVE_UNREADABLE, "encrypted member: cannot be read or checked",
                                shown(info.orig_filename)))
            continue
        if not is_dir and info.compress_type not in _ZIP_METHODS:
            issues.append(error(IssueCode.ARCHIVE_UNREADABLE,
                                f"unsupported compression method {info.compress_type} (supported: "
                                f"{', '.join(_ZIP_METHODS.values())})", shown(info.orig_filename)))
            continue
        collision = names.add(rel, is_dir)
        if collision:
            issues.append(collision)
        warnings.extend(name_warnings(rel))
        plan.append((info, rel, is_dir))
    files = [info for info, _, is_dir in plan if not is_dir]
    too_big = budget.check_declared(sum(info.file_size for info in files))
    if too_big:
        issues.append(too_big)
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for a, b in zip(ordered, ordered[1:]):
        if b.header_offset < a.header_offset + _LOCAL_HEADER.size + a.compress_size:
            issues.append(error(IssueCode.EXPANSION_LIMIT, f"members {shown(a.orig_filename)!r} and "
                                f"{shown(b.orig_filename)!r} overlap (a zip-bomb construction)", where))
            break
    if issues:
        raise DeliveryRefused(issues)
    if not files:
        raise _empty(where, "an empty zip" if not infos else "a zip of folders only")
    for info, rel, is_dir in plan:
        try:
            if is_dir:
                _mkdirs(dest, rel)
                continue
            _write(dest, rel, _zip_member(fh, info, info.file_size), budget, times_ns=_zip_time(info))
        except _WriteFailed as exc:
            raise DeliveryRefused([exc.issue]) from None
        except _LyingHeader:
            raise DeliveryRefused([error(IssueCode.EXPANSION_LIMIT,
                                         f"expands past the {info.file_size} bytes its header declares "
                                         "(a lying header; stopped there)", shown(info.orig_filename))]) from None
        except _ZIP_READ_ERRORS as exc:
            raise DeliveryRefused([error(IssueCode.ARCHIVE_UNREADABLE, f"cannot expand: {exc}",
                                         shown(info.orig_filename))]) from None
    return warnings


def _zip_time(info: zipfile.ZipInfo) -> tuple[int, int] | None:
    try:
        t = int(time.mktime((*info.date_time, 0, 0, -1))) * 1_000_000_000
    except (OverflowError, ValueError):
        return None
    return t, t


# -- tar -------------------------------------------------------------------------------------------
class _StreamTooLong(Exception):
    pass


class _Capped:
    """A read-only stream that refuses to deliver more than ``cap`` bytes in all."""

    def __init__(self, raw: BinaryIO, cap: int) -> None:
        self.raw, self.cap, self.count = raw, cap, 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or self.count + n > self.cap:
            n = self.cap - self.count + 1
        data = self.raw.read(n)
        self.count += len(data)
        if self.count > self.cap:
            raise _StreamTooLong(self.cap)
        return data

    def close(self) -> None:
        pass


_TAR_META_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                   tarfile.GNUTYPE_LONGLINK)
MAX_TAR_META = 1 << 20  # a pax or GNU long-name header is read whole into memory: 1 MiB at most


class _TarRefused(Exception):
    def __init__(self, code: IssueCode, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(message)


class _CheckedTarInfo(tarfile.TarInfo):
    """``tarfile``'s header reader, made safe for a stream from a stranger.

    It remembers why the member list ended (``tarfile`` stops silently at a bad or truncated header),
    refuses metadata headers over ``MAX_TAR_META`` (read whole into memory) and sparse members (their
    maps are read into memory and their data is not a plain byte stream).
    """

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.HeaderError as exc:
            tarfile_.oais_stop = exc  # type: ignore[attr-defined]
            raise

    @classmethod
    def frombuf(cls, buf: bytes, encoding: str, errors: str) -> tarfile.TarInfo:
        obj = super().frombuf(buf, encoding, errors)  # type: ignore[misc]
        if obj.type in _TAR_META_TYPES and obj.size > MAX_TAR_META:
            raise _TarRefused(IssueCode.EXPANSION_LIMIT, f"a tar metadata header of {obj.size} bytes "
                                                         f"(limit: {MAX_TAR_META} bytes)")
        return obj

    def _sparse(self, *args: object) -> None:
        raise _TarRefused(IssueCode.ARCHIVE_UNREADABLE, f"sparse member {shown(self.name)!r}: not supported")

    _proc_sparse = _proc_gnusparse_00 = _proc_gnusparse_01 = _proc_gnusparse_10 = _sparse


def _decompressed(fh: BinaryIO) -> BinaryIO:
    magic = fh.read(6)
    fh.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=fh, mode="rb")  # type: ignore[return-value]
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(fh)  # type: ignore[return-value]
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(fh)  # type: ignore[return-value]
    return fh


_TAR_READ_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError, ValueError)


def _expand_tar(fh: BinaryIO, dest: Path, limits: Limits, budget: _Budget, where: str) -> list[Issue]:
    # every decompressed byte read (data, skipped data, headers) counts: a stream cannot run on
    stream = _Capped(_decompressed(fh), budget.limit + 1536 * (limits.max_files + 1) + (1 << 20))
    issues: list[Issue] = []
    warnings: list[Issue] = []
    names = _Names()
    members = files = 0

    def unreadable(exc: BaseException) -> DeliveryRefused:
        return DeliveryRefused(issues + [error(IssueCode.ARCHIVE_UNREADABLE,
                                               f"not a readable tar: {type(exc).__name__}: {exc}", where)])

    try:
        tf = tarfile.open(fileobj=stream, mode="r|", tarinfo=_CheckedTarInfo,  # type: ignore[call-overload]
                          encoding="utf-8", errors="surrogateescape")
        for member in tf:  # a stream: one pass, no random access
            members += 1
            if members > limits.max_files:
                raise DeliveryRefused(issues + [_too_many(limits, where)])
            rel = safe_member_path(member.name, limits)
            problem: Issue | None = None
            if isinstance(rel, Issue):
                problem = rel
            elif member.issym() or member.islnk():
                problem = _link_issue(rel, member.linkname, hard=member.islnk())
            elif member.ischr() or member.isblk() or member.isfifo():
                problem = error(IssueCode.LINK_OR_SPECIAL_FILE,
                                "FIFO (named pipe)" if member.isfifo() else "device", shown(member.name))
            elif not (member.isreg() or member.isdir()):
                problem = error(IssueCode.LINK_OR_SPECIAL_FILE, f"unsupported member type {member.type!r}",
                                shown(member.name))
            elif not rel.parts:
                if member.isdir():
                    continue
                problem = error(IssueCode.UNSAFE_PATH, "empty member name", shown(member.name))
            else:
                problem = names.add(rel, member.isdir())
            if problem:
                issues.append(problem)
            if member.isreg():
                too_big = budget.check_declared(member.size)
                if too_big:
                    raise DeliveryRefused(issues + [too_big])
            if issues:  # refusing: read on (bounded) to report every problem, write nothing more
                budget.bytes += member.size if member.isreg() else 0
                continue
            assert isinstance(rel, PurePosixPath)
            warnings.extend(name_warnings(rel))
            if member.isdir():
                _mkdirs(dest, rel)
                continue
            files += 1
            src = tf.extractfile(member)
            assert src is not None
            with src:
                _write(dest, rel, iter(lambda: src.read(BUFFER), b""), budget,
                       times_ns=(int(member.mtime) * 1_000_000_000,) * 2)
        stop = getattr(tf, "oais_stop", None)
        if not isinstance(stop, tarfile.EOFHeaderError):
            reason = "truncated: no end-of-archive block" if isinstance(stop, tarfile.EmptyHeaderError) \
                else f"corrupt or truncated header: {stop}"
            raise DeliveryRefused(issues + [error(IssueCode.ARCHIVE_UNREADABLE, reason, where)])
        while stream.read(BUFFER):  # to the end, so that a compressed stream checks its CRC
            pass
    except DeliveryRefused:
        raise
    except _WriteFailed as exc:
        raise DeliveryRefused(issues + [exc.issue]) from None
    except _StreamTooLong:
        raise budget.refusal("the decompressed tar stream runs past the limit") from None
    except _TarRefused as exc:
        raise DeliveryRefused(issues + [error(exc.code, exc.message, where)]) from None
    except _TAR_READ_ERRORS as exc:
        raise unreadable(exc) from None
    if issues:
        raise DeliveryRefused(issues)
    if not files:
        raise _empty(where, "an empty tar" if not members else "a tar of folders only")
    return warnings
