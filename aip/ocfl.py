"""OCFL 1.1 layout of an AIP: storage-root layout, inventories and per-version write plans.

Every AIP is one OCFL 1.1 object (https://ocfl.io/1.1/spec/). This module decides *what* goes where;
it does no storage I/O except in three small, clearly named helpers (``hash_file``, ``read_inventory``,
``write_object_tree``). The storage layer (another module) does atomic writes and replica handling.

Layout of a storage root (extension 0004-hashed-n-tuple-storage-layout, default parameters)::

    0=ocfl_1.1
    ocfl_layout.json
    extensions/0004-hashed-n-tuple-storage-layout/config.json
    3c0/ff4/240/3c0ff4240c1e116dba14c7627f2319b58aa3d77606d0d90dfc6161608ac987d4/   <- object "object-01"
        0=ocfl_object_1.1, inventory.json, inventory.json.sha512, v1/, v2/, ...

Inventory format choices (so that the same input always gives the same bytes):

* UTF-8 JSON, keys sorted, 2-space indent, ``", "``/``": "`` separators, non-ASCII written as is
  (not ``\\u`` escaped), one trailing newline. Note: sorted keys put ``v10`` before ``v2``.
* every list of paths (manifest, state, fixity) sorted by code point;
* ``digestAlgorithm`` sha512; no ``contentDirectory`` key (so the content directory is ``content``);
* version directories ``v1``, ``v2``, ... without zero padding;
* ``created`` in UTC with seconds precision and a ``Z`` suffix (sub-second part dropped);
* a ``fixity`` block with ``sha256`` for every content path, carried forward from earlier versions;
* each version block holds ``created``, ``message``, ``state`` and ``user`` (``name``, optional
  ``address`` URI) so ocfl-py reports no W007/W008 when an address is given.

New content is deduplicated by sha512: a file whose digest is already in the manifest (from an earlier
version or earlier in the same version) is not stored again; only its logical path enters the state.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from oais.domain.fixity import Fixity, is_hex_digest
from oais.domain.jsontext import indented_json
from oais.domain.package import ContentFile

OCFL_VERSION = "1.1"
OBJECT_DECLARATION = "0=ocfl_object_1.1"
OBJECT_DECLARATION_CONTENT = b"ocfl_object_1.1\n"
ROOT_DECLARATION = "0=ocfl_1.1"
ROOT_DECLARATION_CONTENT = b"ocfl_1.1\n"
INVENTORY_TYPE = "https://ocfl.io/1.1/spec/#inventory"
DIGEST_ALGORITHM = "sha512"
FIXITY_ALGORITHM = "sha256"
CONTENT_DIRECTORY = "content"
INVENTORY = "inventory.json"
INVENTORY_SIDECAR = "inventory.json.sha512"
LAYOUT_FILE = "ocfl_layout.json"
LAYOUT_EXTENSION = "0004-hashed-n-tuple-storage-layout"
LAYOUT_CONFIG_PATH = f"extensions/{LAYOUT_EXTENSION}/config.json"
LAYOUT_DESCRIPTION = (
    "OCFL object identifiers are hashed (sha256 of the UTF-8 identifier, lowercase hex); the digest "
    "is divided into 3 tuples of 3 characters that form nested directories, and the object root "
    "directory is named with the entire digest (extension 0004-hashed-n-tuple-storage-layout)."
)
BUFFER_SIZE = 1 << 20
"""Read buffer for hashing and copying (1 MiB, reused with ``readinto``)."""

_VERSION_RE = re.compile(r"v([1-9][0-9]*)")
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


# --------------------------------------------------------------------------- storage root layout


def object_root_path(
    object_id: str,
    *,
    digest_algorithm: str = "sha256",
    tuple_size: int = 3,
    number_of_tuples: int = 3,
    short_object_root: bool = False,
) -> str:
    """Storage-root-relative path (``/``-separated, no trailing slash) of the object ``object_id``.

    Implements extension 0004-hashed-n-tuple-storage-layout; the keyword defaults are the extension's
    defaults, which are what ``storage_root_files`` declares. Raises ``ValueError`` on an empty id or an
    invalid parameter combination.
    """
    if not object_id:
        raise ValueError("object id must not be empty")
    if not (0 <= tuple_size <= 32 and 0 <= number_of_tuples <= 32):
        raise ValueError("tupleSize and numberOfTuples must be between 0 and 32")
    if (tuple_size == 0) != (number_of_tuples == 0):
        raise ValueError("tupleSize and numberOfTuples must both be 0 or both be non-zero")
    digest = hashlib.new(digest_algorithm, object_id.encode("utf-8")).hexdigest().lower()
    used = tuple_size * number_of_tuples
    if used > len(digest):
        raise ValueError("tupleSize * numberOfTuples exceeds the digest length")
    if short_object_root and used == len(digest):
        raise ValueError("shortObjectRoot must be false when the tuples use the whole digest")
    parts = [digest[i * tuple_size : (i + 1) * tuple_size] for i in range(number_of_tuples)]
    parts.append(digest[used:] if short_object_root else digest)
    return "/".join(parts)


def storage_root_files() -> dict[str, bytes]:
    """Files (storage-root-relative path -> bytes) that a new, empty OCFL 1.1 storage root needs."""
    layout = {"description": LAYOUT_DESCRIPTION, "extension": LAYOUT_EXTENSION}
    config = {
        "digestAlgorithm": "sha256",
        "extensionName": LAYOUT_EXTENSION,
        "numberOfTuples": 3,
        "shortObjectRoot": False,
        "tupleSize": 3,
    }
    return {
        ROOT_DECLARATION: ROOT_DECLARATION_CONTENT,
        LAYOUT_FILE: canonical_json(layout),
        LAYOUT_CONFIG_PATH: canonical_json(config),
    }


# --------------------------------------------------------------------------- small helpers


def canonical_json(value: Any) -> bytes:
    """Deterministic UTF-8 JSON: sorted keys, 2-space indent, no ASCII escaping, trailing newline.

    The text is exactly ``json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False,
    separators=(",", ": "))``, written by ``oais.domain.jsontext.indented_json`` (with an indent,
    ``json.dumps`` runs its pure-Python encoder, slow for the inventory of a delivery of 20,000 files).
    """
    return (indented_json(value, sort_keys=True) + "\n").encode("utf-8")


def sidecar_for(inventory_bytes: bytes) -> bytes:
    """Content of ``inventory.json.sha512`` for the given inventory bytes: ``<hex> inventory.json\\n``."""
    return f"{hashlib.sha512(inventory_bytes).hexdigest()} {INVENTORY}\n".encode("ascii")


def version_name(number: int) -> str:
    """``v1``, ``v2``, ... (no zero padding)."""
    if number < 1:
        raise ValueError("OCFL version numbers start at 1")
    return f"v{number}"


def parse_version_name(name: str) -> int:
    """Number of a non-padded version directory name (``v3`` -> 3); ``ValueError`` otherwise."""
    m = _VERSION_RE.fullmatch(name)
    if m is None:
        raise ValueError(f"not a non-padded OCFL version name: {name!r}")
    return int(m.group(1))


def format_created(created: datetime) -> str:
    """RFC 3339 timestamp in UTC, seconds precision, ``Z`` suffix."""
    if created.tzinfo is None or created.utcoffset() is None:
        raise ValueError("created must be timezone-aware")
    return created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def hash_file(
    path: Path, algorithms: Iterable[str] = (DIGEST_ALGORITHM,), buffer: bytearray | None = None
) -> tuple[int, dict[str, str]]:
    """Stream ``path`` once through a reused buffer; return (size, {algorithm: lowercase hex})."""
    view = memoryview(buffer if buffer is not None else bytearray(BUFFER_SIZE))
    hashers = {name: hashlib.new(name) for name in algorithms}
    size = 0
    with open(path, "rb") as fh:
        while n := fh.readinto(view):
            chunk = view[:n]
            for h in hashers.values():
                h.update(chunk)
            size += n
    return size, {name: h.hexdigest() for name, h in hashers.items()}


def read_inventory(object_root: Path) -> dict[str, Any]:
    """Parse ``<object_root>/inventory.json``.

    Raises ``FileNotFoundError`` if it is missing and ``ValueError`` if it is not a JSON object (use
    ``aip.ocfl_verify.verify_object`` for a report that never raises).
    """
    data = json.loads((Path(object_root) / INVENTORY).read_bytes().decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{object_root}/{INVENTORY} is not a JSON object")
    return data


def logical_state(inventory: Mapping[str, Any], version: str | None = None) -> dict[str, str]:
    """Logical path -> sha512 digest in ``version`` (default: head) of a well-formed inventory."""
    state = inventory["versions"][version or inventory["head"]]["state"]
    return {path: digest for digest, paths in state.items() for path in paths}


def content_path_for(inventory: Mapping[str, Any], logical_path: str, version: str | None = None) -> str:
    """Object-root-relative content path holding ``logical_path`` in ``version`` (default: head)."""
    digest = logical_state(inventory, version)[logical_path]  # KeyError: not in that version
    return sorted(inventory["manifest"][digest])[0]


# --------------------------------------------------------------------------- building a version


@dataclass(frozen=True, slots=True)
class VersionUser:
    """The agent recorded in a version block; ``address`` should be a URI (mailto:, https://orcid...)."""

    name: str
    address: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("user name must not be empty")
        if self.address is not None and not _URI_RE.fullmatch(self.address):
            raise ValueError(f"user address is not a URI: {self.address!r}")

    def as_json(self) -> dict[str, str]:
        return {"name": self.name} | ({"address": self.address} if self.address else {})


@dataclass(frozen=True, slots=True)
class NewContent:
    """A file this version must store: ``content_path`` (``vN/content/...``) <- staged ``logical_path``."""

    content_path: str
    logical_path: str
    fixity: Fixity


class PlanEntry(NamedTuple):
    """One file to write under the object root.

    ``source`` is either the literal bytes to write or (``str``) the logical path whose staged source
    file is to be copied there; its expected size and digests are ``plan.state[source]``.
    """

    path: str
    source: bytes | str


@dataclass(frozen=True)
class ObjectPlan:
    """Everything one new version of an object needs, built by ``build_version``."""

    object_id: str
    version: int
    head: str
    inventory: dict[str, Any]
    inventory_json: bytes
    inventory_sidecar: bytes
    new_content: tuple[NewContent, ...]
    state: Mapping[str, Fixity]
    """Logical path -> Fixity of the new version's full state (what ``verify_object`` can expect)."""

    @property
    def entries(self) -> tuple[PlanEntry, ...]:
        """Files to write, in a safe order: content, version inventory, then the root inventory.

        The root ``inventory.json.sha512`` comes last (OCFL E062): until it is written, the object
        still shows its previous head (or, for v1, is not yet a valid object).
        """
        items = [PlanEntry(c.content_path, c.logical_path) for c in self.new_content]
        items += [
            PlanEntry(f"{self.head}/{INVENTORY}", self.inventory_json),
            PlanEntry(f"{self.head}/{INVENTORY_SIDECAR}", self.inventory_sidecar),
        ]
        if self.version == 1:
            items.append(PlanEntry(OBJECT_DECLARATION, OBJECT_DECLARATION_CONTENT))
        items += [PlanEntry(INVENTORY, self.inventory_json), PlanEntry(INVENTORY_SIDECAR, self.inventory_sidecar)]
        return tuple(items)


def object_files(plan: ObjectPlan) -> list[PlanEntry]:
    """Everything to put under the object root for this version, as ``(relative path, source)`` pairs."""
    return list(plan.entries)


def _check_previous(previous: Mapping[str, Any], object_id: str, version: int) -> None:
    """Refuse a previous inventory that this module could not have written or cannot extend."""
    problems = []
    if previous.get("id") != object_id:
        problems.append(f"id {previous.get('id')!r} is not {object_id!r}")
    if previous.get("type") != INVENTORY_TYPE:
        problems.append(f"type {previous.get('type')!r} is not {INVENTORY_TYPE}")
    if previous.get("digestAlgorithm") != DIGEST_ALGORITHM:
        problems.append(f"digestAlgorithm is {previous.get('digestAlgorithm')!r}, not sha512")
    if previous.get("contentDirectory", CONTENT_DIRECTORY) != CONTENT_DIRECTORY:
        problems.append("contentDirectory is not 'content'")
    expected = [version_name(n) for n in range(1, version)]
    if previous.get("head") != (expected[-1] if expected else None):
        problems.append(f"head {previous.get('head')!r} does not precede v{version}")
    if not isinstance(previous.get("versions"), dict) or sorted(previous["versions"]) != sorted(expected):
        problems.append(f"versions are not exactly {', '.join(expected) or '(none)'}")
    if not isinstance(previous.get("manifest"), dict):
        problems.append("manifest is missing")
    elif not all(is_hex_digest(DIGEST_ALGORITHM, d) for d in previous["manifest"]):
        problems.append("manifest digests are not lowercase sha512 hex")
    if problems:
        raise ValueError("cannot build on previous inventory: " + "; ".join(problems))


def _check_paths(files: list[ContentFile]) -> None:
    """Logical paths must be unique (also case-insensitively) and must not conflict (E095)."""
    seen: dict[str, str] = {}
    for f in files:
        key = f.path.casefold()
        if key in seen:
            raise ValueError(f"duplicate logical path (case-insensitive): {f.path!r} and {seen[key]!r}")
        seen[key] = f.path
    for f in files:
        parts = f.path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]).casefold() in seen:
                raise ValueError(f"logical path {f.path!r} conflicts with file {'/'.join(parts[:i])!r}")


