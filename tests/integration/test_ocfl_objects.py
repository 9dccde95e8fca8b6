"""Real OCFL objects on disk: written by aip.ocfl, validated by ocfl-py 2.1.0 and by verify_object.

ocfl-py 2.1.0 does not implement storage layout 0004-hashed-n-tuple-storage-layout (its registry has
0002 and 0003 only), so its storage-root validator would stop with E071 and warn (W901) about our
extension directory. The tests register an independent 0004 implementation with ocfl-py's layout
registry and add the name to the validator's list of known extensions.
"""

from __future__ import annotations

import hashlib
import os
import random
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from ocfl.layout import Layout
from ocfl.layout_registry import add_layout
from ocfl.storage_root import StorageRoot
from ocfl.validator import Validator

from aip.ocfl import (
    LAYOUT_EXTENSION,
    ObjectPlan,
    VersionUser,
    build_version,
    content_path_for,
    hash_file,
    object_root_path,
    read_inventory,
    storage_root_files,
    write_object_tree,
)
from aip.ocfl_verify import verify_object
from oais.domain.fixity import Fixity
from oais.domain.package import ContentFile, FileRole

OBJECT_ID = "urn:uuid:0b8f1c52-6f0e-4d7a-9a4e-3c2d1e0f9a77"
CREATED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
USER = VersionUser("oais-archive ingest", "mailto:archive@example.org")
FITS_NAMES = ("test0.fits", "checksum.fits", "tb.fits")
ODD_NAME = "representations/original/data/Ångström spectra/résumé 1 (final).bin"
CJK_NAME = "metadata/descriptive/観測 ノート.txt"


class Layout0004(Layout):
    """0004-hashed-n-tuple-storage-layout for ocfl-py, written from the extension text, not from aip."""

    def __init__(self) -> None:
        super().__init__()
        self.NAME = LAYOUT_EXTENSION
        self.DESCRIPTION = "Hashed N-tuple Storage Layout"
        self.digest_algorithm, self.tuple_size, self.number_of_tuples, self.short = "sha256", 3, 3, False
        self.PARAMS = {
            "digestAlgorithm": lambda v: setattr(self, "digest_algorithm", v or "sha256"),
            "tupleSize": lambda v: setattr(self, "tuple_size", 3 if v is None else v),
            "numberOfTuples": lambda v: setattr(self, "number_of_tuples", 3 if v is None else v),
            "shortObjectRoot": lambda v: setattr(self, "short", bool(v)),
        }

    def identifier_to_path(self, identifier: str) -> str:
        digest = hashlib.new(self.digest_algorithm, identifier.encode("utf-8")).hexdigest()
        n, size = self.number_of_tuples, self.tuple_size
        tuples = [digest[i * size : (i + 1) * size] for i in range(n)]
        return "/".join(tuples + [digest[n * size :] if self.short else digest])


add_layout(LAYOUT_EXTENSION, Layout0004)


# --------------------------------------------------------------------------- helpers


def fixity_of(path: Path) -> Fixity:
    size, d = hash_file(path, ("sha256", "sha512"))
    return Fixity(size, d["sha256"], d["sha512"])


def astropy_fits(name: str) -> Path:
    from astropy.utils.data import get_pkg_data_filename

    return Path(get_pkg_data_filename(f"data/{name}", package="astropy.io.fits.tests"))


def stage(staging: Path, files: dict[str, bytes | Path]) -> tuple[list[ContentFile], dict[str, Path]]:
    """Put each logical path's bytes in a staging directory (Paths are used in place)."""
    sources: dict[str, Path] = {}
    for logical, data in files.items():
        if isinstance(data, Path):
            sources[logical] = data
        else:
            target = staging / f"{len(sources):04d}.bin"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            sources[logical] = target
    content = [ContentFile(p, fixity_of(src), FileRole.ORIGINAL) for p, src in sources.items()]
    return content, sources


def v1_payload() -> dict[str, bytes | Path]:
    rng = random.Random(20240506)
    files: dict[str, bytes | Path] = {
        f"representations/original/data/{name}": astropy_fits(name) for name in FITS_NAMES
    }
    files["representations/original/data/random-1.bin"] = rng.randbytes(3 * 1024 * 1024 + 17)
    files["representations/original/data/random-2.bin"] = rng.randbytes(4096)
    files["representations/original/data/empty.dat"] = b""
    files["representations/original/data/duplicate of test0.fits"] = astropy_fits("test0.fits")
    files[ODD_NAME] = rng.randbytes(1000)
    files[CJK_NAME] = "観測メモ\n".encode("utf-8")
    files["METS.xml"] = b"<mets xmlns='http://www.loc.gov/METS/'/>\n"
    return files


