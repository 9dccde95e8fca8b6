"""Expanding a ``.tar`` delivery (plain, or compressed with gzip, bzip2 or xz) into staging.

A tar is a stream: it is read in one pass, each member checked as it comes (names, types, links,
collisions, declared size), so a refusal leaves the complete members before it. Every decompressed
byte of the stream counts against the byte limit, skipped or not (SIP-E006). ``_CheckedTarInfo``
refuses metadata headers over ``MAX_TAR_META`` and sparse members, and remembers why the member list
ended: a tar without its end-of-archive block, or with a corrupt header, is SIP-E007. The stream is
read to its end so that a compressed tar checks its CRC. Members get their recorded modification
time; their permissions are not applied. The rules are documented in ``sip.receive``.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from oais.domain.issues import Issue, IssueCode, error
from sip.receive_common import (
    BUFFER,
    DeliveryRefused,
    Limits,
    _Budget,
    _empty,
    _link_issue,
    _mkdirs,
    _Names,
    _too_many,
    _write,
    _WriteFailed,
    name_warnings,
    safe_member_path,
    shown,
)


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
                _mkdirs(dest, rel, budget.folders)
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
