"""Validating and describing a staged delivery under its submission agreement.

Every check runs and every problem is reported (a validation report is a list of coded issues);
the PREMIS events say what was done. The delivery's payload (a bag's ``data/`` or a plain folder's
tree) becomes the AIP's original representation, bit for bit; a bag's tag files and a delivery
manifest are kept under ``submission/``. When the agreement allows mending, the changes go into a
``normalized`` representation beside the original (see ``sip.mending``).
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path

from oais.domain import premis
from oais.domain.agreement import Agreement, Mending, Requirement
from oais.domain.issues import Issue, IssueCode, Severity, error, info, issue
from oais.domain.package import ContentFile, DescribedDelivery, FileRole
from oais.formats.digest import digest_file
from sip.names import is_system_junk, unsafe_reason
from sip.receive import StagedDelivery

ORIGINAL_PREFIX = "representations/original/data/"
NORMALIZED_PREFIX = "representations/normalized/data/"
SUBMISSION_PREFIX = "submission/"
FITS_HEADERS_DOC = "metadata/descriptive/fits-headers.json"
MANIFEST_NAME = "delivery.xml"

Progress = Callable[[str, int, int], None]
DEFAULT = Agreement(identifier="default", version=1, producer="*", datasets=("*",))


def tool_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class _Item:
    logical: str  # path in the AIP
    source: Path  # staged copy
    role: FileRole
    original: str  # path as delivered (relative to the delivery root)


class _Run:
    """Collects issues, events and agents for one delivery."""

    def __init__(self, clock: Callable[[], datetime], new_id: Callable[[], str]) -> None:
        self.clock, self.new_id = clock, new_id
        self.issues: list[Issue] = []
        self.events: list[premis.Event] = []
        tool = premis.archive_agent()
        self.agents: dict[str, premis.Agent] = {tool.identifier: tool}
        self.exe = premis.LinkedAgent(tool.identifier, premis.AgentRole.EXECUTING_PROGRAM)

    def agent(self, name: str, dist: str | None = None, version: str | None = None) -> premis.Agent:
        a = premis.software_agent(name, version or tool_version(dist or name))
        self.agents.setdefault(a.identifier, a)
        return a

    def event(self, type_: premis.EventType, detail: str, found: list[Issue], objects: tuple[str, ...] = (),
              extra: tuple[premis.LinkedAgent, ...] = (), summary: str = "") -> None:
        worst = {i.severity for i in found}
        outcome = (premis.Outcome.FAILURE if Severity.ERROR in worst
                   else premis.Outcome.WARNING if Severity.WARNING in worst else premis.Outcome.SUCCESS)
        note = "; ".join(str(i) for i in found[:50]) + (f"; … {len(found) - 50} more" if len(found) > 50 else "")
        self.events.append(premis.Event(
            identifier=self.new_id(), type=type_, at=self.clock(), outcome=outcome, detail=detail,
            outcome_detail=(summary + ("; " if summary and note else "") + note) or "no problem found",
            agents=(self.exe, *extra), objects=objects))

    @property
    def failed(self) -> bool:
        return any(i.severity is Severity.ERROR for i in self.issues)


def _walk(root: Path) -> list[str]:
    """The files under ``root`` (following links, as ``Path.is_file``), as sorted POSIX paths relative
    to it. ``os.scandir`` rather than ``Path.rglob``: a delivery may hold many thousands of files."""
    found: list[str] = []
    stack = [(os.fspath(root), "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as it:
            for entry in it:
                rel = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, rel + "/"))
                elif entry.is_file():
                    found.append(rel)
    found.sort()
    return found


def describe_delivery(staged: StagedDelivery, clock: Callable[[], datetime], new_id: Callable[[], str],
                      progress: Progress | None = None, agreement: Agreement | None = None,
                      scratch: Path | None = None) -> DescribedDelivery:
    """Run every check of ``agreement`` (default: every check, any format, no mending)."""
    agreement = agreement or DEFAULT
    run = _Run(clock, new_id)
    tmpdir = None  # temporary files of the checks stay in the staging area when there is one
    if scratch is not None:
        tmpdir = scratch / "tmp"
        tmpdir.mkdir(parents=True, exist_ok=True)
    bag_info: dict[str, str] = {}
    unlisted: set[str] = set()

    # 1. BagIt
    if staged.is_bag:
        from sip.bagit_check import validate_bag

        report = validate_bag(staged.root, accepted_algorithms=agreement.checksum_algorithms)
        found = list(report.issues)
        if agreement.allows(Mending.COMPUTE_CHECKSUMS):
            for i, x in enumerate(found):
                if x.code is IssueCode.BAG_UNEXPECTED_FILE and x.path:
                    unlisted.add(x.path)
                    found[i] = info(IssueCode.MENDED_CHECKSUMS_COMPUTED,
                                    "in no manifest: checksums computed by the archive", x.path)
            if unlisted:  # the files the producer did not count explain a Payload-Oxum difference
                found = [info(IssueCode.MENDED_CHECKSUMS_COMPUTED, f"{x.message} (explained by the "
                              f"{len(unlisted)} unlisted files)", x.path)
                         if x.code is IssueCode.BAG_OXUM_MISMATCH else x for x in found]
        bag_info = {k: "; ".join(v) for k, v in report.info.items()}
        run.issues.extend(found)
        run.event(premis.EventType.VALIDATION,
                  f"BagIt (RFC 8493) validation: bagit.txt, bag-info, Payload-Oxum, manifests, completeness "
                  f"and every checksum ({', '.join(report.algorithms) or 'no manifest'})", found,
                  extra=(premis.LinkedAgent(run.exe.identifier, premis.AgentRole.VALIDATOR),))
        if run.failed:
            return _result(staged, run, [], {}, bag_info)
        payload_root = staged.root / "data"
    else:
        payload_root = staged.root

    # 2. what the delivery holds, and where each file goes in the AIP
    items: list[_Item] = []
    everything = _walk(payload_root)
    for rel in everything:
        if not staged.is_bag and rel == MANIFEST_NAME:
            continue
        items.append(_Item(ORIGINAL_PREFIX + unicodedata.normalize("NFC", rel), payload_root / rel,
                           FileRole.ORIGINAL, rel if not staged.is_bag else f"data/{rel}"))
    for rel in (everything if payload_root == staged.root else _walk(staged.root)):
        if (staged.is_bag and not rel.startswith("data/")) or rel == MANIFEST_NAME:
            items.append(_Item(SUBMISSION_PREFIX + unicodedata.normalize("NFC", rel), staged.root / rel,
                               FileRole.SUBMISSION, rel))
    originals = [it for it in items if it.role is FileRole.ORIGINAL]
    if not originals:
        run.issues.append(error(IssueCode.EMPTY_DELIVERY, "the delivery's payload holds no file"))
        return _result(staged, run, [], {}, bag_info)
    _check_names_and_limits(run, items, agreement)
    if run.failed:
        return _result(staged, run, [], {}, bag_info)

    # 3. digests: computed by the pass that copied each file into staging; read again only if missing
    fixities = {}
    pending = []
    for it in items:
        known = staged.digests.get(it.source)
        if known is not None:
            fixities[it.logical] = known
        else:
            pending.append(it)
    total = sum(it.source.stat().st_size for it in pending)
    done = 0
    for it in pending:
        try:
            fixities[it.logical] = digest_file(it.source)
        except OSError as exc:
            run.issues.append(error(IssueCode.UNREADABLE_FILE, f"cannot read: {exc.strerror}", it.original))
            continue
        done += fixities[it.logical].size
        if progress:
            progress("digest", done, total)
    if run.failed:
        return _result(staged, run, [], {}, bag_info)
    done = sum(fixities[it.logical].size for it in items)
    computed = [it.logical for it in originals if not staged.is_bag or it.original in unlisted]
    run.event(premis.EventType.MESSAGE_DIGEST_CALCULATION,
              "sha256 and sha512 of every file, in the read pass that copied it into staging",
              [], tuple(it.logical for it in items),
              summary=f"{len(items)} files, {done} bytes"
              + (f"; {len(computed)} files had no producer checksum" if computed else ""))

    # 4 to 6: the virus scanner (a separate process, reading every file) runs on the other core while
    # formats and FITS are checked here; its verdict is read, and its event recorded, at step 6.
    with ThreadPoolExecutor(1, thread_name_prefix="virus-scan") as background:
        scanning = None
        if agreement.virus_check is not Requirement.OFF:
            from oais.formats.virus import scan

            scanning = background.submit(scan, [it.source for it in items],
                                         {it.source: it.original for it in items}, workdir=tmpdir)

        # 4. formats
        from oais.formats.identify import check_formats, identify_many, is_fits

        formats = identify_many([it.source for it in items])
        by_name = {it.original: formats[it.source] for it in originals}
        found = check_formats(by_name, agreement.accepted_formats)
        run.issues.extend(found)
        tools = sorted({getattr(f, "tool", None) or "oais-archive signatures" for f in formats.values()})
        run.event(premis.EventType.FORMAT_IDENTIFICATION, f"format identification (PRONOM) with {', '.join(tools)}",
                  found, tuple(it.logical for it in items),
                  summary=f"{sum(1 for f in formats.values() if f.puid)} of {len(items)} files identified")

        # 5. FITS
        fits_items = [it for it in originals if is_fits(formats[it.source])]
        headers: dict[str, object] = {}
        fixable: list[_Item] = []
        if fits_items:
            from oais.formats.fits import check_fits_many

            astropy_agent = run.agent("astropy")
            found = []
            # fitsverify runs on the other core while astropy reads the files here (check_fits_many)
            with closing(check_fits_many([(it.source, it.original) for it in fits_items],
                                         required_keywords=agreement.required_keywords,
                                         fitsverify=agreement.fitsverify is not Requirement.OFF,
                                         workdir=tmpdir)) as reports:
                for it, rep in zip(fits_items, reports, strict=True):
                    for x in rep.issues:
                        if (x.code is IssueCode.FITS_FITSVERIFY_ERROR
                                and agreement.fitsverify is not Requirement.REQUIRED):
                            # astropy reads the file; fitsverify's stricter verdict is reported, not fatal
                            x = issue(IssueCode.FITS_FITSVERIFY, f"{x.message} (a fitsverify error; fatal only "
                                                                 f"when the agreement requires fitsverify)", x.path)
                        found.append(x)
                    headers[it.logical] = {"hdus": rep.hdus, "checksum": rep.checksum_status}
                    if any(i.code is IssueCode.FITS_VERIFY for i in rep.issues):
                        fixable.append(it)
            run.issues.extend(found)
            run.event(premis.EventType.VALIDATION,
                      "FITS validation: structure, every HDU's data read, CHECKSUM/DATASUM, required keywords"
                      + (", fitsverify" if agreement.fitsverify is not Requirement.OFF else ""), found,
                      tuple(it.logical for it in fits_items),
                      extra=(premis.LinkedAgent(astropy_agent.identifier, premis.AgentRole.VALIDATOR),),
                      summary=f"{len(fits_items)} FITS files")
            run.event(premis.EventType.METADATA_EXTRACTION, f"FITS header keywords extracted to {FITS_HEADERS_DOC}",
                      [], tuple(sorted(headers)),
                      extra=(premis.LinkedAgent(astropy_agent.identifier, premis.AgentRole.EXECUTING_PROGRAM),),
                      summary=f"{len(headers)} FITS files")

        # 6. viruses (the scan ran in a thread during steps 4 and 5)
        if scanning is not None:
            vr = scanning.result()
            found = list(vr.issues)
            if agreement.virus_check is Requirement.REQUIRED:
                found = [error(IssueCode.VIRUS_SCAN_FAILED, f"virus check required by {agreement.ref}: {i.message}",
                               i.path) if i.code is IssueCode.VIRUS_SCANNER_MISSING else i for i in found]
            run.issues.extend(found)
            extra = ()
            if vr.engine:
                clam = run.agent("ClamAV", version=vr.engine)
                extra = (premis.LinkedAgent(clam.identifier, premis.AgentRole.EXECUTING_PROGRAM),)
            run.event(premis.EventType.VIRUS_CHECK, "virus check of every file with ClamAV", found,
                      tuple(it.logical for it in items), extra=extra,
                      summary=f"signatures: {vr.signatures}" if vr.signatures else "")

    if run.failed:
        return _result(staged, run, [], {}, bag_info)

    files = [ContentFile(path=it.logical, fixity=fixities[it.logical], role=it.role, original_name=it.original,
                         puid=formats[it.source].puid, mime=formats[it.source].mime,
                         format_name=formats[it.source].name) for it in items]
    sources = {it.logical: it.source for it in items}
    documents = {}
    if headers:
        documents[FITS_HEADERS_DOC] = (json.dumps(headers, indent=2, sort_keys=True, ensure_ascii=False,
                                                  default=str) + "\n").encode("utf-8")

    # 7. mending, into a normalized representation beside the untouched original
    if agreement.mending and scratch is not None:
        from sip.mending import mend

        mended = mend(run, agreement, originals, fixities, fixable, unlisted, scratch)
        files.extend(mended.files)
        sources.update(mended.sources)
    return _result(staged, run, files, sources, bag_info, documents)


def _check_names_and_limits(run: _Run, items: list[_Item], agreement: Agreement) -> None:
    seen: dict[str, str] = {}
    for it in items:
        key = unicodedata.normalize("NFC", it.logical).casefold()
        if key in seen:
            run.issues.append(error(IssueCode.NAME_COLLISION,
                                    f"same name as {seen[key]!r} after Unicode normalisation or case folding",
                                    it.original))
        seen[key] = it.original
        if it.role is not FileRole.ORIGINAL:
            continue
        if is_system_junk(it.original):
            if not agreement.allows(Mending.REMOVE_SYSTEM_FILES):
                run.issues.append(issue(IssueCode.SYSTEM_JUNK, "operating-system file kept as delivered",
                                        it.original))
        elif (why := unsafe_reason(it.original)) and not agreement.allows(Mending.SAFE_NAMES):
            run.issues.append(issue(IssueCode.UNSAFE_NAME, why, it.original))
    originals = [it for it in items if it.role is FileRole.ORIGINAL]
    if agreement.max_files is not None and len(originals) > agreement.max_files:
        run.issues.append(error(IssueCode.SIZE_LIMIT, f"{len(originals)} files, the agreement "
                                                      f"{agreement.ref} allows {agreement.max_files}"))
    total = 0
    for it in originals:
        size = it.source.stat().st_size
        total += size
        if agreement.max_file_bytes is not None and size > agreement.max_file_bytes:
            run.issues.append(error(IssueCode.SIZE_LIMIT, f"{size} bytes, the agreement {agreement.ref} allows "
                                                          f"{agreement.max_file_bytes} per file", it.original))
    if agreement.max_delivery_bytes is not None and total > agreement.max_delivery_bytes:
        run.issues.append(error(IssueCode.SIZE_LIMIT, f"{total} bytes in all, the agreement {agreement.ref} "
                                                      f"allows {agreement.max_delivery_bytes}"))


def _result(staged: StagedDelivery, run: _Run, files: list[ContentFile], sources: dict[str, Path],
            bag_info: dict[str, str], documents: dict[str, bytes] | None = None) -> DescribedDelivery:
    return DescribedDelivery(staged.kind, staged.is_bag, tuple(files), sources, documents or {}, tuple(run.events),
                             tuple(run.agents.values()), tuple(run.issues), bag_info)


__all__ = ["describe_delivery", "ORIGINAL_PREFIX", "NORMALIZED_PREFIX", "SUBMISSION_PREFIX", "FITS_HEADERS_DOC"]