def new_storage_root(base: Path) -> Path:
    root = base / "storage root"
    for rel, data in storage_root_files().items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def build_and_write(tmp_path: Path) -> tuple[Path, Path, ObjectPlan, dict[str, Path]]:
    root = new_storage_root(tmp_path)
    files, sources = stage(tmp_path / "staging-v1", v1_payload())
    plan = build_version(OBJECT_ID, None, 1, CREATED, "Ingest of delivery D-0001", USER, files)
    obj = root / object_root_path(OBJECT_ID)
    write_object_tree(obj, plan, sources)
    return root, obj, plan, sources


def ocfl_py_object_messages(obj: Path) -> tuple[bool, str, int, int]:
    validator = Validator(log_warnings=True, check_digests=True)
    valid = validator.validate_object(str(obj))
    return valid, validator.status_str(), validator.log.num_errors, validator.log.num_warnings


def assert_valid_storage_root(root: Path, expected_objects: int = 1) -> StorageRoot:
    sr = StorageRoot(str(root))
    sr.registered_extensions.append(LAYOUT_EXTENSION)
    valid = sr.validate(log_warnings=True, check_digests=True)
    assert valid, sr.log.status_str()
    assert (sr.log.num_errors, sr.log.num_warnings) == (0, 0), sr.log.status_str()
    assert sr.errors == []  # per-object errors *and* warnings (log_warnings=True)
    assert sr.num_objects == sr.good_objects == expected_objects
    return sr


def problem_about(problems: list[str], path: str, words: str) -> str:
    matches = [p for p in problems if p.startswith(path + ":") and words in p]
    assert matches, f"no problem about {path!r} with {words!r} in {problems}"
    return matches[0]


# --------------------------------------------------------------------------- valid objects


def test_v1_is_valid_for_ocfl_py_and_verify_object(tmp_path: Path) -> None:
    root, obj, plan, _ = build_and_write(tmp_path)
    valid, messages, errors, warnings = ocfl_py_object_messages(obj)
    assert valid and (errors, warnings) == (0, 0), messages
    sr = assert_valid_storage_root(root)
    assert sr.object_path(OBJECT_ID) == object_root_path(OBJECT_ID)
    assert list(sr.list_objects()) == [(object_root_path(OBJECT_ID), OBJECT_ID)]
    assert verify_object(obj) == []
    assert verify_object(obj, plan.state) == []
    assert read_inventory(obj) == plan.inventory
    assert (obj / "inventory.json").read_bytes() == plan.inventory_json


def test_v1_files_on_disk(tmp_path: Path) -> None:
    _, obj, plan, sources = build_and_write(tmp_path)
    stored = sorted(p.relative_to(obj).as_posix() for p in obj.rglob("*") if p.is_file())
    content = [p for p in stored if p.startswith("v1/content/")]
    # the duplicate of test0.fits is stored once
    assert len(content) == len(sources) - 1
    # ... under the logical path that sorts first (deterministic choice)
    assert "v1/content/representations/original/data/duplicate of test0.fits" in content
    assert "v1/content/representations/original/data/test0.fits" not in content
    assert f"v1/content/{ODD_NAME}" in content and f"v1/content/{CJK_NAME}" in content
    assert unicodedata.is_normalized("NFC", ODD_NAME)
    assert (obj / f"v1/content/{ODD_NAME}").read_bytes() == sources[ODD_NAME].read_bytes()
    assert sorted(set(stored) - set(content)) == [
        "0=ocfl_object_1.1", "inventory.json", "inventory.json.sha512", "v1/inventory.json", "v1/inventory.json.sha512"
    ]
    fits = obj / "v1/content/representations/original/data/duplicate of test0.fits"
    assert fits.read_bytes() == astropy_fits("test0.fits").read_bytes()
    assert plan.inventory["versions"]["v1"]["state"][fixity_of(fits).sha512] == [
        "representations/original/data/duplicate of test0.fits",
        "representations/original/data/test0.fits",
    ]


