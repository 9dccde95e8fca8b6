"""Unit tests for aip.ocfl: storage layout (extension 0004), inventories, dedup, sidecars, write plans."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from aip import ocfl
from aip.ocfl import VersionUser, build_version, object_files, object_root_path, storage_root_files
from oais.domain.fixity import Fixity
from oais.domain.package import ContentFile, FileRole

OBJECT_ID = "urn:uuid:5b0c7f3e-8a56-4f0e-9d1e-2f4a6b1c9e01"
CREATED = datetime(2024, 3, 1, 12, 30, 45, tzinfo=timezone.utc)
USER = VersionUser("Ingest service", "mailto:archive@example.org")


def fx(data: bytes) -> Fixity:
    return Fixity(len(data), hashlib.sha256(data).hexdigest(), hashlib.sha512(data).hexdigest())


def cf(path: str, data: bytes) -> ContentFile:
    return ContentFile(path=path, fixity=fx(data), role=FileRole.ORIGINAL)


def v1_files() -> list[ContentFile]:
    return [
        cf("representations/original/data/a.fits", b"SIMPLE  =  T" * 10),
        cf("representations/original/data/b.fits", b"second file"),
        cf("METS.xml", b"<mets/>"),
    ]


def build_v1(files: list[ContentFile] | None = None, **kw) -> ocfl.ObjectPlan:
    args = dict(message="Ingest of delivery D-1", user=USER, created=CREATED)
    args.update(kw)
    return build_version(OBJECT_ID, None, 1, files=files if files is not None else v1_files(), **args)


# --------------------------------------------------------------------------- layout (extension 0004)


@pytest.mark.parametrize(
    ("object_id", "digest"),
    [
        ("object-01", "3c0ff4240c1e116dba14c7627f2319b58aa3d77606d0d90dfc6161608ac987d4"),
        ("..hor/rib:le-$id", "487326d8c2a3c0b885e23da1469b4d6671fd4e76978924b4443e9e3c316cda6d"),
    ],
)
def test_object_root_path_matches_extension_0004_example_1(object_id: str, digest: str) -> None:
    assert hashlib.sha256(object_id.encode("utf-8")).hexdigest() == digest  # the spec's table is right
    assert object_root_path(object_id) == f"{digest[:3]}/{digest[3:6]}/{digest[6:9]}/{digest}"


def test_object_root_path_documented_value_for_object_01() -> None:
    assert (
        object_root_path("object-01")
        == "3c0/ff4/240/3c0ff4240c1e116dba14c7627f2319b58aa3d77606d0d90dfc6161608ac987d4"
    )


@pytest.mark.parametrize(
    ("object_id", "expected"),
    [
        ("object-01", "ff/75/53/44/92/48/5e/ab/b3/9f/86/35/67/28/88/4e"),
        ("..hor/rib:le-$id", "08/31/97/66/fb/6c/29/35/dd/17/5b/94/26/77/17/e0"),
    ],
)
def test_object_root_path_extension_0004_example_2(object_id: str, expected: str) -> None:
    path = object_root_path(
        object_id, digest_algorithm="md5", tuple_size=2, number_of_tuples=15, short_object_root=True
    )
    assert path == expected


def test_object_root_path_extension_0004_example_3() -> None:
    assert object_root_path("object-01", tuple_size=0, number_of_tuples=0) == (
        "3c0ff4240c1e116dba14c7627f2319b58aa3d77606d0d90dfc6161608ac987d4"
    )


def test_object_root_path_non_ascii_id_is_hashed_as_utf8() -> None:
    oid = "urn:aip:Ångström/é"
    digest = hashlib.sha256(oid.encode("utf-8")).hexdigest()
    assert object_root_path(oid).endswith("/" + digest)
    assert re.fullmatch(r"[0-9a-f]{3}/[0-9a-f]{3}/[0-9a-f]{3}/[0-9a-f]{64}", object_root_path(oid))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tuple_size": 0, "number_of_tuples": 3},
        {"tuple_size": 3, "number_of_tuples": 0},
        {"tuple_size": 33, "number_of_tuples": 1},
        {"tuple_size": 32, "number_of_tuples": 3},  # 96 > 64 hex characters
        {"tuple_size": 32, "number_of_tuples": 2, "short_object_root": True},  # nothing left
    ],
)
def test_object_root_path_rejects_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        object_root_path("object-01", **kwargs)


def test_object_root_path_rejects_empty_id() -> None:
    with pytest.raises(ValueError):
        object_root_path("")


def test_storage_root_files() -> None:
    files = storage_root_files()
    assert set(files) == {
        "0=ocfl_1.1",
        "ocfl_layout.json",
        "extensions/0004-hashed-n-tuple-storage-layout/config.json",
    }
    assert files["0=ocfl_1.1"] == b"ocfl_1.1\n"
    layout = json.loads(files["ocfl_layout.json"])
    assert layout["extension"] == "0004-hashed-n-tuple-storage-layout"
    assert isinstance(layout["description"], str) and layout["description"]
    config = json.loads(files["extensions/0004-hashed-n-tuple-storage-layout/config.json"])
    assert config == {
        "extensionName": "0004-hashed-n-tuple-storage-layout",
        "digestAlgorithm": "sha256",
        "tupleSize": 3,
        "numberOfTuples": 3,
        "shortObjectRoot": False,
    }


def test_constants() -> None:
    assert ocfl.OCFL_VERSION == "1.1"
    assert (ocfl.OBJECT_DECLARATION, ocfl.OBJECT_DECLARATION_CONTENT) == ("0=ocfl_object_1.1", b"ocfl_object_1.1\n")
    assert (ocfl.ROOT_DECLARATION, ocfl.ROOT_DECLARATION_CONTENT) == ("0=ocfl_1.1", b"ocfl_1.1\n")
    assert ocfl.INVENTORY_TYPE == "https://ocfl.io/1.1/spec/#inventory"
    assert (ocfl.DIGEST_ALGORITHM, ocfl.CONTENT_DIRECTORY) == ("sha512", "content")


# --------------------------------------------------------------------------- inventory of v1


def test_v1_inventory_shape() -> None:
    plan = build_v1()
    inv = plan.inventory
    assert plan.head == "v1" and inv["head"] == "v1"
    assert inv["id"] == OBJECT_ID
    assert inv["type"] == "https://ocfl.io/1.1/spec/#inventory"
    assert inv["digestAlgorithm"] == "sha512"
    assert "contentDirectory" not in inv
    assert set(inv) == {"digestAlgorithm", "fixity", "head", "id", "manifest", "type", "versions"}
    v1 = inv["versions"]["v1"]
    assert v1["created"] == "2024-03-01T12:30:45Z"
    assert v1["message"] == "Ingest of delivery D-1"
    assert v1["user"] == {"name": "Ingest service", "address": "mailto:archive@example.org"}
    for f in v1_files():
        assert inv["manifest"][f.fixity.sha512] == [f"v1/content/{f.path}"]
        assert v1["state"][f.fixity.sha512] == [f.path]
    assert json.loads(plan.inventory_json) == inv


def test_fixity_block_has_sha256_for_every_content_path() -> None:
    plan = build_v1()
    sha256 = plan.inventory["fixity"]["sha256"]
    content_paths = sorted(p for paths in plan.inventory["manifest"].values() for p in paths)
    assert sorted(p for paths in sha256.values() for p in paths) == content_paths
    for f in v1_files():
        assert sha256[f.fixity.sha256] == [f"v1/content/{f.path}"]


def test_inventory_is_deterministic() -> None:
    files = v1_files()
    a = build_v1(files)
    b = build_v1(list(reversed(files)))
    assert a.inventory_json == b.inventory_json
    assert a.inventory_sidecar == b.inventory_sidecar
    text = a.inventory_json.decode("utf-8")
    assert text.endswith("}\n") and '\n  "digestAlgorithm": "sha512",' in text
    assert a.inventory_json == ocfl.canonical_json(json.loads(text))  # sorted keys, 2-space indent


def test_path_lists_are_sorted() -> None:
    data = b"same bytes"
    plan = build_v1([cf("z/last.txt", data), cf("a/first.txt", data), cf("m/middle.txt", data)])
    state = plan.inventory["versions"]["v1"]["state"][fx(data).sha512]
    assert state == ["a/first.txt", "m/middle.txt", "z/last.txt"]


def test_created_is_utc_seconds_with_z() -> None:
    created = datetime(2024, 3, 1, 14, 30, 45, 987654, tzinfo=timezone(timedelta(hours=2)))
    plan = build_v1(created=created)
    assert plan.inventory["versions"]["v1"]["created"] == "2024-03-01T12:30:45Z"


def test_naive_created_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        build_v1(created=datetime(2024, 3, 1, 12, 0, 0))


def test_user_without_address_and_bad_address() -> None:
    plan = build_v1(user=VersionUser("Alice"))
    assert plan.inventory["versions"]["v1"]["user"] == {"name": "Alice"}
    with pytest.raises(ValueError, match="URI"):
        VersionUser("Alice", "alice@example.org")


def test_sidecar_format() -> None:
    plan = build_v1()
    digest = hashlib.sha512(plan.inventory_json).hexdigest()
    assert plan.inventory_sidecar == f"{digest} inventory.json\n".encode("ascii")
    assert re.fullmatch(rb"[0-9a-f]{128} inventory\.json\n", plan.inventory_sidecar)


def test_non_ascii_names_are_written_as_utf8() -> None:
    name = "representations/original/data/Ångström spectrum é.fits"
    plan = build_v1([cf(name, b"x")])
    assert name.encode("utf-8") in plan.inventory_json
    assert b"\\u" not in plan.inventory_json


def test_duplicate_content_in_one_version_is_stored_once() -> None:
    plan = build_v1([cf("a.txt", b"same"), cf("b.txt", b"same"), cf("c.txt", b"other")])
    assert [c.content_path for c in plan.new_content] == ["v1/content/a.txt", "v1/content/c.txt"]
    assert plan.inventory["versions"]["v1"]["state"][fx(b"same").sha512] == ["a.txt", "b.txt"]
    assert plan.inventory["manifest"][fx(b"same").sha512] == ["v1/content/a.txt"]


def test_entries_and_object_files_v1() -> None:
    plan = build_v1()
    entries = object_files(plan)
    assert entries == list(plan.entries)
    paths = [e.path for e in entries]
    assert paths[-2:] == ["inventory.json", "inventory.json.sha512"]  # the sidecar is written last
    assert paths[-3] == "0=ocfl_object_1.1"
    assert paths[-5:-3] == ["v1/inventory.json", "v1/inventory.json.sha512"]
    content = dict(entries[:-5])
    assert content == {f"v1/content/{f.path}": f.path for f in v1_files()}
    literal = {p: s for p, s in entries[-5:]}
    assert literal["0=ocfl_object_1.1"] == b"ocfl_object_1.1\n"
    assert literal["inventory.json"] == literal["v1/inventory.json"] == plan.inventory_json
    assert literal["inventory.json.sha512"] == literal["v1/inventory.json.sha512"] == plan.inventory_sidecar
    assert plan.state == {f.path: f.fixity for f in v1_files()}


# --------------------------------------------------------------------------- later versions


def build_v2(v1: ocfl.ObjectPlan) -> ocfl.ObjectPlan:
    files = [
        cf("representations/original/data/a.fits", b"SIMPLE  =  T" * 10),  # unchanged
        cf("representations/original/data/b.fits", b"second file, corrected"),  # changed
        cf("representations/original/data/copy of a.fits", b"SIMPLE  =  T" * 10),  # same bytes as a
        cf("metadata/descriptive/dc.xml", b"<dc/>"),  # added
        # METS.xml removed
    ]
    return build_version(
        OBJECT_ID, v1.inventory, 2, CREATED + timedelta(days=1), "Correct b.fits", USER, files
    )


def test_v2_dedups_against_earlier_versions() -> None:
    v1 = build_v1()
    before = json.dumps(v1.inventory, sort_keys=True)
    v2 = build_v2(v1)
    assert json.dumps(v1.inventory, sort_keys=True) == before  # previous inventory not modified
    inv = v2.inventory
    assert v2.head == inv["head"] == "v2"
    assert [c.content_path for c in v2.new_content] == [
        "v2/content/metadata/descriptive/dc.xml",
        "v2/content/representations/original/data/b.fits",
    ]
    a = fx(b"SIMPLE  =  T" * 10).sha512
    assert inv["manifest"][a] == ["v1/content/representations/original/data/a.fits"]
    assert inv["versions"]["v2"]["state"][a] == [
        "representations/original/data/a.fits",
        "representations/original/data/copy of a.fits",
    ]
    # v1 stays as it was, and its content (including the removed METS.xml) stays in the manifest
    assert inv["versions"]["v1"] == v1.inventory["versions"]["v1"]
    assert inv["manifest"][fx(b"<mets/>").sha512] == ["v1/content/METS.xml"]
    all_paths = sorted(p for paths in inv["manifest"].values() for p in paths)
    assert sorted(p for paths in inv["fixity"]["sha256"].values() for p in paths) == all_paths
    assert len(all_paths) == 5
    assert "0=ocfl_object_1.1" not in [e.path for e in v2.entries]
    assert [e.path for e in v2.entries][-4:] == [
        "v2/inventory.json", "v2/inventory.json.sha512", "inventory.json", "inventory.json.sha512"
    ]


def test_unchanged_version_stores_nothing_new() -> None:
    v1 = build_v1()
    v2 = build_version(OBJECT_ID, v1.inventory, 2, CREATED, "metadata only", USER, v1_files())
    assert v2.new_content == ()
    assert v2.inventory["versions"]["v2"]["state"] == v1.inventory["versions"]["v1"]["state"]


def test_empty_version_is_allowed() -> None:
    plan = build_v1([])
    assert plan.inventory["manifest"] == {} and plan.inventory["versions"]["v1"]["state"] == {}
    assert plan.new_content == ()


@pytest.mark.parametrize(
    ("previous_version", "version", "object_id"),
    [(None, 2, OBJECT_ID), (1, 3, OBJECT_ID), (1, 1, OBJECT_ID), (1, 2, "urn:other")],
)
def test_version_sequence_and_id_are_checked(previous_version, version, object_id) -> None:
    previous = build_v1().inventory if previous_version else None
    with pytest.raises(ValueError):
        build_version(object_id, previous, version, CREATED, "m", USER, v1_files())


def test_previous_inventory_with_foreign_digest_algorithm_is_refused() -> None:
    previous = dict(build_v1().inventory, digestAlgorithm="sha256")
    with pytest.raises(ValueError, match="digestAlgorithm"):
        build_version(OBJECT_ID, previous, 2, CREATED, "m", USER, v1_files())


def test_same_sha512_with_other_sha256_is_refused() -> None:
    good = fx(b"data")
    bad = Fixity(good.size, hashlib.sha256(b"other").hexdigest(), good.sha512)
    files = [cf("a.txt", b"data"), ContentFile("b.txt", bad, FileRole.ORIGINAL)]
    with pytest.raises(ValueError, match="sha256"):
        build_v1(files)
    v1 = build_v1([cf("a.txt", b"data")])
    with pytest.raises(ValueError, match="sha256"):
        build_version(OBJECT_ID, v1.inventory, 2, CREATED, "m", USER, [ContentFile("a.txt", bad, FileRole.ORIGINAL)])


# --------------------------------------------------------------------------- path validation


@pytest.mark.parametrize(
    "path",
    ["", "/abs/path", "a//b", "a/./b", "a/../b", "../escape", "a/", "a\\b", "nul\x00byte", "A\u030angstrom"],
)
def test_unsafe_or_unnormalised_paths_are_refused_by_content_file(path: str) -> None:
    with pytest.raises(ValueError):
        cf(path, b"x")


def test_conflicting_logical_paths_are_refused() -> None:
    with pytest.raises(ValueError, match="conflicts"):
        build_v1([cf("data/a", b"1"), cf("data/a/b.txt", b"2")])


def test_case_insensitive_duplicates_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        build_v1([cf("data/A.fits", b"1"), cf("data/a.fits", b"2")])


def test_logical_state_and_content_path_for() -> None:
    v2 = build_v2(build_v1())
    state = ocfl.logical_state(v2.inventory)
    assert state["representations/original/data/copy of a.fits"] == fx(b"SIMPLE  =  T" * 10).sha512
    assert "METS.xml" in ocfl.logical_state(v2.inventory, "v1") and "METS.xml" not in state
    assert ocfl.content_path_for(v2.inventory, "representations/original/data/copy of a.fits") == (
        "v1/content/representations/original/data/a.fits"
    )


def test_version_names() -> None:
    assert ocfl.version_name(1) == "v1" and ocfl.version_name(12) == "v12"
    assert ocfl.parse_version_name("v12") == 12
    for bad in ("v01", "v0", "1", "v", "V1"):
        with pytest.raises(ValueError):
            ocfl.parse_version_name(bad)
