"""Values of a DIP order: its inputs, the transforms asked for, the files made, and their provenance.

Pure values (standard library and ``oais.domain`` only); nothing here reads a file.

Errors::

    DipError                       a DIP cannot be rendered
    ├── TransformError(ValueError) an unknown transform, or a bad parameter (``transform``, ``parameter``)
    └── InputFixityError           an input's readable copy does not match its recorded size / sha512
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from oais.domain.fixity import is_hex_digest
from oais.domain.package import check_logical_path

_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class DipError(Exception):
    """Base class: a DIP cannot be rendered."""


class TransformError(DipError, ValueError):
    """An unknown transform or a bad parameter. ``transform`` and ``parameter`` name what is wrong
    (``parameter`` is None when the problem is the transform itself or the whole specification)."""

    def __init__(self, transform: str, parameter: str | None, message: str) -> None:
        self.transform = transform
        self.parameter = parameter
        self.reason = message
        where = f"{transform}: parameter {parameter!r}" if parameter else (transform or "transform")
        super().__init__(f"{where}: {message}")


class InputFixityError(DipError):
    """The readable copy of an input is not the file the archive recorded (``ref``, ``expected``, ``found``)."""

    def __init__(self, ref: str, what: str, expected: str, found: str) -> None:
        self.ref, self.what, self.expected, self.found = ref, what, expected, found
        super().__init__(f"{ref}: {what} of the source copy is {found}, the archive recorded {expected}")


def safe_segment(text: str) -> str:
    """A file-name-safe form of an identifier: ``urn:uuid:<u>`` gives ``<u>``; other characters than
    letters, digits, ``.``, ``_`` and ``-`` become ``_``."""
    core = text[len("urn:uuid:"):] if text.startswith("urn:uuid:") else text
    out = _SAFE.sub("_", core).strip(".") or "_"
    return out


@dataclass(frozen=True)
class DipInput:
    """One file of one AIP version selected for a DIP.

    ``path`` is the logical path inside the AIP (``representations/original/data/...``); ``source`` a
    readable copy of it on a replica; ``size`` and ``sha512`` what the archive recorded for it.
    """

    aip_id: str
    version: int
    path: str
    source: Path
    size: int
    sha512: str
    dataset: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", Path(self.source))
        check_logical_path(self.path)
        if _CONTROL.search(self.path):
            raise ValueError(f"control character in path: {self.path!r}")
        if not self.aip_id or _CONTROL.search(self.aip_id):
            raise ValueError(f"bad AIP id: {self.aip_id!r}")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise ValueError(f"version numbers start at 1, got {self.version!r}")
        if self.size < 0:
            raise ValueError(f"size must be >= 0, got {self.size}")
        if not is_hex_digest("sha512", self.sha512):
            raise ValueError(f"sha512 is not a lowercase hex digest: {self.sha512!r}")

    @property
    def ref(self) -> str:
        """How provenance names this input: ``<aip_id>/v<version>/<path>``."""
        return f"{self.aip_id}/v{self.version}/{self.path}"

    @property
    def key(self) -> str:
        """A relative path naming this input inside a DIP: ``<safe aip id>/v<version>/<path>``."""
        return f"{safe_segment(self.aip_id)}/v{self.version}/{self.path}"

    @property
    def name(self) -> str:
        """The file name (last segment of ``path``)."""
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class TransformSpec:
    """A transform asked for by name, with its parameters as text (``cutout:x=10,y=20,w=64,h=64``)."""

    name: str
    params: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))


def parse_transform(text: str) -> TransformSpec:
    """``name`` or ``name:key=value,key=value`` -> ``TransformSpec``; raises ``TransformError`` on bad syntax.

    Only the first ``:`` separates the name, so values may contain ``:`` (``interval=percentile:99.5``);
    values may not contain ``,`` or ``=``. Names and keys are lower case. Whether the transform exists and
    its parameters are valid is checked by the registry (``dip.transforms.validate_spec``).
    """
    if not isinstance(text, str) or not text.strip():
        raise TransformError("", None, "empty transform specification")
    name, sep, rest = text.strip().partition(":")
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise TransformError(name, None, f"not a transform name: {name!r} (lower-case letters, digits, '-', '_')")
    params: dict[str, str] = {}
    if sep:
        if not rest.strip():
            raise TransformError(name, None, "':' must be followed by key=value parameters")
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not eq:
                raise TransformError(name, key or None, f"expected key=value, got {item.strip()!r}")
            if not _KEY.fullmatch(key):
                raise TransformError(name, key or None, f"not a parameter name: {key!r}")
            if key in params:
                raise TransformError(name, key, "given twice")
            if not value or "=" in value or _CONTROL.search(value):
                raise TransformError(name, key, f"bad value {value!r}")
            params[key] = value
    return TransformSpec(name, params)


@dataclass(frozen=True)
class OutputFile:
    """A file of the DIP payload, relative to ``data/``: from bytes in memory or from a file on disk.

    ``made_by`` names the transform (and folder) that made it, ``from_inputs`` the ``DipInput.ref`` of
    each input it comes from. ``sha512``, when given, is the digest ``source`` must have: the packager
    checks it while streaming (the originals are checked against the archive's record on the way).
    """

    relpath: str
    data: bytes | None
    source: Path | None
    made_by: str
    from_inputs: tuple[str, ...] = ()
    sha512: str | None = None

    def __post_init__(self) -> None:
        if self.source is not None:
            object.__setattr__(self, "source", Path(self.source))
        check_logical_path(self.relpath)
        if _CONTROL.search(self.relpath):
            raise ValueError(f"control character in output path: {self.relpath!r}")
        if (self.data is None) == (self.source is None):
            raise ValueError(f"{self.relpath}: give exactly one of data or source")

    @property
    def size(self) -> int:
        """Size in bytes (of the file on disk now, for a ``source``)."""
        if self.data is not None:
            return len(self.data)
        assert self.source is not None  # one of the two, checked at construction
        return self.source.stat().st_size


@dataclass(frozen=True)
class AppliedTransform:
    """A transform as applied: the parameters asked for and every effective value (defaults filled in)."""

    name: str
    folder: str
    requested: dict[str, str]
    effective: dict[str, str]
    summary: str = ""


@dataclass(frozen=True)
class ProvenanceRecord:
    """What ``data/provenance.json`` says about a DIP (the packager adds the ``outputs`` list).

    ``citation`` holds the dataset citation and acknowledgement texts as given by the archive
    (e.g. ``{"citation": ..., "acknowledgement": ...}``); ``software`` name -> version (None: not installed).
    """

    order_id: str
    created: datetime
    inputs: tuple[DipInput, ...]
    transforms: tuple[AppliedTransform, ...]
    software: Mapping[str, str | None]
    citation: Mapping[str, str]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary, identical for identical records (inputs and AIPs sorted)."""
        inputs = sorted(self.inputs, key=lambda i: (i.aip_id, i.version, i.path))
        aips: dict[tuple[str, int], dict[str, Any]] = {}
        for i in inputs:
            entry = aips.setdefault((i.aip_id, i.version), {"aip_id": i.aip_id, "version": i.version,
                                                             "dataset": i.dataset, "files": 0})
            entry["files"] += 1
        return {
            "profile": "oais-archive DIP provenance 1",
            "order": {"id": self.order_id, "created": iso_utc(self.created)},
            "aips": [aips[k] for k in sorted(aips)],
            "inputs": [{"ref": i.ref, "aip_id": i.aip_id, "version": i.version, "path": i.path,
                        "dataset": i.dataset, "size": i.size, "sha512": i.sha512} for i in inputs],
            "transforms": [{"name": t.name, "folder": t.folder, "summary": t.summary,
                            "requested": dict(sorted(t.requested.items())),
                            "parameters": dict(sorted(t.effective.items()))} for t in self.transforms],
            "software": dict(sorted(self.software.items())),
            "citation": dict(self.citation),
            "notes": list(self.notes),
        }


def iso_utc(moment: datetime) -> str:
    """``2025-03-01T12:00:00Z`` (timezone-aware datetimes only; microseconds kept when present)."""
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def refs(inputs: Sequence[DipInput]) -> tuple[str, ...]:
    """The provenance references of ``inputs``."""
    return tuple(i.ref for i in inputs)


__all__ = ["AppliedTransform", "DipError", "DipInput", "InputFixityError", "OutputFile", "ProvenanceRecord",
           "TransformError", "TransformSpec", "iso_utc", "parse_transform", "refs", "safe_segment"]
