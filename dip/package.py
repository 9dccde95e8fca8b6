"""Packaging a DIP: a BagIt 1.0 bag (RFC 8493) inside a zip, reproducible, streamed, written atomically.

Layout of ``<order_id>.zip`` (entries in this order)::

    <order_id>/bagit.txt                BagIt-Version 1.0, UTF-8
    <order_id>/bag-info.txt             Bag-Software-Agent, Bagging-Date (the order's date), External-Identifier
                                        (the order id), Payload-Oxum
    <order_id>/data/...                 payload, sorted by path: README.txt, provenance.json, the outputs
    <order_id>/manifest-sha256.txt      every payload file
    <order_id>/tagmanifest-sha256.txt   bagit.txt, bag-info.txt, manifest-sha256.txt

Reproducible: every entry carries the order's creation time (UTC) as its zip time, mode 0644, "made on
Unix", no extra fields; JSON is written with sorted keys. Rebuilding an order gives the same payload bytes
and, with the same zlib, the same zip. Streamed: files on disk are copied through a 1 MiB buffer while
their sha256 is computed (and, when the ``OutputFile`` carries one, their sha512 is checked: the
originals must still be the files the archive recorded). Atomic: the zip is written under a temporary
name in the destination folder, fsynced, re-read for its sha256, then renamed into place.

Paths in manifests are percent-encoded as RFC 8493 §2.1.3 asks (``%`` -> ``%25``; CR and LF are refused).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dip.model import DipError, InputFixityError, OutputFile
from oais.formats.fileio import WRITE_MAX

BUFFER = 1 << 20
README = "README.txt"
PROVENANCE = "provenance.json"
RESERVED = frozenset({README, PROVENANCE})
STORED_SUFFIXES = (".png", ".gz", ".fz", ".zip", ".jpg", ".jpeg", ".jp2", ".bz2", ".xz", ".zst", ".7z")
FILE_MODE = 0o100644
ZIP_MODE = 0o644  # the zip itself (mkstemp creates 0600)
_ORDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class _Entry:
    path: str  # relative to the bag: data/...
    data: bytes | None
    source: Path | None
    size: int
    sha512: str | None = None
    origin: str = ""


def provenance_json(provenance: dict[str, Any], outputs: Sequence[OutputFile]) -> bytes:
    """``provenance`` with the ``outputs`` list (each payload output and the inputs it was made from)."""
    doc = dict(provenance)
    doc["outputs"] = [{"path": f"data/{o.relpath}", "made_by": o.made_by, "from_inputs": list(o.from_inputs)}
                      for o in sorted(outputs, key=lambda o: o.relpath)]
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def build_dip_zip(dest: Path, outputs: Sequence[OutputFile], *, order_id: str, created: datetime,
                  provenance: dict[str, Any], readme: str) -> tuple[str, int]:
    """Write the DIP zip to ``dest`` (replacing it atomically); return (sha256 of the zip, its size).

    ``outputs`` go under ``data/``; ``readme`` becomes ``data/README.txt`` and ``provenance`` (plus the
    ``outputs`` list) ``data/provenance.json``. Raises ``DipError`` for a bad order id, duplicate or reserved
    output paths, or a source that changed size, and ``InputFixityError`` for a source whose sha512 is not
    the recorded one; nothing is left at ``dest`` then.
    """
    if not _ORDER_ID.fullmatch(order_id) or order_id in (".", ".."):
        raise DipError(f"order id {order_id!r} cannot name a bag folder (letters, digits, '.', '_', '-')")
    if created.tzinfo is None:
        raise DipError("created must be timezone-aware")
    entries = _entries(outputs, readme, provenance)
    root = order_id
    stamp = _zip_time(created)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as raw:
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
                oxum = f"{sum(e.size for e in entries)}.{len(entries)}"
                tags = {"bagit.txt": b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
                        "bag-info.txt": _bag_info(order_id, created, oxum)}
                for name, data in tags.items():
                    _write_bytes(zf, f"{root}/{name}", data, stamp)
                digests = {e.path: _write_entry(zf, f"{root}/{e.path}", e, stamp) for e in entries}
                tags["manifest-sha256.txt"] = _manifest(digests)
                _write_bytes(zf, f"{root}/manifest-sha256.txt", tags["manifest-sha256.txt"], stamp)
                tag_digests = {name: hashlib.sha256(data).hexdigest() for name, data in tags.items()}
                _write_bytes(zf, f"{root}/tagmanifest-sha256.txt", _manifest(tag_digests), stamp)
            raw.flush()
            os.fsync(raw.fileno())
            raw.seek(0)
            digest, size = hashlib.sha256(), 0
            while chunk := raw.read(BUFFER):
                digest.update(chunk)
                size += len(chunk)
        os.chmod(tmp, ZIP_MODE)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(dest.parent)
    return digest.hexdigest(), size


def _entries(outputs: Sequence[OutputFile], readme: str, provenance: dict[str, Any]) -> list[_Entry]:
    seen: dict[str, str] = {}
    for o in outputs:
        if o.relpath in RESERVED:
            raise DipError(f"output path {o.relpath!r} is reserved for the DIP's own {o.relpath}")
        folded = o.relpath.casefold()
        if folded in seen:
            raise DipError(f"two outputs at {o.relpath!r} and {seen[folded]!r} (paths equal ignoring case)")
        seen[folded] = o.relpath
    text = readme if readme.endswith("\n") else readme + "\n"
    own = [OutputFile(README, text.encode("utf-8"), None, "dip"),
           OutputFile(PROVENANCE, provenance_json(provenance, outputs), None, "dip")]
    entries = []
    for o in sorted([*own, *outputs], key=lambda o: o.relpath):
        entries.append(_Entry(f"data/{o.relpath}", o.data, o.source, o.size, o.sha512,
                              ", ".join(o.from_inputs) or o.relpath))
    return entries


def _bag_info(order_id: str, created: datetime, oxum: str) -> bytes:
    from oais import __version__

    day = created.astimezone(timezone.utc).date().isoformat()
    lines = [f"Bag-Software-Agent: oais-archive {__version__}",
             f"Bagging-Date: {day}",
             f"External-Description: Dissemination Information Package for order {order_id}; "
             "see data/README.txt and data/provenance.json",
             f"External-Identifier: {order_id}",
             f"Payload-Oxum: {oxum}"]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _manifest(digests: dict[str, str]) -> bytes:
    return "".join(f"{digests[p]}  {p.replace('%', '%25')}\n" for p in sorted(digests)).encode("utf-8")


def _zip_time(created: datetime) -> tuple[int, int, int, int, int, int]:
    t = created.astimezone(timezone.utc)
    if t.year < 1980:  # the earliest time a zip entry can carry
        return (1980, 1, 1, 0, 0, 0)
    return (t.year, t.month, t.day, t.hour, t.minute, t.second - t.second % 2)


def _info(name: str, size: int, stamp: tuple[int, int, int, int, int, int]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.compress_type = zipfile.ZIP_STORED if name.lower().endswith(STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so that external_attr holds the mode
    info.external_attr = FILE_MODE << 16
    info.file_size = size  # lets zipfile choose Zip64 up front for large files
    return info


def _write_bytes(zf: zipfile.ZipFile, name: str, data: bytes, stamp: tuple[int, int, int, int, int, int]) -> str:
    with zf.open(_info(name, len(data), stamp), "w") as out:
        out.write(data)
    return hashlib.sha256(data).hexdigest()


def _write_entry(zf: zipfile.ZipFile, name: str, entry: _Entry, stamp: tuple[int, int, int, int, int, int]) -> str:
    if entry.data is not None:
        return _write_bytes(zf, name, entry.data, stamp)
    assert entry.source is not None
    h256 = hashlib.sha256()
    h512 = hashlib.sha512() if entry.sha512 else None
    done = 0
    buf = bytearray(WRITE_MAX)  # read, hashed and handed to the zip this much at a time (oais.formats.fileio)
    view = memoryview(buf)
    with open(entry.source, "rb") as src, zf.open(_info(name, entry.size, stamp), "w") as out:
        while n := src.readinto(buf):
            chunk = view[:n]
            h256.update(chunk)
            if h512 is not None:
                h512.update(chunk)
            out.write(chunk)
            done += n
            if done > entry.size:
                break
    if done != entry.size:
        raise DipError(f"{entry.origin}: the source changed size while being packaged "
                       f"({entry.size} bytes expected, {'more' if done > entry.size else done})")
    if h512 is not None and h512.hexdigest() != entry.sha512:
        raise InputFixityError(entry.origin, "sha512", str(entry.sha512), h512.hexdigest())
    return h256.hexdigest()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["PROVENANCE", "README", "build_dip_zip", "provenance_json"]
