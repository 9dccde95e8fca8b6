"""What receiving a delivery needs whatever its form: the parts shared by ``sip.receive`` and its
three format modules (``sip.receive_folder``, ``sip.receive_zip``, ``sip.receive_tar``).

* ``DeliveryRefused`` (the coded issues of a refusal), ``Limits`` (the bounds on a delivery and the
  byte limit in force) and ``StagedDelivery`` (what was staged, with its warnings).
* Member names: ``safe_member_path`` (SIP-E004), ``name_warnings`` (SIP-W001, SIP-W002), ``shown``
  (a name safe to print), the collision check ``_Names`` (SIP-E009), the messages for links
  (SIP-E015) and special files (SIP-E005).
* Writing into staging: ``_Budget`` (the real bytes staged against the byte limit, SIP-E006, and the
  sha256 and sha512 of every staged file), ``_mkdirs`` and ``_write`` (a new file, never a partial one
  left behind, hashed in the same pass as it is written; STO-E001 or SIP-E004 when staging itself
  cannot take it), and the refusals every form shares (too many members, SIP-E006;
  no file at all, SIP-E003).

The rules themselves are documented in ``sip.receive``. This module imports none of the format
modules (they import it).
"""

from __future__ import annotations

import errno
import math
import os
import posixpath
import re
import stat
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from oais.domain.fixity import Fixity
from oais.domain.issues import Issue, IssueCode, error, issue
from oais.formats.digest import Digester
from oais.formats.fileio import WRITE_MAX, Writeback
from sip.names import is_system_junk, unsafe_reason

BUFFER = 1 << 20
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
    digests: Mapping[Path, Fixity] = field(default_factory=dict)
    """Staged file -> size, sha256 and sha512 of the bytes written, computed in the pass that wrote them."""


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


def child_member_path(folder: PurePosixPath, folder_bytes: int, name: str, limits: Limits,
                      rel_name: str) -> PurePosixPath | None:
    """``safe_member_path(rel_name)`` for a name listed in a folder already found safe (``folder``,
    whose ``/``-joined path is ``folder_bytes`` long in UTF-8; ``rel_name`` is the entry's whole
    path), checking only what the entry adds: the same path when it is safe, None when
    ``safe_member_path`` must decide (and say why)."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return None
    if (name in ("", ".", "..") or "/" in name or "\\" in name or "\x00" in name or size > limits.max_name_bytes
            or (folder_bytes + 1 if folder_bytes else 0) + size > limits.max_path_bytes or _DRIVE.match(rel_name)):
        return None
    return folder / name


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

    def add(self, rel: PurePosixPath, is_dir: bool, *, parents_known: bool = False) -> Issue | None:
        """SIP-E009 if ``rel`` (or one of its parent folders) collides with a path added before.
        ``parents_known``: its parent folder was added before without a collision, so every parent
        is known as that very folder and only the last component is checked."""
        parts = rel.parts
        for i in range(len(parts) if parents_known else 1, len(parts) + 1):
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
    """The real bytes staged so far, against the byte limit in force, and the digests of the files
    staged (safe to share between the threads that copy a folder)."""

    def __init__(self, limit: int, which: str, source: str) -> None:
        self.limit, self.which, self.source = limit, which, source
        self.bytes = 0
        self.digests: dict[Path, Fixity] = {}
        self.folders: set[PurePosixPath] = set()  # staged folders known to exist (``_mkdirs``)
        self._lock = threading.Lock()

    def refusal(self, message: str) -> DeliveryRefused:
        return DeliveryRefused([error(IssueCode.EXPANSION_LIMIT,
                                      f"{message} (limit: {self.limit} bytes, {self.which})", self.source)])

    def check_declared(self, declared: int) -> Issue | None:
        if self.bytes + declared > self.limit:
            return self.refusal(f"declares {self.bytes + declared} bytes once expanded").issues[0]
        return None

    def add(self, n: int) -> None:
        with self._lock:
            self.bytes += n
            over = self.bytes > self.limit
        if over:
            raise self.refusal(f"expands to more than {self.limit} bytes")


def _ensure_owner(fd_or_path: int | Path, current: int, is_dir: bool, like: int | None = None) -> None:
    """Give the staged entry the permission bits of ``like`` (default: its own), never set-id bits,
    and always owner read and write (and search, for a folder)."""
    base = stat.S_IMODE(current if like is None else like)
    wanted = base & ~_SET_ID_BITS | (stat.S_IRWXU if is_dir else stat.S_IRUSR | stat.S_IWUSR)
    if wanted != stat.S_IMODE(current):
        os.chmod(fd_or_path, wanted)


def _mkdirs(dest: Path, rel: PurePosixPath, made: set[PurePosixPath] | None = None) -> None:
    """Create the staged folder ``rel`` and its missing parents. ``made`` (shared by the threads of one
    delivery) remembers the folders created or found, so a folder of 100 files is checked once, not
    100 times; nothing but this function adds to it, and a staged folder is never removed meanwhile."""
    if made is not None and rel in made:
        return
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
    if made is not None:
        made.add(rel)


def _write(dest: Path, rel: PurePosixPath, chunks: Iterable[bytes], budget: _Budget,
           mode: int | None = None, times_ns: tuple[int, int] | None = None) -> None:
    """Write ``chunks`` to the new file ``dest/rel``, hashing them in the same pass (the digests go to
    ``budget.digests``); a partial file never stays behind."""
    _mkdirs(dest, rel.parent, budget.folders)
    target = dest.joinpath(*rel.parts)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o644)
    except OSError as exc:
        raise _WriteFailed(rel, exc) from None
    done = False
    digester = Digester()
    writeback = Writeback(fd)  # large files go to the disk as they are written (see oais.formats.fileio)
    try:
        try:
            for chunk in chunks:  # an error reading the source propagates as it is
                budget.add(len(chunk))
                digester.update(chunk)
                view, written = memoryview(chunk), 0
                try:
                    while written < len(view):  # unbuffered, WRITE_MAX at a time (oais.formats.fileio)
                        written += os.write(fd, view[written:written + WRITE_MAX])
                except OSError as exc:
                    raise _WriteFailed(rel, exc) from None
                writeback.wrote(written)
            writeback.done()
            _ensure_owner(fd, os.fstat(fd).st_mode, is_dir=False, like=mode)
            if times_ns is not None:
                try:
                    os.utime(fd, ns=times_ns)
                except (OSError, OverflowError, ValueError):
                    pass  # an impossible date in an archive is not worth a refusal
        finally:
            os.close(fd)
        done = True
        budget.digests[target] = digester.fixity()
    finally:
        if not done:
            try:
                os.unlink(target)
            except OSError:
                pass


# -- refusals every form shares --------------------------------------------------------------------
def _too_many(limits: Limits, where: str) -> Issue:
    return error(IssueCode.EXPANSION_LIMIT,
                 f"more than {limits.max_files} members (limit: max_files={limits.max_files})", where)


def _empty(where: str, what: str) -> DeliveryRefused:
    return DeliveryRefused([error(IssueCode.EMPTY_DELIVERY, f"the delivery holds no file: {what}", where)])
