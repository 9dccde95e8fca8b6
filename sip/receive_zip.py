"""Expanding a ``.zip`` delivery into staging, every member read here in bounded chunks.

The end record's member count is checked before the central directory is read, and the whole
directory (names, types, collisions, encryption, compression methods, declared sizes, overlapping
members) before the first byte is written. Stored, deflate, bzip2 and lzma members are decompressed
by ``_zip_member``, never past the size their header declares (a lying header is SIP-E006), with
their CRC and size checked at the end (SIP-E007). Members get their recorded modification time;
their permissions are not applied. The rules are documented in ``sip.receive``.
"""

from __future__ import annotations

import bz2
import lzma
import os
import stat
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from oais.domain.issues import Issue, IssueCode, error
from sip.receive_common import (
    DeliveryRefused,
    Limits,
    _Budget,
    _empty,
    _link_issue,
    _mkdirs,
    _Names,
    _special_kind,
    _too_many,
    _write,
    _WriteFailed,
    name_warnings,
    safe_member_path,
    shown,
)


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
                _mkdirs(dest, rel, budget.folders)
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
