"""Describing a staged delivery: validate it, digest every file once, identify formats, read FITS headers.

Produces a ``DescribedDelivery`` (pure values) and the PREMIS events of what was done. The
delivery's payload (a bag's ``data/`` or a plain folder's whole tree) becomes the AIP's original
representation; a bag's tag files are kept under ``submission/``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from datetime import datetime
from importlib import metadata
from pathlib import Path

from oais.domain import premis
from oais.domain.issues import Issue, IssueCode, Severity, error
from oais.domain.package import ContentFile, DescribedDelivery, FileRole
from oais.formats.digest import digest_file
from oais.formats.identify import FITS, identify
from sip.bag import is_tag_file, validate_bag
from sip.receive import StagedDelivery

ORIGINAL_PREFIX = "representations/original/data/"
SUBMISSION_PREFIX = "submission/"
FITS_HEADERS_DOC = "metadata/descriptive/fits-headers.json"

Progress = Callable[[str, int, int], None]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def _walk(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _logical_name(rel: str, issues: list[Issue]) -> str:
    nfc = unicodedata.normalize("NFC", rel)
    if nfc != rel:
        issues.append(Issue(IssueCode.NAME_COLLISION, Severity.INFO,
                            "name stored in Unicode NFC form; the delivered form is kept as original name",
                            rel))
    return nfc


def describe_delivery(staged: StagedDelivery, clock: Callable[[], datetime], new_id: Callable[[], str],
                      progress: Progress | None = None) -> DescribedDelivery:
    tool = premis.archive_agent()
    agents: dict[str, premis.Agent] = {tool.identifier: tool}
    events: list[premis.Event] = []
    issues: list[Issue] = []
    exe = premis.LinkedAgent(tool.identifier, premis.AgentRole.EXECUTING_PROGRAM)

    # 1. validation
    bag_info: dict[str, str] = {}
    if staged.is_bag:
        bagit_agent = premis.software_agent("bagit-python", _version("bagit"))
        agents[bagit_agent.identifier] = bagit_agent
        bag_issues, bag_info = validate_bag(staged.root)
        issues.extend(bag_issues)
        failed = any(i.severity is Severity.ERROR for i in bag_issues)
        events.append(premis.Event(
            identifier=new_id(), type=premis.EventType.VALIDATION, at=clock(),
            outcome=premis.Outcome.FAILURE if failed else (
                premis.Outcome.WARNING if bag_issues else premis.Outcome.SUCCESS),
            detail="BagIt (RFC 8493) validation of the delivery: structure, Payload-Oxum, "
                   "completeness and every manifest checksum",
            outcome_detail="; ".join(str(i) for i in bag_issues) or "valid bag",
            agents=(exe, premis.LinkedAgent(bagit_agent.identifier, premis.AgentRole.VALIDATOR))))
        if failed:
            return DescribedDelivery(staged.kind, True, (), {}, {}, tuple(events), tuple(agents.values()),
                                     tuple(issues), bag_info)
        payload_root = staged.root / "data"
    else:
        payload_root = staged.root

    # 2. the files and their logical paths
    plan: list[tuple[str, Path, FileRole, str]] = []  # logical path, source, role, original name
    for rel in _walk(payload_root):
        plan.append((ORIGINAL_PREFIX + _logical_name(rel, issues), payload_root / rel, FileRole.ORIGINAL, rel))
    if staged.is_bag:
        for rel in _walk(staged.root):
            if not rel.startswith("data/"):
                role = FileRole.SUBMISSION
                plan.append((SUBMISSION_PREFIX + _logical_name(rel, issues), staged.root / rel, role, rel))
    if not any(role is FileRole.ORIGINAL for _, _, role, _ in plan):
        issues.append(error(IssueCode.EMPTY_DELIVERY, "the delivery's payload holds no file"))
        return DescribedDelivery(staged.kind, staged.is_bag, (), {}, {}, tuple(events),
                                 tuple(agents.values()), tuple(issues), bag_info)
    seen: dict[str, str] = {}
    for logical, _, _, original in plan:
        key = logical.casefold()
        if key in seen:
            issues.append(error(IssueCode.NAME_COLLISION,
                                f"collides with {seen[key]!r} after Unicode normalisation or case folding",
                                original))
        seen[key] = original
    if any(i.severity is Severity.ERROR for i in issues):
        return DescribedDelivery(staged.kind, staged.is_bag, (), {}, {}, tuple(events),
                                 tuple(agents.values()), tuple(issues), bag_info)

    # 3. digests (one read pass per file), formats, FITS headers
    total = sum(src.stat().st_size for _, src, _, _ in plan)
    done = 0
    files: list[ContentFile] = []
    sources: dict[str, Path] = {}
    headers: dict[str, object] = {}
    for logical, src, role, original in plan:
        try:
            fixity = digest_file(src)
            fmt = identify(src)
        except OSError as exc:
            issues.append(error(IssueCode.UNREADABLE_FILE, f"cannot read: {exc.strerror}", original))
            continue
        done += fixity.size
        if progress:
            progress("digest", done, total)
        files.append(ContentFile(path=logical, fixity=fixity, role=role, original_name=original,
                                 puid=fmt.puid, mime=fmt.mime, format_name=fmt.name))
        sources[logical] = src
        if fmt is FITS and role is FileRole.ORIGINAL:
            from oais.formats.fits import header_extract

            headers[logical] = header_extract(src)
    if any(i.severity is Severity.ERROR for i in issues):
        return DescribedDelivery(staged.kind, staged.is_bag, (), {}, {}, tuple(events),
                                 tuple(agents.values()), tuple(issues), bag_info)
    at = clock()
    objects = tuple(f.path for f in files)
    events.append(premis.Event(
        identifier=new_id(), type=premis.EventType.MESSAGE_DIGEST_CALCULATION, at=at,
        outcome=premis.Outcome.SUCCESS, detail="sha256 and sha512 of every file, in one read pass",
        outcome_detail=f"{len(files)} files, {done} bytes", agents=(exe,), objects=objects))
    identified = sum(1 for f in files if f.puid)
    events.append(premis.Event(
        identifier=new_id(), type=premis.EventType.FORMAT_IDENTIFICATION, at=at,
        outcome=premis.Outcome.SUCCESS if identified == len(files) else premis.Outcome.WARNING,
        detail="format identification by file signature (PRONOM identifiers)",
        outcome_detail=f"{identified} of {len(files)} files identified", agents=(exe,), objects=objects))
    documents: dict[str, bytes] = {}
    if headers:
        astropy_agent = premis.software_agent("astropy", _version("astropy"))
        agents[astropy_agent.identifier] = astropy_agent
        documents[FITS_HEADERS_DOC] = (json.dumps(headers, indent=2, sort_keys=True, ensure_ascii=False)
                                       + "\n").encode("utf-8")
        bad = sorted(k for k, v in headers.items() if isinstance(v, dict) and "error" in v)
        events.append(premis.Event(
            identifier=new_id(), type=premis.EventType.METADATA_EXTRACTION, at=at,
            outcome=premis.Outcome.WARNING if bad else premis.Outcome.SUCCESS,
            detail=f"FITS header keywords extracted to {FITS_HEADERS_DOC}",
            outcome_detail=(f"{len(headers) - len(bad)} of {len(headers)} FITS files read"
                            + (f"; unreadable: {', '.join(bad)}" if bad else "")),
            agents=(exe, premis.LinkedAgent(astropy_agent.identifier, premis.AgentRole.EXECUTING_PROGRAM)),
            objects=tuple(sorted(headers))))
    return DescribedDelivery(staged.kind, staged.is_bag, tuple(files), sources, documents, tuple(events),
                             tuple(agents.values()), tuple(issues), bag_info)


__all__ = ["describe_delivery", "ORIGINAL_PREFIX", "SUBMISSION_PREFIX", "FITS_HEADERS_DOC", "is_tag_file"]
