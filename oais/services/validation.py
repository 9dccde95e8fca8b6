"""``oais validate``: the whole intake validation of a delivery, without ingesting anything.

Runs exactly what ingest runs before building an AIP (staging, delivery manifest, agreement,
BagIt, names and limits, formats, FITS, viruses) on a temporary staged copy, then removes it.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from oais.domain.issues import Issue, Severity
from oais.services.ingest import IngestRequest, ProgressFn, admit
from sip.describe import describe_delivery
from sip.receive import DeliveryRefused, Limits, stage_delivery


@dataclass
class ValidationResult:
    source: str
    kind: str | None = None
    agreement: str | None = None
    sip_id: str | None = None
    files: int = 0
    bytes: int = 0
    issues: list[Issue] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not any(i.severity is Severity.ERROR for i in self.issues)

    def to_dict(self) -> dict[str, Any]:
        counts = {s.value: sum(1 for i in self.issues if i.severity is s) for s in Severity}
        return {"source": self.source, "valid": self.valid, "kind": self.kind, "agreement": self.agreement,
                "sip_id": self.sip_id, "files": self.files, "bytes": self.bytes, "counts": counts,
                "issues": [i.to_dict() for i in self.issues]}


def validate(request: IngestRequest, *, sessions: sessionmaker[Session] | None, staging: Path | None,
             clock: Callable[[], datetime], new_id: Callable[[], str], limits: Limits = Limits(),
             progress: ProgressFn | None = None) -> ValidationResult:
    result = ValidationResult(source=str(request.source))
    if staging is not None:
        staging.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"validate-{uuid.uuid4().hex[:8]}-", dir=staging))
    try:
        staged = stage_delivery(Path(request.source), work / "delivery", limits)
        result.kind = staged.kind + ("+bag" if staged.is_bag else "")
        intake = admit(sessions, staged, request)
        result.agreement, result.sip_id = intake.agreement_ref, intake.manifest.sip_id
        result.issues.extend(intake.issues)
        if not result.valid:
            return result
        described = describe_delivery(staged, clock, new_id, progress, intake.agreement, scratch=work / "scratch")
        result.issues.extend(described.issues)
        originals = [f for f in described.files if f.role == "original"]
        result.files, result.bytes = len(originals), sum(f.size for f in originals)
    except DeliveryRefused as exc:
        result.issues.extend(exc.issues)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result
