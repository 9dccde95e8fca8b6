"""Fast self-check of one OCFL 1.1 object on a local filesystem, run by our code after writing it.

``verify_object`` is not a full OCFL validator (ocfl-py is, in the tests); it checks what a write can
get wrong: the object declaration, every inventory and its sidecar digest, that the root inventory is
byte-identical to the head version's, that every manifest content path exists with the right sha512
(streamed through one reused 1 MiB buffer), that version and content directories hold nothing else,
and, optionally, that the head state equals an expected ``logical path -> Fixity`` mapping.

Problems are returned as strings of the form ``"<path relative to the object root>: <what is wrong>"``
(for the expected-state comparison, ``"logical path <path>: ..."``), with the OCFL validation code in
parentheses where one applies. An empty list means the object passed. Problems in the object never
raise; only a wrong argument type does.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aip.ocfl import (
    BUFFER_SIZE,
    CONTENT_DIRECTORY,
    DIGEST_ALGORITHM,
    FIXITY_ALGORITHM,
    INVENTORY,
    INVENTORY_SIDECAR,
    INVENTORY_TYPE,
    OBJECT_DECLARATION,
    OBJECT_DECLARATION_CONTENT,
    hash_file,
    parse_version_name,
    sidecar_for,
    version_name,
)
from oais.domain.fixity import Fixity
from oais.domain.package import check_logical_path


def _read(path: Path, rel: str, problems: list[str]) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        problems.append(f"{rel}: missing")
    except OSError as exc:
        problems.append(f"{rel}: cannot read ({exc.strerror or exc})")
    return None


def _check_inventory_file(root: Path, prefix: str, problems: list[str]) -> bytes | None:
    """Read ``<prefix>inventory.json`` and check its sidecar; return the inventory bytes."""
    data = _read(root / prefix / INVENTORY, prefix + INVENTORY, problems)
    sidecar = _read(root / prefix / INVENTORY_SIDECAR, prefix + INVENTORY_SIDECAR, problems)
    if data is not None and sidecar is not None:
        parts = sidecar.decode("utf-8", "replace").split()
        if len(parts) != 2 or parts[1] != INVENTORY:
            problems.append(f"{prefix}{INVENTORY_SIDECAR}: not in the form '<digest> inventory.json' (E061)")
        elif parts[0].lower() != sidecar_for(data).split()[0].decode():
            problems.append(f"{prefix}{INVENTORY_SIDECAR}: does not match the digest of {prefix}{INVENTORY} (E060)")
    return data


def _is_path_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(p, str) for p in value)


def _structure(inv: Any) -> list[str]:
    """Problems that make the inventory unusable for the content checks."""
    if not isinstance(inv, dict):
        return [f"{INVENTORY}: not a JSON object (E033)"]
    problems = []
    if not isinstance(inv.get("id"), str) or not inv["id"]:
        problems.append(f"{INVENTORY}: id missing or empty (E036)")
    if inv.get("type") != INVENTORY_TYPE:
        problems.append(f"{INVENTORY}: type is {inv.get('type')!r}, expected {INVENTORY_TYPE} (E038)")
    if inv.get("digestAlgorithm") != DIGEST_ALGORITHM:
        problems.append(f"{INVENTORY}: digestAlgorithm is {inv.get('digestAlgorithm')!r}, expected sha512")
    cd = inv.get("contentDirectory", CONTENT_DIRECTORY)
    if not isinstance(cd, str) or "/" in cd or cd in ("", ".", ".."):
        problems.append(f"{INVENTORY}: invalid contentDirectory {cd!r} (E017)")
    manifest = inv.get("manifest")
    if not isinstance(manifest, dict) or not all(_is_path_list(v) for v in manifest.values()):
        problems.append(f"{INVENTORY}: manifest missing or malformed (E041)")
        manifest = {}
    versions = inv.get("versions")
    try:
        count = parse_version_name(inv.get("head"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        problems.append(f"{INVENTORY}: head {inv.get('head')!r} is not a version name (E040)")
        return problems
    if not isinstance(versions, dict) or sorted(versions) != sorted(version_name(n) for n in range(1, count + 1)):
        problems.append(f"{INVENTORY}: versions are not exactly v1..{inv['head']} (E010, E040)")
        return problems
    for name, block in versions.items():
        state = block.get("state") if isinstance(block, dict) else None
        if not isinstance(state, dict) or not all(_is_path_list(v) for v in state.values()):
            problems.append(f"{INVENTORY}: version {name} has no well-formed state (E048)")
            continue
        for digest in state:
            if digest not in manifest:
                problems.append(f"{INVENTORY}: digest {digest} in {name} state is not in the manifest (E050)")
    return problems


def _walk_content(root: Path, version: str, content_dir: str, problems: list[str]) -> set[str]:
    """Relative paths of the regular files under ``<version>/<content_dir>``; report links and empty dirs."""
    found: set[str] = set()
    top = root / version / content_dir
    if not top.is_dir():
        return found

    def on_error(exc: OSError) -> None:
        problems.append(f"{version}/{content_dir}: cannot list ({exc.strerror or exc})")

    for dirpath, dirnames, filenames in os.walk(top, onerror=on_error):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        if not dirnames and not filenames:
            problems.append(f"{rel_dir}: empty directory in content (E024)")
        for name in list(dirnames):
            if os.path.islink(os.path.join(dirpath, name)):
                problems.append(f"{rel_dir}/{name}: symbolic link (E090)")
                dirnames.remove(name)
        for name in filenames:
            mode = os.lstat(os.path.join(dirpath, name)).st_mode
            if stat.S_ISREG(mode):
                found.add(f"{rel_dir}/{name}")
            else:
                problems.append(f"{rel_dir}/{name}: not a regular file (E090)")
    return found


def _check_layout(root: Path, inv: Mapping[str, Any], root_bytes: bytes, problems: list[str]) -> set[str]:
    """Object root and version directories: expected entries only; return all content files found."""
    versions, head = inv["versions"], inv["head"]
    content_dir = inv.get("contentDirectory", CONTENT_DIRECTORY)
    allowed_files = {OBJECT_DECLARATION, INVENTORY, INVENTORY_SIDECAR}
    for entry in os.scandir(root):
        if entry.is_symlink():
            problems.append(f"{entry.name}: symbolic link in object root (E090)")
        elif entry.is_dir():
            if entry.name not in versions and entry.name not in ("logs", "extensions"):
                problems.append(f"{entry.name}: unexpected directory in object root (E001, E046)")
        elif entry.name not in allowed_files:
            problems.append(f"{entry.name}: unexpected file in object root (E001)")
    found: set[str] = set()
    for name in sorted(versions, key=parse_version_name):
        vdir = root / name
        if not vdir.is_dir():
            problems.append(f"{name}: version directory missing (E010)")
            continue
        data = _check_inventory_file(root, name + "/", problems)
        if name == head and data is not None and data != root_bytes:
            problems.append(f"{name}/{INVENTORY}: differs from the root {INVENTORY} (E064)")
        for entry in os.scandir(vdir):
            if entry.name in (INVENTORY, INVENTORY_SIDECAR) and entry.is_file(follow_symlinks=False):
                continue
            if entry.name == content_dir and entry.is_dir(follow_symlinks=False):
                continue
            kind = "directory" if entry.is_dir() else "file"
            problems.append(f"{name}/{entry.name}: unexpected {kind} in version directory (E015)")
        found |= _walk_content(root, name, content_dir, problems)
    return found


def verify_object(object_root: Path, expected: Mapping[str, Fixity] | None = None) -> list[str]:
    """Check the OCFL object at ``object_root``; return a list of problems (empty when all is well).

    ``expected`` (logical path -> Fixity) is compared with the head version's state: missing and
    extra logical paths, sha512, the recorded sha256 fixity, and the stored file's size.
    """
    if expected is not None and not isinstance(expected, Mapping):
        raise TypeError("expected must be a mapping of logical path -> Fixity")
    root = Path(object_root)
    if not root.is_dir():
        return [f".: object root {root} is not a directory"]
    problems: list[str] = []
    try:
        _verify(root, expected, problems)
    except OSError as exc:  # e.g. a directory that cannot be listed, a file removed while we look
        where = str(exc.filename or ".")
        if exc.filename and Path(exc.filename).is_relative_to(root):
            where = Path(exc.filename).relative_to(root).as_posix() or "."
        problems.append(f"{where}: cannot read ({exc.strerror or exc})")
    return problems


def _verify(root: Path, expected: Mapping[str, Fixity] | None, problems: list[str]) -> None:
    """Body of ``verify_object``: appends to ``problems``; returns early when it cannot go on."""
    declarations = sorted(p.name for p in root.glob("0=*"))
    if OBJECT_DECLARATION not in declarations:
        problems.append(f"{OBJECT_DECLARATION}: object declaration missing (E003)")
    elif _read(root / OBJECT_DECLARATION, OBJECT_DECLARATION, problems) not in (OBJECT_DECLARATION_CONTENT, None):
        problems.append(f"{OBJECT_DECLARATION}: wrong content (E007)")
    problems += [f"{d}: unexpected declaration file (E003)" for d in declarations if d != OBJECT_DECLARATION]

    root_bytes = _check_inventory_file(root, "", problems)
    if root_bytes is None:
        return
    try:
        inv = json.loads(root_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        problems.append(f"{INVENTORY}: not valid UTF-8 JSON ({exc}) (E033)")
        return
    structural = _structure(inv)
    if structural:
        problems += structural
        return

    found = _check_layout(root, inv, root_bytes, problems)
    content_dir = inv.get("contentDirectory", CONTENT_DIRECTORY)
    listed: dict[str, str] = {}  # content path -> sha512 digest
    for digest, paths in inv["manifest"].items():
        for path in paths:
            try:
                check_logical_path(path)
            except ValueError:
                problems.append(f"{path!r}: unsafe content path in manifest (E099, E100)")
                continue
            version, _, rest = path.partition("/")
            if version not in inv["versions"] or not rest.startswith(content_dir + "/"):
                problems.append(f"{path}: content path outside a version content directory (E042)")
                continue
            listed[path] = digest
    problems += [f"{p}: file not in manifest (E023)" for p in sorted(found - listed.keys())]

    buffer = bytearray(BUFFER_SIZE)
    sizes: dict[str, int] = {}
    for path, digest in sorted(listed.items()):
        if path not in found:
            problems.append(f"{path}: content file missing")
            continue
        try:
            size, digests = hash_file(root / path, (DIGEST_ALGORITHM,), buffer)
        except OSError as exc:
            problems.append(f"{path}: cannot read ({exc.strerror or exc})")
            continue
        sizes[path] = size
        if digests[DIGEST_ALGORITHM] != digest.lower():
            problems.append(
                f"{path}: sha512 mismatch (inventory {digest}, file {digests[DIGEST_ALGORITHM]}) (E092)"
            )
    if expected is not None:
        problems += _compare_expected(inv, expected, sizes)


def _compare_expected(inv: Mapping[str, Any], expected: Mapping[str, Fixity], sizes: Mapping[str, int]) -> list[str]:
    """Compare the head state with ``expected``; ``sizes`` holds the sizes of the content files read."""
    state = {p: d for d, paths in inv["versions"][inv["head"]]["state"].items() for p in paths}
    fixity = inv.get("fixity")
    block = fixity.get(FIXITY_ALGORITHM) if isinstance(fixity, dict) else None
    sha256_of = {p: d for d, paths in (block.items() if isinstance(block, dict) else ()) for p in paths}
    problems = []
    for logical in sorted(expected.keys() - state.keys()):
        problems.append(f"logical path {logical}: expected but not in {inv['head']}")
    for logical in sorted(state.keys() - expected.keys()):
        problems.append(f"logical path {logical}: in {inv['head']} but not expected")
    for logical in sorted(expected.keys() & state.keys()):
        want, digest = expected[logical], state[logical]
        if digest != want.sha512:
            problems.append(f"logical path {logical}: sha512 is {digest}, expected {want.sha512}")
            continue
        content = sorted(inv["manifest"][digest])
        recorded = {sha256_of[c] for c in content if c in sha256_of}
        if not recorded:
            problems.append(f"logical path {logical}: no sha256 fixity recorded for {content[0]}")
        elif recorded != {want.sha256}:
            problems.append(f"logical path {logical}: sha256 fixity is {sorted(recorded)}, expected {want.sha256}")
        for c in content:
            if c in sizes and sizes[c] != want.size:
                problems.append(f"logical path {logical}: {c} has {sizes[c]} bytes, expected {want.size}")
    return problems
