"""``Limits`` (bounds on a delivery) and ``safe_member_path`` (which member names may be staged)."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

import pytest

from oais.domain.issues import Issue, IssueCode, Severity
from sip.receive import DeliveryRefused, Limits, name_warnings, safe_member_path, shown, stage_delivery


# -- Limits ----------------------------------------------------------------------------------------
def test_defaults_are_sensible() -> None:
    limits = Limits()
    assert limits.max_bytes == 1 << 40
    assert limits.max_files == 100_000
    assert limits.max_ratio == 200
    assert limits.ratio_floor == 64 << 20
    assert limits.keep_free == 256 << 20


@pytest.mark.parametrize("field, value", [
    ("max_bytes", 0), ("max_bytes", -1), ("max_files", 0), ("max_files", True), ("max_files", 1.5),
    ("max_ratio", 0.5), ("max_ratio", float("nan")), ("max_ratio", "200"), ("ratio_floor", -1),
    ("keep_free", -1), ("max_name_bytes", 0), ("max_path_bytes", None),
])
def test_invalid_limits_are_refused_when_made(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"Limits.{field}"):
        Limits(**{field: value})  # type: ignore[arg-type]


def test_limits_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Limits().max_files = 3  # type: ignore[misc]


def test_byte_limit_is_the_smallest_and_says_which() -> None:
    limits = Limits(max_bytes=10_000, max_ratio=10, ratio_floor=0, keep_free=100)
    assert limits.byte_limit() == (10_000, "max_bytes=10000")
    limit, which = limits.byte_limit(archive_size=500)
    assert limit == 5_000 and which.startswith("max_ratio=10")
    limit, which = limits.byte_limit(archive_size=500, free=1_100)
    assert limit == 1_000 and which.startswith("free space in staging")
    assert limits.byte_limit(free=50)[0] == 0  # never negative


def test_ratio_floor_spares_small_compressible_deliveries() -> None:
    limits = Limits(max_ratio=2, ratio_floor=1 << 20)
    assert limits.byte_limit(archive_size=1_000)[0] == 1 << 20
    assert limits.byte_limit(archive_size=1 << 20)[0] == 2 << 20


def test_an_infinite_ratio_means_no_ratio_limit() -> None:
    import math

    assert Limits(max_ratio=math.inf).byte_limit(archive_size=10)[0] == Limits().max_bytes


def _codes_and_messages(source: Path, dest: Path, limits: Limits) -> list[tuple[str, str]]:
    with pytest.raises(DeliveryRefused) as exc:
        stage_delivery(source, dest, limits)
    return [(str(i.code), i.message) for i in exc.value.issues]


def _folder(tmp_path: Path, n: int, size: int) -> Path:
    root = tmp_path / "delivery"
    root.mkdir()
    for i in range(n):
        (root / f"f{i}.bin").write_bytes(b"x" * size)
    return root


def test_folder_over_max_bytes_is_refused_before_copying(tmp_path: Path) -> None:
    dest = tmp_path / "staging" / "delivery"
    issues = _codes_and_messages(_folder(tmp_path, 3, 100), dest, Limits(max_bytes=250))
    assert issues == [("SIP-E006", issues[0][1])] and "max_bytes=250" in issues[0][1]
    assert list(dest.iterdir()) == []


def test_folder_over_max_files_is_refused(tmp_path: Path) -> None:
    issues = _codes_and_messages(_folder(tmp_path, 5, 1), tmp_path / "s" / "d", Limits(max_files=4))
    assert [c for c, _ in issues] == ["SIP-E006"] and "max_files=4" in issues[0][1]


def test_folder_at_the_limits_is_accepted(tmp_path: Path) -> None:
    staged = stage_delivery(_folder(tmp_path, 4, 100), tmp_path / "s" / "d", Limits(max_files=4, max_bytes=400))
    assert sorted(p.name for p in staged.root.iterdir()) == ["f0.bin", "f1.bin", "f2.bin", "f3.bin"]


def test_zip_over_the_ratio_is_refused_naming_the_ratio(tmp_path: Path) -> None:
    source = tmp_path / "d.zip"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", b"a" * 100_000)
    issues = _codes_and_messages(source, tmp_path / "s" / "d", Limits(max_ratio=10, ratio_floor=0))
    assert [c for c, _ in issues] == ["SIP-E006"] and "max_ratio=10" in issues[0][1]
    assert stage_delivery(source, tmp_path / "s2" / "d", Limits(max_ratio=1000, ratio_floor=0)).root


def test_no_room_left_in_staging_is_refused(tmp_path: Path) -> None:
    issues = _codes_and_messages(_folder(tmp_path, 1, 10), tmp_path / "s" / "d", Limits(keep_free=1 << 62))
    assert [c for c, _ in issues] == ["SIP-E006"] and "keep_free" in issues[0][1]


def test_tar_stream_budget_counts_real_bytes(tmp_path: Path) -> None:
    import io
    import tarfile

    source = tmp_path / "d.tgz"
    with tarfile.open(source, "w:gz") as tf:
        for i in range(3):
            info = tarfile.TarInfo(f"delivery/{i}.bin")
            info.size = 1000
            tf.addfile(info, io.BytesIO(bytes(1000)))
    dest = tmp_path / "s" / "d"
    issues = _codes_and_messages(source, dest, Limits(max_bytes=2500))
    assert [c for c, _ in issues] == ["SIP-E006"]
    # a tar is a stream: the members before the limit stay, complete, for the quarantine
    assert sorted(p.name for p in (dest / "delivery").iterdir()) == ["0.bin", "1.bin"]


# -- safe_member_path --------------------------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("a.txt", "a.txt"),
    ("delivery/data/a.fits", "delivery/data/a.fits"),
    ("./delivery//a.txt", "delivery/a.txt"),
    ("delivery/", "delivery"),
    ("a..b/c...txt", "a..b/c...txt"),
    ("..a/b..", "..a/b.."),
    ("café/ünïcode.txt", "café/ünïcode.txt"),
    ("name:with:colons", "name:with:colons"),
    ("1:2", "1:2"),
    ("bell\x07.txt", "bell\x07.txt"),  # legal, reported by name_warnings
])
def test_safe_names(name: str, expected: str) -> None:
    assert safe_member_path(name) == PurePosixPath(expected)


@pytest.mark.parametrize("name", [".", "./", "", ".//./"])
def test_the_root_itself_is_the_empty_path(name: str) -> None:
    assert safe_member_path(name) == PurePosixPath()


@pytest.mark.parametrize("name, reason", [
    ("../evil.txt", "'..'"),
    ("delivery/../../evil.txt", "'..'"),
    ("a/..", "'..'"),
    ("/etc/passwd", "absolute"),
    ("//server/share/evil.txt", "absolute"),
    ("C:/Windows/evil.txt", "drive letter"),
    ("c:evil.txt", "drive letter"),
    ("..\\..\\evil.txt", "backslash"),
    ("delivery\\a.txt", "backslash"),
    ("C:\\evil.txt", "backslash"),
    ("evil.txt\x00.fits", "NUL"),
    ("bad-\udcff-utf8.txt", "not valid UTF-8"),
    ("x" * 256, "longer than 255 bytes"),
    ("é" * 128, "longer than 255 bytes"),  # 256 bytes in UTF-8
    ("/".join(["d" * 200] * 6), "path longer than 1024 bytes"),
])
def test_unsafe_names(name: str, reason: str) -> None:
    found = safe_member_path(name)
    assert isinstance(found, Issue)
    assert found.code is IssueCode.UNSAFE_PATH and found.severity is Severity.ERROR
    assert reason in found.message
    assert "\x00" not in (found.path or "") and "\udcff" not in (found.path or "")


def test_name_limits_follow_limits() -> None:
    assert isinstance(safe_member_path("x" * 20, Limits(max_name_bytes=10)), Issue)
    assert isinstance(safe_member_path("a/b/c", Limits(max_path_bytes=4)), Issue)
    assert safe_member_path("a/b", Limits(max_path_bytes=3)) == PurePosixPath("a/b")


def test_shown_escapes_control_characters_and_undecodable_bytes() -> None:
    assert shown("bell\x07\x1b[31m.txt") == "bell\\x07\\x1b[31m.txt"
    assert shown("bad-\udcff.txt") == "bad-\\xff.txt"
    assert shown("café.txt") == "café.txt"
    assert shown("del\x7f") == "del\\x7f"


@pytest.mark.parametrize("path, codes", [
    ("data/a.fits", []),
    ("data/bell\x07.fits", ["SIP-W001"]),
    ("tab\tdir/a.fits", ["SIP-W001"]),
    ("data/-rf", ["SIP-W001"]),
    ("data/2024-01-01T00:00:00.fits", ["SIP-W001"]),  # ':' is reserved on Windows
    ("data/.DS_Store", ["SIP-W002"]),
    ("__MACOSX/data/._a.fits", ["SIP-W002"]),
    ("Thumbs.db", ["SIP-W002"]),
])
def test_name_warnings(path: str, codes: list[str]) -> None:
    found = name_warnings(PurePosixPath(path))
    assert [str(i.code) for i in found] == codes
    assert all(i.severity is Severity.WARNING for i in found)
    assert all("\x07" not in i.message + (i.path or "") for i in found)  # shown escaped
