"""Receiving a delivery: copy it into staging without ever touching the producer's input.

Accepted sources: a folder (plain or a BagIt bag), or a ``.zip`` / ``.tar`` / ``.tar.gz`` / ``.tgz``
holding either. Archives are expanded member by member with checks on every name and type; only
regular files and folders are accepted. Problems raise ``DeliveryRefused`` carrying coded issues.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from oais.domain.issues import Issue, IssueCode, error

BUFFER = 1 << 20
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


class DeliveryRefused(Exception):
    """The delivery cannot be accepted; ``issues`` says exactly why."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))


@dataclass(frozen=True)
class Limits:
    """Bounds on archive expansion (a zip bomb stops before it fills the disk)."""

    max_bytes: int = 1 << 40  # 1 TiB expanded
    max_files: int = 1_000_000
    max_ratio: float = 200.0  # expanded size / archive size


@dataclass(frozen=True)
class StagedDelivery:
    """A delivery copied into staging. ``root`` is the folder holding the delivery's own tree."""

    kind: str  # "directory" or "zip" or "tar"
    root: Path
    is_bag: bool


def delivery_kind(source: Path) -> str:
    if source.is_dir():
        return "directory"
    name = source.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz")):
        return "tar"
    raise DeliveryRefused([error(IssueCode.UNSUPPORTED_SOURCE,
                                 "not a folder, .zip, .tar, .tar.gz or .tgz", str(source))])


def stage_delivery(source: Path, dest: Path, limits: Limits = Limits()) -> StagedDelivery:
    """Copy or expand ``source`` into the new folder ``dest`` (which must not exist)."""
    try:
        st = os.stat(source)
    except OSError as exc:
        raise DeliveryRefused([error(IssueCode.SOURCE_NOT_FOUND, f"cannot read: {exc.strerror}",
                                     str(source))]) from None
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        raise DeliveryRefused([error(IssueCode.UNSUPPORTED_SOURCE, "not a regular file or folder",
                                     str(source))])
    kind = delivery_kind(source)
    dest.mkdir(parents=True)
    if kind == "directory":
        _copy_tree(source, dest)
    elif kind == "zip":
        _expand_zip(source, dest, limits)
    else:
        _expand_tar(source, dest, limits)
    root = _single_top_folder(dest)
    if not any(p.is_file() for p in root.rglob("*")):
        raise DeliveryRefused([error(IssueCode.EMPTY_DELIVERY, "the delivery holds no file", str(source))])
    return StagedDelivery(kind=kind, root=root, is_bag=(root / "bagit.txt").is_file())


def _single_top_folder(dest: Path) -> Path:
    """An archive of one folder (``delivery/…``) is read as that folder."""
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return dest


def _copy_tree(source: Path, dest: Path) -> None:
    """Copy regular files and folders; refuse links and special files (never open a FIFO)."""
    issues: list[Issue] = []
    for dirpath, dirnames, filenames in os.walk(source):
        rel_dir = Path(dirpath).relative_to(source)
        for name in sorted(dirnames + filenames):
            src = Path(dirpath) / name
            rel = (rel_dir / name).as_posix()
            try:
                st = os.lstat(src)
            except OSError as exc:
                issues.append(error(IssueCode.UNREADABLE_FILE, f"cannot stat: {exc.strerror}", rel))
                continue
            if stat.S_ISLNK(st.st_mode):
                issues.append(error(IssueCode.LINK_OR_SPECIAL_FILE, "symbolic link", rel))
            elif stat.S_ISDIR(st.st_mode):
                (dest / rel).mkdir()
            elif stat.S_ISREG(st.st_mode):
                try:
                    shutil.copy2(src, dest / rel, follow_symlinks=False)
                except OSError as exc:
                    issues.append(error(IssueCode.UNREADABLE_FILE, f"cannot copy: {exc.strerror}", rel))
            else:
                issues.append(error(IssueCode.LINK_OR_SPECIAL_FILE, "device, FIFO or socket", rel))
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    if issues:
        raise DeliveryRefused(issues)


