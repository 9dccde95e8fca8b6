"""Mending what the submission agreement allows, into a ``normalized`` representation.

The original representation stays exactly as delivered. When at least one change is made, the
AIP gets ``representations/normalized/data/…``: every original file except removed system junk,
under its safe name, with fixed FITS files in place of the originals. Unchanged files are the same
bitstreams (OCFL stores them once). Every change is one PREMIS event naming the file and the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from oais.domain import premis
from oais.domain.agreement import Agreement, Mending
from oais.domain.fixity import Fixity
from oais.domain.issues import IssueCode, info
from oais.domain.package import ContentFile, FileRole
from oais.formats.digest import digest_file
from sip.names import is_system_junk, safe_name, unsafe_reason

if TYPE_CHECKING:
    from sip.describe import _Item, _Run

NORMALIZED_PREFIX = "representations/normalized/data/"


@dataclass
class Mended:
    files: list[ContentFile] = field(default_factory=list)
    sources: dict[str, Path] = field(default_factory=dict)


def mend(run: _Run, agreement: Agreement, originals: Sequence[_Item], fixities: dict[str, Fixity],
         fixable: Sequence[_Item], unlisted: set[str], scratch: Path) -> Mended:
    from oais.formats.identify import identify

    changes = 0
    plan: list[tuple[_Item, str, Path]] = []  # item, new relative name, source of the normalized copy
    taken: set[str] = set()
    fixable_ids = {id(it) for it in fixable}
    for it in originals:
        rel = it.logical.removeprefix("representations/original/data/")
        if it.original in unlisted:
            run.issues.append(info(IssueCode.MENDED_CHECKSUMS_COMPUTED, "sha256 and sha512 computed by the archive",
                                   it.original))
            _event(run, premis.EventType.MESSAGE_DIGEST_CALCULATION,
                   "checksums computed by the archive: the producer's manifests did not list this file",
                   "sha256 and sha512 recorded as computed by the archive", it.logical)
        if agreement.allows(Mending.REMOVE_SYSTEM_FILES) and is_system_junk(rel):
            run.issues.append(info(IssueCode.MENDED_JUNK_REMOVED, "left out of the normalized representation",
                                   it.original))
            _event(run, premis.EventType.NORMALIZATION,
                   "operating-system file left out of the normalized representation (kept in the original)",
                   f"{it.original} not copied", it.logical)
            changes += 1
            continue
        new = rel
        if agreement.allows(Mending.SAFE_NAMES) and unsafe_reason(rel):
            new = safe_name(rel)
        base, n = new, 2
        while new.casefold() in taken:
            new = f"{base}_{n}"
            n += 1
        taken.add(new.casefold())
        if new != rel:
            run.issues.append(info(IssueCode.MENDED_RENAMED, f"normalized copy named {new!r}", it.original))
            _event(run, premis.EventType.FILENAME_CHANGE, f"unsafe name replaced: {unsafe_reason(rel) or 'collision'}",
                   f"{rel!r} -> {new!r}", NORMALIZED_PREFIX + new)
            changes += 1
        source = it.source
        if agreement.allows(Mending.FIX_FITS) and id(it) in fixable_ids:
            from oais.formats.fits_fix import write_fixed_copy

            target = scratch / "normalized" / new
            fixes = write_fixed_copy(it.source, target)
            if fixes:
                source = target
                run.issues.append(info(IssueCode.MENDED_FITS_NORMALIZED,
                                       f"fixed copy in the normalized representation: {'; '.join(fixes)[:300]}",
                                       it.original))
                astropy_agent = run.agent("astropy")
                _event(run, premis.EventType.NORMALIZATION,
                       "FITS written anew with astropy output_verify='fix' (non-standard cards fixed)",
                       "; ".join(fixes)[:2000], NORMALIZED_PREFIX + new,
                       (premis.LinkedAgent(astropy_agent.identifier, premis.AgentRole.EXECUTING_PROGRAM),))
                changes += 1
        plan.append((it, new, source))
    if not changes:
        return Mended()
    out = Mended()
    for it, new, source in plan:
        logical = NORMALIZED_PREFIX + new
        fixity = fixities[it.logical] if source == it.source else digest_file(source)
        fmt = identify(source)
        out.files.append(ContentFile(path=logical, fixity=fixity, role=FileRole.NORMALIZED,
                                     original_name=it.original, puid=fmt.puid, mime=fmt.mime,
                                     format_name=fmt.name))
        out.sources[logical] = source
    return out


def _event(run: _Run, type_: premis.EventType, detail: str, outcome: str, obj: str,
           extra: tuple[premis.LinkedAgent, ...] = ()) -> None:
    run.events.append(premis.Event(identifier=run.new_id(), type=type_, at=run.clock(),
                                   outcome=premis.Outcome.SUCCESS, detail=detail, outcome_detail=outcome,
                                   agents=(run.exe, *extra), objects=(obj,)))