def build_version(
    object_id: str,
    previous: Mapping[str, Any] | None,
    version: int,
    created: datetime,
    message: str,
    user: VersionUser,
    files: Iterable[ContentFile],
) -> ObjectPlan:
    """Plan version ``version`` of ``object_id`` whose full logical state is ``files``.

    ``previous`` is the current root inventory (``None`` for v1); it is not modified. Raises
    ``ValueError`` for inconsistent input (wrong version number, conflicting paths, a sha512 recorded
    with another sha256 or size, a naive ``created``, an inventory this module cannot extend).
    """
    files = sorted(files, key=lambda f: f.path)
    if not object_id:
        raise ValueError("object id must not be empty")
    if previous is None and version != 1:
        raise ValueError("a first version must be v1")
    head = version_name(version)
    _check_paths(files)
    prev: dict[str, Any] = json.loads(json.dumps(previous)) if previous is not None else {}
    if previous is not None:
        _check_previous(prev, object_id, version)
    manifest: dict[str, list[str]] = prev.get("manifest", {})
    fixity: dict[str, dict[str, list[str]]] = prev.get("fixity", {})
    sha256_block = fixity.setdefault(FIXITY_ALGORITHM, {})
    recorded_sha256 = {path: d for d, paths in sha256_block.items() for path in paths}

    by_digest: dict[str, Fixity] = {}
    state: dict[str, list[str]] = {}
    new_content: list[NewContent] = []
    for f in files:
        digest = f.fixity.sha512
        seen = by_digest.get(digest)
        if seen is not None and seen != f.fixity:
            raise ValueError(f"{f.path}: same sha512 as another file but different {seen.mismatch(f.fixity)}")
        by_digest[digest] = f.fixity
        state.setdefault(digest, []).append(f.path)
        if digest in manifest:
            for path in manifest[digest]:
                old = recorded_sha256.get(path)
                if old is not None and old != f.fixity.sha256:
                    raise ValueError(f"{f.path}: sha512 matches {path} but sha256 differs ({old})")
            continue
        content_path = f"{head}/{CONTENT_DIRECTORY}/{f.path}"
        manifest[digest] = [content_path]
        sha256_block.setdefault(f.fixity.sha256, []).append(content_path)
        new_content.append(NewContent(content_path, f.path, f.fixity))

    versions = prev.get("versions", {})
    versions[head] = {
        "created": format_created(created),
        "message": message,
        "state": {d: sorted(p) for d, p in state.items()},
        "user": user.as_json(),
    }
    inventory: dict[str, Any] = {
        "digestAlgorithm": DIGEST_ALGORITHM,
        "fixity": {alg: {d: sorted(p) for d, p in block.items()} for alg, block in fixity.items()},
        "head": head,
        "id": object_id,
        "manifest": {d: sorted(p) for d, p in manifest.items()},
        "type": INVENTORY_TYPE,
        "versions": versions,
    }
    if "contentDirectory" in prev:
        inventory["contentDirectory"] = prev["contentDirectory"]
    inventory_json = canonical_json(inventory)
    return ObjectPlan(
        object_id=object_id,
        version=version,
        head=head,
        inventory=inventory,
        inventory_json=inventory_json,
        inventory_sidecar=sidecar_for(inventory_json),
        new_content=tuple(new_content),
        state={f.path: f.fixity for f in files},
    )