def _safe_member_path(name: str) -> PurePosixPath | Issue:
    clean = name.replace("\\", "/") if "\\" in name and "/" not in name else name
    p = PurePosixPath(clean)
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":") or p.is_absolute():
        return error(IssueCode.UNSAFE_PATH, "absolute path in archive", name)
    if any(part == ".." for part in p.parts) or "\\" in name or "\x00" in name:
        return error(IssueCode.UNSAFE_PATH, "'..' or backslash in archive member name", name)
    parts = [q for q in p.parts if q not in ("", ".")]
    if not parts:
        return error(IssueCode.UNSAFE_PATH, "empty member name", name)
    return PurePosixPath(*parts)


class _Budget:
    def __init__(self, source: Path, limits: Limits) -> None:
        self.source = source
        self.limits = limits
        self.max_bytes = min(limits.max_bytes, int(max(os.path.getsize(source), 1) * limits.max_ratio))
        self.bytes = 0
        self.files = 0

    def add_file(self) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise DeliveryRefused([error(IssueCode.EXPANSION_LIMIT,
                                         f"more than {self.limits.max_files} members", str(self.source))])

    def add_bytes(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.max_bytes:
            raise DeliveryRefused([error(
                IssueCode.EXPANSION_LIMIT,
                f"expands to more than {self.max_bytes} bytes (limit: {self.limits.max_ratio:g}× the "
                f"archive size, at most {self.limits.max_bytes} bytes)", str(self.source))])


def _write_stream(src: BinaryIO, target: Path, budget: _Budget) -> None:
    buf = bytearray(BUFFER)
    view = memoryview(buf)
    with open(target, "xb") as out:
        while n := src.readinto(buf):
            budget.add_bytes(n)
            out.write(view[:n])


def _expand_zip(source: Path, dest: Path, limits: Limits) -> None:
    budget = _Budget(source, limits)
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DeliveryRefused([error(IssueCode.ARCHIVE_UNREADABLE, f"not a readable zip: {exc}",
                                     str(source))]) from None
    with zf:
        infos = zf.infolist()
        issues: list[Issue] = []
        for info in infos:
            rel = _safe_member_path(info.filename)
            if isinstance(rel, Issue):
                issues.append(rel)
                continue
            mode = info.external_attr >> 16
            if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                issues.append(error(IssueCode.LINK_OR_SPECIAL_FILE, "link or special file in zip",
                                    info.filename))
        if issues:
            raise DeliveryRefused(issues)
        declared = sum(i.file_size for i in infos)
        if declared > budget.max_bytes:  # refuse before writing a byte; the real count is checked too
            budget.add_bytes(declared)
        for info in infos:
            rel = _safe_member_path(info.filename)
            assert isinstance(rel, PurePosixPath)
            target = dest.joinpath(*rel.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            budget.add_file()
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src:
                    _write_stream(src, target, budget)
            except FileExistsError:
                raise DeliveryRefused([error(IssueCode.NAME_COLLISION, "member appears twice",
                                             info.filename)]) from None
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                raise DeliveryRefused([error(IssueCode.ARCHIVE_UNREADABLE, f"cannot expand: {exc}",
                                             info.filename)]) from None


def _expand_tar(source: Path, dest: Path, limits: Limits) -> None:
    budget = _Budget(source, limits)
    try:
        tf = tarfile.open(source, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise DeliveryRefused([error(IssueCode.ARCHIVE_UNREADABLE, f"not a readable tar: {exc}",
                                     str(source))]) from None
    with tf:
        try:
            for member in tf:  # streamed: one pass, no random access
                rel = _safe_member_path(member.name)
                if isinstance(rel, Issue):
                    raise DeliveryRefused([rel])
                if not (member.isreg() or member.isdir()):
                    raise DeliveryRefused([error(IssueCode.LINK_OR_SPECIAL_FILE,
                                                 "link, device or FIFO in tar", member.name)])
                target = dest.joinpath(*rel.parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                budget.add_file()
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(member)
                assert src is not None
                with src:
                    try:
                        _write_stream(src, target, budget)
                    except FileExistsError:
                        raise DeliveryRefused([error(IssueCode.NAME_COLLISION, "member appears twice",
                                                     member.name)]) from None
        except (tarfile.TarError, OSError, EOFError, zlib_error()) as exc:
            raise DeliveryRefused([error(IssueCode.ARCHIVE_UNREADABLE, f"cannot expand: {exc}",
                                         str(source))]) from None


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error
