"""Building one AIP version from a described delivery: PREMIS, METS and the OCFL plan.

Pure apart from reading nothing at all: identical input (ids and times included) gives identical
METS, PREMIS and inventory bytes. Writing is the storage layer's job; ``BuiltAip.entries()`` tells
it what to write and the sha512 each written file must have.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aip import ocfl
from aip.mets import build_mets
from aip.premis import build_premis
from oais.domain import premis
from oais.domain.issues import Issue
from oais.domain.package import AipVersionDescription, ContentFile, DescribedDelivery, FileRole
from oais.formats.digest import digest_bytes
from oais.formats.identify import JSON_, XML
from oais.domain.storage import Entry

METS_PATH = "METS.xml"
PREMIS_PATH = "metadata/preservation/premis.xml"


def entry_size(entry: Entry) -> int:
    """Bytes of one file to write: its data in memory, or its staged source file."""
    if entry.data is not None:
        return len(entry.data)
    if entry.size is not None:
        return entry.size
    assert entry.source is not None
    return entry.source.stat().st_size


@dataclass
class BuiltAip:
    aip_id: str
    version: int
    description: AipVersionDescription
    events: tuple[premis.Event, ...]
    agents: dict[str, premis.Agent]
    mets: bytes
    premis: bytes
    plan: ocfl.ObjectPlan
    object_path: str
    sources: dict[str, Path]
    documents: dict[str, bytes]
    issues: tuple[Issue, ...] = ()
    metadata_files: tuple[ContentFile, ...] = field(default=())
    new_id: Callable[[], str] | None = None

    @property
    def payload_bytes(self) -> int:
        return sum(f.size for f in self.description.files if f.role is FileRole.ORIGINAL)

    @property
    def total_bytes(self) -> int:
        return sum(entry_size(e) for e in self.entries())

    @property
    def inventory_sha512(self) -> str:
        return hashlib.sha512(self.plan.inventory_json).hexdigest()

    def fits_headers(self) -> dict[str, dict[str, Any]]:
        """Logical path -> extracted FITS header keywords (from the descriptive metadata document)."""
        import json

        data = self.documents.get("metadata/descriptive/fits-headers.json")
        return json.loads(data) if data else {}

    def metadata_documents(self) -> list[tuple[str, bytes]]:
        """The XML documents to validate against the official schemas before anything is put in place."""
        return [(PREMIS_PATH, self.premis), (METS_PATH, self.mets)]

    def catalog_files(self) -> list[ContentFile]:
        return sorted((*self.description.files, *self.metadata_files), key=lambda f: f.path)

    def content_path(self, logical_path: str) -> str:
        """Where ``logical_path`` is stored in the object (the state is indexed once, not per call)."""
        index = self.__dict__.get("_content_paths")
        if index is None:
            manifest = self.plan.inventory["manifest"]
            state = ocfl.logical_state(self.plan.inventory)
            index = {path: sorted(manifest[digest])[0] for path, digest in state.items()}
            self.__dict__["_content_paths"] = index
        return index[logical_path]

    def entries(self) -> list[Entry]:
        """Every file of the object, content first, root inventory sidecar last. Made once: the ingest
        asks for them four times (sizes, each location, the catalog), and the in-memory documents
        (METS, PREMIS, inventories: megabytes for a large delivery) are hashed here."""
        made: list[Entry] | None = self.__dict__.get("_entries")
        if made is None:
            made = self.__dict__["_entries"] = list(self._make_entries())
        return made

    def _make_entries(self) -> Iterator[Entry]:
        for item in self.plan.entries:
            if isinstance(item.source, bytes):
                yield Entry(item.path, hashlib.sha512(item.source).hexdigest(), data=item.source,
                            sha256=hashlib.sha256(item.source).hexdigest())
                continue
            fixity = self.plan.state[item.source]
            if item.source in self.sources:
                yield Entry(item.path, fixity.sha512, source=self.sources[item.source], sha256=fixity.sha256,
                            size=fixity.size)
            else:
                yield Entry(item.path, fixity.sha512, data=self._generated(item.source), sha256=fixity.sha256)

    def _generated(self, logical: str) -> bytes:
        if logical == METS_PATH:
            return self.mets
        if logical == PREMIS_PATH:
            return self.premis
        return self.documents[logical]

    def storage_events(self, locations: Sequence[str], at: datetime, *,
                       links_checked_by: str | None = None) -> list[premis.Event]:
        """One fixity-check event per copy written and verified at ingest (catalog journal only).
        With ``links_checked_by``, the first location's files hard-linked to the staged delivery were
        not re-read there but read in full, and checked, as the source of that location's verified
        copies (``oais.storage.base``, ``check_links``); its event says so."""
        assert self.new_id is not None
        exe = premis.LinkedAgent(premis.archive_agent().identifier, premis.AgentRole.EXECUTING_PROGRAM)

        def detail(i: int, name: str) -> str:
            if i == 0 and links_checked_by is not None:
                return (f"copy written to storage location {name!r} and flushed; its files hard-linked to the "
                        f"staged delivery verified (sha256) by reading them into the verified copies of "
                        f"{links_checked_by!r}, every other file re-read and verified (sha256)")
            return f"copy written to storage location {name!r}, flushed, re-read and verified (sha256)"

        return [premis.Event(
            identifier=self.new_id(), type=premis.EventType.FIXITY_CHECK, at=at,
            outcome=premis.Outcome.SUCCESS, detail=detail(i, name),
            outcome_detail=f"{len(self.plan.entries)} files of {self.plan.head} match", agents=(exe,),
            objects=(self.aip_id,)) for i, name in enumerate(locations)]


def build_aip(described: DescribedDelivery, *, aip_id: str, dataset: str, producer: str,
              delivery_id: str, created: datetime, new_id: Callable[[], str]) -> BuiltAip:
    agents = {a.identifier: a for a in described.agents}
    tool = premis.archive_agent()
    agents.setdefault(tool.identifier, tool)
    exe = premis.LinkedAgent(tool.identifier, premis.AgentRole.EXECUTING_PROGRAM)

    documents = dict(described.documents)
    doc_files = tuple(
        ContentFile(path=path, fixity=digest_bytes(data), role=FileRole.METADATA,
                    puid=(JSON_ if path.endswith(".json") else XML).puid,
                    mime=(JSON_ if path.endswith(".json") else XML).mime,
                    format_name=(JSON_ if path.endswith(".json") else XML).name)
        for path, data in sorted(documents.items()))
    files = tuple(sorted((*described.files, *doc_files), key=lambda f: f.path))
    known = {f.path for f in files}

    def linked(event: premis.Event) -> premis.Event:
        """Events of the delivery name files by logical path (or nothing): link the PREMIS objects."""
        objects = tuple(premis.file_object_id(aip_id, o) if o in known else o for o in event.objects)
        return dataclasses.replace(event, objects=objects or (aip_id,))

    description = AipVersionDescription(
        aip_id=aip_id, version=1, dataset=dataset, producer=producer, created=created, files=files,
        message=f"Ingest of delivery {delivery_id}", label=f"{dataset}: delivery {delivery_id}",
        extra={"delivery": delivery_id})
    events = (*(linked(e) for e in described.events),
              premis.Event(identifier=new_id(), type=premis.EventType.INFORMATION_PACKAGE_CREATION,
                           at=created, outcome=premis.Outcome.SUCCESS,
                           detail="AIP built as an OCFL 1.1 object with METS 1.12 and PREMIS 3.0",
                           outcome_detail=f"version 1: {len(files)} files, METS.xml and PREMIS", agents=(exe,),
                           objects=(aip_id,)),
              premis.Event(identifier=new_id(), type=premis.EventType.INGESTION, at=created,
                           outcome=premis.Outcome.SUCCESS,
                           detail=f"ingest of delivery {delivery_id} into dataset {dataset!r}",
                           outcome_detail=f"{len(described.files)} delivered files accepted",
                           agents=(exe,), objects=(aip_id,)))
    premis_xml = build_premis(description, events, list(agents.values()))
    premis_file = ContentFile(path=PREMIS_PATH, fixity=digest_bytes(premis_xml), role=FileRole.METADATA,
                              puid=XML.puid, mime=XML.mime, format_name="PREMIS 3.0 XML")
    descriptive = [(f.path, f.fixity, "FITS header extract (JSON)") for f in doc_files]
    mets_xml = build_mets(description, premis_path=PREMIS_PATH, premis_fixity=premis_file.fixity,
                          descriptive=descriptive)
    mets_file = ContentFile(path=METS_PATH, fixity=digest_bytes(mets_xml), role=FileRole.METADATA,
                            puid=XML.puid, mime=XML.mime, format_name="METS 1.12 XML")
    user = ocfl.VersionUser(name=f"{tool.name} {tool.version}",
                            address=f"urn:oais-archive:software:{tool.version}")
    plan = ocfl.build_version(aip_id, None, 1, created, description.message, user,
                              (*files, premis_file, mets_file))
    return BuiltAip(aip_id=aip_id, version=1, description=description, events=tuple(events),
                    agents=agents, mets=mets_xml, premis=premis_xml, plan=plan,
                    object_path=ocfl.object_root_path(aip_id), sources=dict(described.sources),
                    documents=documents, issues=tuple(described.issues),
                    metadata_files=(premis_file, mets_file), new_id=new_id)
