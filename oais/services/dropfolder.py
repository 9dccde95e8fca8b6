"""The drop folder: deliveries placed in a folder are ingested once complete, then filed away.

A delivery in the drop folder is one entry at its top level:

- a BagIt bag (a folder with ``bagit.txt``), complete once its tree has not changed between two polls;
- a plain folder, complete once it holds a ``READY`` file (the producer writes it last);
- a ``.zip`` / ``.tar`` / ``.tar.gz`` / ``.tgz`` file, complete once unchanged between two polls.

After ingest the entry is moved to ``done/`` or ``failed/`` inside the drop folder, with the JSON
report beside it (``<name>.report.json``). The dataset comes from the delivery's ``delivery.xml``,
else from the drop folder's default dataset; without one the delivery fails with a clear report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oais.services.ingest import IngestContext, IngestRequest, ingest

READY = "READY"
DONE, FAILED = "done", "failed"
ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz")


@dataclass
class DropFolder:
    path: Path
    dataset: str | None = None
    producer: str | None = None
    agreement: str | None = None
    _seen: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def _signature(self, entry: Path) -> tuple[int, int, int]:
        """(files, bytes, newest mtime): equal on two polls means nothing is being written."""
        if entry.is_file():
            st = entry.stat()
            return (1, st.st_size, st.st_mtime_ns)
        files = size = newest = 0
        for dirpath, _dirs, names in os.walk(entry):
            for name in names:
                st = os.lstat(os.path.join(dirpath, name))
                files, size, newest = files + 1, size + st.st_size, max(newest, st.st_mtime_ns)
        return (files, size, newest)

    def ready(self) -> list[Path]:
        """Entries complete now. Bags and archives need the same signature on two successive polls."""
        out = []
        for entry in sorted(self.path.iterdir()):
            if entry.name in (DONE, FAILED) or entry.name.startswith(".") or entry.name.endswith(".report.json"):
                continue
            if entry.is_dir() and (entry / READY).is_file():
                out.append(entry)
                continue
            if not ((entry.is_dir() and (entry / "bagit.txt").is_file())
                    or (entry.is_file() and entry.name.lower().endswith(ARCHIVES))):
                continue
            sig = self._signature(entry)
            if self._seen.get(entry.name) == sig:
                out.append(entry)
            else:
                self._seen[entry.name] = sig
        return out

    def dataset_for(self, entry: Path) -> str | None:
        manifest = entry / "delivery.xml"
        if entry.is_dir() and manifest.is_file():
            from sip.agreement import AgreementError, read_delivery_manifest

            try:
                m, _ = read_delivery_manifest(entry)
            except AgreementError:
                m = None
            if m is not None and m.dataset:
                return m.dataset
        return self.dataset


def poll(drop: DropFolder, ctx: IngestContext,
         on_result: Callable[[Path, dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Ingest every complete delivery in the drop folder once; file each under done/ or failed/."""
    results = []
    for entry in drop.ready():
        dataset = drop.dataset_for(entry)
        if not dataset:
            report: dict[str, Any] = {
                "disposition": "refused", "aip_id": None,
                "issues": [{"code": "SIP-E002", "severity": "error", "path": entry.name,
                            "message": "no dataset: name it in delivery.xml or give the drop folder a default "
                                       "dataset (oais watch --dataset)", "reference": "oais-archive drop folder"}]}
        else:
            result = ingest(IngestRequest(entry, dataset, drop.producer, drop.agreement), ctx)
            report = result.to_dict()
        target_dir = drop.path / (DONE if report.get("aip_id") else FAILED)
        target_dir.mkdir(exist_ok=True)
        target = target_dir / entry.name
        n = 1
        while target.exists() or target.with_name(target.name + ".report.json").exists():
            target = target_dir / f"{entry.name}.{n}"
            n += 1
        os.rename(entry, target)
        report_path = target.with_name(target.name + ".report.json")
        tmp = report_path.with_name(report_path.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, report_path)
        drop._seen.pop(entry.name, None)
        report = {**report, "entry": entry.name, "moved_to": str(target), "report": str(report_path)}
        results.append(report)
        if on_result:
            on_result(entry, report)
    return results
