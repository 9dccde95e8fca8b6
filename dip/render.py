"""Rendering an order: inputs + transforms -> one DIP zip (``render_order``).

Steps: check the order (inputs, transform specifications: all of them before anything is rendered), check the
sha512 of every input a transform will read (originals are checked while they are zipped), run each
transform in the order given (inputs sorted by AIP id, version and path, so notes and files come out the same
every time), write README and provenance, package (``dip.package.build_dip_zip``). Work files go to a
temporary folder beside ``dest``, removed at the end.

The same inputs, transforms, order id, creation time and citation give the same payload bytes.
"""

from __future__ import annotations

import hashlib
import platform
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dip.base import Transform
from dip.model import (AppliedTransform, DipError, DipInput, InputFixityError, OutputFile, ProvenanceRecord,
                       TransformError, TransformSpec, iso_utc)
from dip.package import PROVENANCE, README, build_dip_zip
from dip.transforms import DEFAULT_TRANSFORM, get_transform

BUFFER = 1 << 20
SOFTWARE = ("astropy", "numpy", "pillow", "sunpy")


@dataclass(frozen=True)
class RenderResult:
    """The DIP written: where, its sha256 and size, its payload files (``data/...``) and the notes."""

    zip_path: Path
    sha256: str
    size: int
    files: list[str]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PlannedTransform:
    transform: Transform
    spec: TransformSpec
    effective: dict[str, str]
    folder: str


def plan_transforms(specs: Sequence[TransformSpec]) -> list[PlannedTransform]:
    """Validate every spec (``TransformError`` on the first bad one) and give each its output folder:
    the transform's name, then ``<name>-2``, ``<name>-3`` for the same transform with other parameters."""
    plan: list[PlannedTransform] = []
    seen: dict[str, list[dict[str, str]]] = {}
    for spec in specs or [TransformSpec(DEFAULT_TRANSFORM)]:
        transform = get_transform(spec.name)
        effective = transform.effective(spec.params)
        earlier = seen.setdefault(spec.name, [])
        if effective in earlier:
            raise TransformError(spec.name, None, f"asked twice with the same parameters ({spec})")
        earlier.append(effective)
        folder = spec.name if len(earlier) == 1 else f"{spec.name}-{len(earlier)}"
        plan.append(PlannedTransform(transform, spec, effective, folder))
    return plan