def test_v2_changes_one_file_and_adds_one(tmp_path: Path) -> None:
    root, obj, v1, sources = build_and_write(tmp_path)
    payload = v1_payload()
    payload["representations/original/data/random-2.bin"] = b"corrected bytes\n"  # changed
    payload["representations/normalized/data/résumé 2.txt"] = "nouveau fichier\n".encode()  # added
    files, sources2 = stage(tmp_path / "staging-v2", payload)
    previous = read_inventory(obj)
    v2 = build_version(OBJECT_ID, previous, 2, CREATED + timedelta(days=3), "Correct random-2.bin", USER, files)
    assert sorted(c.content_path for c in v2.new_content) == [
        "v2/content/representations/normalized/data/résumé 2.txt",
        "v2/content/representations/original/data/random-2.bin",
    ]
    write_object_tree(obj, v2, sources2)

    valid, messages, errors, warnings = ocfl_py_object_messages(obj)
    assert valid and (errors, warnings) == (0, 0), messages
    assert_valid_storage_root(root)
    assert verify_object(obj, v2.state) == []
    assert sorted(p.relative_to(obj / "v2").as_posix() for p in (obj / "v2").rglob("*") if p.is_file()) == [
        "content/representations/normalized/data/résumé 2.txt",
        "content/representations/original/data/random-2.bin",
        "inventory.json",
        "inventory.json.sha512",
    ]
    # v1 inventory is untouched, and the v1 state is still what it was
    assert (obj / "v1/inventory.json").read_bytes() == v1.inventory_json
    assert verify_object(obj, v1.state) != []  # the head is v2 now
    with pytest.raises(FileExistsError):
        write_object_tree(obj, v2, sources2)


def test_two_objects_in_one_storage_root(tmp_path: Path) -> None:
    root, _, _, _ = build_and_write(tmp_path)
    other_id = "urn:uuid:11111111-2222-4333-8444-555555555555"
    files, sources = stage(tmp_path / "staging-other", {"data/x.txt": b"x"})
    plan = build_version(other_id, None, 1, CREATED, "second object", USER, files)
    write_object_tree(root / object_root_path(other_id), plan, sources)
    assert_valid_storage_root(root, expected_objects=2)


def test_write_refuses_a_source_that_changed_after_hashing(tmp_path: Path) -> None:
    files, sources = stage(tmp_path / "staging", {"a.txt": b"original"})
    plan = build_version(OBJECT_ID, None, 1, CREATED, "m", USER, files)
    sources["a.txt"].write_bytes(b"modified")
    obj = tmp_path / "obj"
    with pytest.raises(ValueError, match="a.txt"):
        write_object_tree(obj, plan, lambda logical: sources[logical])  # callable sources work too
    assert not (obj / "inventory.json").exists()


# --------------------------------------------------------------------------- damage detection


def content_path(plan: ObjectPlan, logical: str) -> str:
    return content_path_for(plan.inventory, logical)


def test_flipped_byte_is_detected(tmp_path: Path) -> None:
    _, obj, plan, _ = build_and_write(tmp_path)
    rel = content_path(plan, "representations/original/data/test0.fits")
    data = bytearray((obj / rel).read_bytes())
    data[2880 + 5] ^= 0x01
    (obj / rel).write_bytes(bytes(data))
    problems = verify_object(obj)
    problem_about(problems, rel, "sha512 mismatch")
    assert len(problems) == 1, problems
    assert not ocfl_py_object_messages(obj)[0]  # ocfl-py agrees


def test_truncated_file_is_detected(tmp_path: Path) -> None:
    _, obj, plan, _ = build_and_write(tmp_path)
    rel = content_path(plan, "representations/original/data/random-1.bin")
    with open(obj / rel, "r+b") as fh:
        fh.truncate(1024 * 1024)
    problems = verify_object(obj, plan.state)
    problem_about(problems, rel, "sha512 mismatch")
    problem_about(problems, "logical path representations/original/data/random-1.bin", "bytes, expected")
    assert not ocfl_py_object_messages(obj)[0]


def test_deleted_content_file_is_detected(tmp_path: Path) -> None:
    _, obj, plan, _ = build_and_write(tmp_path)
    rel = content_path(plan, ODD_NAME)
    (obj / rel).unlink()
    problems = verify_object(obj)
    problem_about(problems, rel, "content file missing")
    assert not ocfl_py_object_messages(obj)[0]