# --------------------------------------------------------------------------- simple writer


def _copy_hashed(src: Path, dst: Path, buffer: bytearray) -> tuple[int, str]:
    """Copy ``src`` to a new file ``dst`` (must not exist); return (size, sha512) of the bytes copied."""
    view = memoryview(buffer)
    h = hashlib.sha512()
    size = 0
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        while n := fin.readinto(view):
            h.update(view[:n])
            fout.write(view[:n])
            size += n
    return size, h.hexdigest()


def write_object_tree(
    dest: Path, plan: ObjectPlan, sources: Mapping[str, Path] | Callable[[str], Path]
) -> None:
    """Write ``plan`` under the object root ``dest`` with plain writes (no fsync, no temp names).

    ``sources`` maps a logical path to its staged file (a mapping or a callable). Content is hashed
    while copied; a source whose size or sha512 differs from the plan raises ``ValueError`` before
    any inventory is written. Raises ``FileExistsError`` if the version directory already exists
    (or, for v1, if ``dest`` is not empty) and ``FileNotFoundError`` if v2+ has no object to extend.
    """
    dest = Path(dest)
    resolve = sources if callable(sources) else sources.__getitem__
    if plan.version == 1 and dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty; v1 needs a new object root")
    if plan.version > 1 and not (dest / OBJECT_DECLARATION).is_file():
        raise FileNotFoundError(f"{dest} holds no OCFL object to add {plan.head} to")
    if (dest / plan.head).exists():
        raise FileExistsError(f"{dest / plan.head} already exists")
    buffer = bytearray(BUFFER_SIZE)
    for rel, source in plan.entries:
        target = dest.joinpath(*rel.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            target.write_bytes(source)
            continue
        expected = plan.state[source]
        size, sha512 = _copy_hashed(Path(resolve(source)), target, buffer)
        if size != expected.size or sha512 != expected.sha512:
            raise ValueError(f"staged source for {source!r} does not match its fixity (size {size}, sha512 {sha512})")
