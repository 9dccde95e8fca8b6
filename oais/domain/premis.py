"""PREMIS 3 events and agents as plain values, with the Library of Congress controlled vocabularies.

Vocabularies: http://id.loc.gov/vocabulary/preservation/eventType, .../eventOutcome,
.../agentType, .../eventRelatedAgentRole. Codes, not labels, are what the archive stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

VOCABULARY = "http://id.loc.gov/vocabulary/preservation/"


class EventType(StrEnum):
    TRANSFER = "tra"
    ACCESSION = "acc"
    INGESTION = "ing"
    UNPACKING = "unp"
    MESSAGE_DIGEST_CALCULATION = "mes"
    FIXITY_CHECK = "fix"
    VIRUS_CHECK = "vir"
    QUARANTINE = "qua"
    UNQUARANTINE = "unq"
    FORMAT_IDENTIFICATION = "for"
    VALIDATION = "val"
    METADATA_EXTRACTION = "mee"
    NORMALIZATION = "nor"
    MIGRATION = "mig"
    METADATA_MODIFICATION = "mem"
    INFORMATION_PACKAGE_CREATION = "ipc"
    REPLICATION = "rep"
    RECOVERY = "rec"
    DISSEMINATION = "dis"
    CREATION = "cre"
    FILENAME_CHANGE = "fil"
    DEACCESSION = "dea"
    DELETION = "del"

    @property
    def uri(self) -> str:
        return f"{VOCABULARY}eventType/{self.value}"

    @property
    def label(self) -> str:
        return _EVENT_LABELS[self]


_EVENT_LABELS = {
    EventType.TRANSFER: "transfer",
    EventType.ACCESSION: "accession",
    EventType.INGESTION: "ingestion",
    EventType.UNPACKING: "unpacking",
    EventType.MESSAGE_DIGEST_CALCULATION: "message digest calculation",
    EventType.FIXITY_CHECK: "fixity check",
    EventType.VIRUS_CHECK: "virus check",
    EventType.QUARANTINE: "quarantine",
    EventType.UNQUARANTINE: "unquarantine",
    EventType.FORMAT_IDENTIFICATION: "format identification",
    EventType.VALIDATION: "validation",
    EventType.METADATA_EXTRACTION: "metadata extraction",
    EventType.NORMALIZATION: "normalization",
    EventType.MIGRATION: "migration",
    EventType.METADATA_MODIFICATION: "metadata modification",
    EventType.INFORMATION_PACKAGE_CREATION: "information package creation",
    EventType.REPLICATION: "replication",
    EventType.RECOVERY: "recovery",
    EventType.DISSEMINATION: "dissemination",
    EventType.CREATION: "creation",
    EventType.FILENAME_CHANGE: "filename change",
    EventType.DEACCESSION: "deaccession",
    EventType.DELETION: "deletion",
}


class Outcome(StrEnum):
    SUCCESS = "suc"
    FAILURE = "fai"
    WARNING = "war"

    @property
    def uri(self) -> str:
        return f"{VOCABULARY}eventOutcome/{self.value}"

    @property
    def label(self) -> str:
        return {"suc": "success", "fai": "failure", "war": "warning"}[self.value]


class AgentType(StrEnum):
    SOFTWARE = "sof"
    PERSON = "per"
    ORGANIZATION = "org"
    HARDWARE = "har"

    @property
    def uri(self) -> str:
        return f"{VOCABULARY}agentType/{self.value}"

    @property
    def label(self) -> str:
        return {"sof": "software", "per": "person", "org": "organization", "har": "hardware"}[self.value]


class AgentRole(StrEnum):
    EXECUTING_PROGRAM = "exe"
    IMPLEMENTER = "imp"
    AUTHORIZER = "aut"
    VALIDATOR = "val"

    @property
    def uri(self) -> str:
        return f"{VOCABULARY}eventRelatedAgentRole/{self.value}"

    @property
    def label(self) -> str:
        return {
            "exe": "executing program",
            "imp": "implementer",
            "aut": "authorizer",
            "val": "validator",
        }[self.value]


@dataclass(frozen=True, slots=True)
class Agent:
    """A PREMIS agent. ``identifier`` is unique within the archive (e.g. ``software:oais-archive/0.1.0``)."""

    identifier: str
    name: str
    type: AgentType
    version: str | None = None  # for software agents
    note: str | None = None


@dataclass(frozen=True, slots=True)
class LinkedAgent:
    identifier: str
    role: AgentRole


@dataclass(frozen=True, slots=True)
class Event:
    """A PREMIS event. ``objects`` are the identifiers of the PREMIS objects it concerns.

    Object identifiers are the AIP id for the intellectual entity, and ``<aip_id>/<logical path>``
    for files (see ``file_object_id``).
    """

    identifier: str  # urn:uuid:...
    type: EventType
    at: datetime
    outcome: Outcome
    detail: str = ""
    outcome_detail: str = ""
    agents: tuple[LinkedAgent, ...] = ()
    objects: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("event time must be timezone-aware")


def file_object_id(aip_id: str, path: str) -> str:
    """The PREMIS object identifier of the file at logical ``path`` in AIP ``aip_id``."""
    return f"{aip_id}/{path}"


def software_agent(name: str, version: str, note: str | None = None) -> Agent:
    """A software agent, identified by name and version (a new version is a new agent)."""
    return Agent(identifier=f"software:{name}/{version}", name=name, type=AgentType.SOFTWARE,
                 version=version, note=note)


def archive_agent() -> Agent:
    """This software, the executing program of every archive action."""
    from oais import __version__

    return software_agent("oais-archive", __version__)