def software_versions() -> dict[str, str | None]:
    """Versions of this software, Python and the libraries the transforms use (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    from oais import __version__

    out: dict[str, str | None] = {"oais-archive": __version__, "python": platform.python_version()}
    for name in SOFTWARE:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def check_inputs(inputs: Sequence[DipInput]) -> list[DipInput]:
    """The inputs sorted; ``DipError`` when empty, when a file is listed twice, or when two AIP ids would
    share a folder name."""
    if not inputs:
        raise DipError("an order needs at least one input file")
    ordered = sorted(inputs, key=lambda i: (i.aip_id, i.version, i.path))
    keys: dict[str, str] = {}
    for inp in ordered:
        if inp.key in keys:
            other = keys[inp.key]
            what = "listed twice" if other == inp.ref else f"has the same folder name as {other}"
            raise DipError(f"input {inp.ref} {what}")
        keys[inp.key] = inp.ref
    return ordered


def verify_input(inp: DipInput) -> None:
    """``InputFixityError`` unless ``inp.source`` has the recorded size and sha512 (streamed)."""
    digest, size = hashlib.sha512(), 0
    with open(inp.source, "rb") as f:
        while chunk := f.read(BUFFER):
            digest.update(chunk)
            size += len(chunk)
    if size != inp.size:
        raise InputFixityError(inp.ref, "size", str(inp.size), str(size))
    if digest.hexdigest() != inp.sha512:
        raise InputFixityError(inp.ref, "sha512", inp.sha512, digest.hexdigest())


def render_order(inputs: Sequence[DipInput], transforms: Sequence[TransformSpec], *, order_id: str,
                 created: datetime, citation: Mapping[str, str], dest: Path,
                 inputs_verified: bool = False) -> RenderResult:
    """Render ``inputs`` with ``transforms`` (``original`` when none) into the DIP zip ``dest``.

    ``citation`` holds the texts a user must cite and acknowledge (e.g. ``{"citation": ..., "acknowledgement":
    ...}``); they go to README.txt and provenance.json. Raises ``TransformError`` (a bad specification,
    before anything is read), ``InputFixityError`` (a source copy is not the archived file) or ``DipError``.
    ``inputs_verified``: the caller has just checked every source's sha512 (the order worker does, when
    it picks the replica to read), so the inputs are not hashed a second time before rendering; originals
    are still checked while they are copied into the zip.
    """
    plan = plan_transforms(list(transforms))
    ordered = check_inputs(inputs)
    if created.tzinfo is None:
        raise DipError("created must be timezone-aware")
    if not inputs_verified and any(p.spec.name != DEFAULT_TRANSFORM for p in plan):
        for inp in ordered:
            verify_input(inp)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    outputs: list[OutputFile] = []
    with tempfile.TemporaryDirectory(prefix=".dip-work-", dir=dest.parent) as work:
        for p in plan:
            outputs += p.transform.render(ordered, p.spec.params, folder=p.folder, workdir=Path(work), notes=notes)
        record = ProvenanceRecord(
            order_id=order_id, created=created, inputs=tuple(ordered),
            transforms=tuple(AppliedTransform(p.spec.name, p.folder, dict(p.spec.params), p.effective,
                                              p.transform.summary) for p in plan),
            software=software_versions(), citation=dict(citation), notes=tuple(notes))
        readme = make_readme(record, outputs)
        sha256, size = build_dip_zip(dest, outputs, order_id=order_id, created=created,
                                     provenance=record.to_dict(), readme=readme)
    files = sorted([f"data/{README}", f"data/{PROVENANCE}", *(f"data/{o.relpath}" for o in outputs)])
    return RenderResult(dest, sha256, size, files, notes)


def make_readme(record: ProvenanceRecord, outputs: Sequence[OutputFile]) -> str:
    """The DIP's README.txt: what it is, what is in it, how to check and cite it."""
    doc = record.to_dict()
    total = sum(o.size for o in outputs)
    lines = [f"Dissemination Information Package {record.order_id}",
             f"Created {iso_utc(record.created)} by oais-archive {record.software.get('oais-archive')}",
             "",
             "This folder is a BagIt 1.0 bag (RFC 8493): manifest-sha256.txt lists the SHA-256 of every file",
             "under data/. Check it with any BagIt tool, e.g. `bagit.py --validate <this folder>`.",
             "data/provenance.json says, for every file, which archived file(s) it was made from, by which",
             "transform with which parameters, and with which software versions.",
             "",
             f"Contents ({len(outputs)} files, {total} bytes, besides this README and provenance.json)"]
    for t in record.transforms:
        made = sum(1 for o in outputs if o.made_by == t.folder)
        params = ", ".join(f"{k}={v}" for k, v in sorted(t.effective.items()))
        lines.append(f"  {t.folder}: {t.summary}" + (f" [{params}]" if params else "") + f" - {made} file(s)")
    lines += ["", "Archived sources (AIP id, version, dataset, files used)"]
    lines += [f"  {a['aip_id']} version {a['version']} ({a['dataset']}): {a['files']} file(s)" for a in doc["aips"]]
    if record.citation:
        lines += ["", "How to cite and acknowledge these data"]
        for key, text in record.citation.items():
            lines.append(f"  {key}: {text}")
    if record.notes:
        lines += ["", "Notes"]
        lines += [f"  - {n}" for n in record.notes]
    return "\n".join(lines) + "\n"


__all__ = ["PlannedTransform", "RenderResult", "check_inputs", "make_readme", "plan_transforms", "render_order",
           "software_versions", "verify_input"]