def test_extra_file_in_content_is_detected(tmp_path: Path) -> None:
    _, obj, _, _ = build_and_write(tmp_path)
    extra = "v1/content/representations/original/data/stray file é.txt"
    (obj / extra).write_bytes(b"not in the manifest")
    problems = verify_object(obj)
    problem_about(problems, extra, "not in manifest")
    assert len(problems) == 1, problems
    assert not ocfl_py_object_messages(obj)[0]


def test_extra_files_elsewhere_are_detected(tmp_path: Path) -> None:
    _, obj, _, _ = build_and_write(tmp_path)
    (obj / "notes.txt").write_bytes(b"x")
    (obj / "v1" / "stray.txt").write_bytes(b"x")
    (obj / "v2").mkdir()
    (obj / "v1/content/empty dir").mkdir()
    problems = verify_object(obj)
    problem_about(problems, "notes.txt", "unexpected file in object root")
    problem_about(problems, "v1/stray.txt", "unexpected file in version directory")
    problem_about(problems, "v2", "unexpected directory")
    problem_about(problems, "v1/content/empty dir", "empty directory")


def test_tampered_inventory_is_detected(tmp_path: Path) -> None:
    _, obj, _, _ = build_and_write(tmp_path)
    inv = obj / "inventory.json"
    inv.write_bytes(inv.read_bytes().replace(b"Ingest of delivery D-0001", b"Ingest of delivery D-0002"))
    problems = verify_object(obj)
    problem_about(problems, "inventory.json.sha512", "does not match")
    problem_about(problems, "v1/inventory.json", "differs from the root inventory.json")
    assert not ocfl_py_object_messages(obj)[0]


def test_tampered_version_inventory_is_detected(tmp_path: Path) -> None:
    _, obj, _, _ = build_and_write(tmp_path)
    (obj / "v1/inventory.json.sha512").write_bytes(b"0" * 128 + b" inventory.json\n")
    problems = verify_object(obj)
    problem_about(problems, "v1/inventory.json.sha512", "does not match")


def test_missing_declaration_and_broken_inventory(tmp_path: Path) -> None:
    _, obj, _, _ = build_and_write(tmp_path)
    (obj / "0=ocfl_object_1.1").unlink()
    (obj / "inventory.json").write_bytes(b"{ not json")
    problems = verify_object(obj)
    problem_about(problems, "0=ocfl_object_1.1", "declaration missing")
    problem_about(problems, "inventory.json", "not valid UTF-8 JSON")


def test_unsafe_manifest_path_is_reported_not_followed(tmp_path: Path) -> None:
    _, obj, _, _ = build_and_write(tmp_path)
    text = (obj / "inventory.json").read_text("utf-8").replace('"v1/content/METS.xml"', '"../../escape"')
    (obj / "inventory.json").write_text(text, "utf-8")
    problems = verify_object(obj)
    problem_about(problems, "'../../escape'", "unsafe content path")
    problem_about(problems, "v1/content/METS.xml", "not in manifest")


def test_expected_state_mismatch_is_reported(tmp_path: Path) -> None:
    _, obj, plan, _ = build_and_write(tmp_path)
    expected = dict(plan.state)
    del expected["METS.xml"]
    expected["missing.txt"] = Fixity(1, hashlib.sha256(b"m").hexdigest(), hashlib.sha512(b"m").hexdigest())
    other = expected["representations/original/data/random-2.bin"]
    expected["representations/original/data/random-2.bin"] = Fixity(other.size, "0" * 64, other.sha512)
    problems = verify_object(obj, expected)
    problem_about(problems, "logical path METS.xml", "not expected")
    problem_about(problems, "logical path missing.txt", "expected but not in v1")
    problem_about(problems, "logical path representations/original/data/random-2.bin", "sha256 fixity")
    assert len(problems) == 3, problems


def test_missing_object_root_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    assert verify_object(tmp_path / "nowhere") != []


def test_unreadable_directory_is_a_problem_not_an_exception(tmp_path: Path, monkeypatch) -> None:
    _, obj, _, _ = build_and_write(tmp_path)
    real_scandir = os.scandir

    def failing_scandir(path=None):
        if Path(path) == obj / "v1":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", failing_scandir)
    problem_about(verify_object(obj), "v1", "cannot read (Permission denied)")
