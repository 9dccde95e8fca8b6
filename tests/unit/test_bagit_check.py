"""sip.bagit_check: one small bag per rule, built by hand in tmp_path (no bagit-python)."""

from __future__ import annotations

import hashlib
import os
import threading
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import pytest

import sip.bagit_check as bc
from oais.domain.issues import Severity
from sip.bag import looks_like_bag
from sip.bag import validate_bag as validate_bag_pair
from sip.bagit_check import BagReport, validate_bag
from tests.conftest import tree_snapshot

HELLO = b"hello world\n"


def _hex(data: bytes, algorithm: str) -> str:
    return hashlib.new(algorithm.replace("-", "_"), data).hexdigest()


def make_bag(root: Path, files: dict[str, bytes] | None = None, *, algorithms: Iterable[str] = ("sha256", "sha512"),
             version: str = "1.0", encoding: str = "UTF-8", info: str | None = None, tag: bool = True,
             manifest_lines: dict[str, str] | None = None) -> Path:
    """A correct bag; ``manifest_lines`` replaces a manifest's text (by algorithm)."""
    files = {"data/hello.txt": HELLO} if files is None else files
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "bagit.txt").write_bytes(f"BagIt-Version: {version}\nTag-File-Character-Encoding: {encoding}\n".encode())
    if info is None:
        info = f"Source-Organization: IDOC\nPayload-Oxum: {sum(map(len, files.values()))}.{len(files)}\n"
    if info:
        (root / "bag-info.txt").write_bytes(info.encode(encoding))
    algorithms = list(algorithms)
    for a in algorithms:
        text = (manifest_lines or {}).get(a)
        if text is None:
            text = "".join(f"{_hex(d, a)}  {bc_encode(p)}\n" for p, d in files.items())
        (root / f"manifest-{a}.txt").write_bytes(text.encode(encoding))
    if tag:
        for a in algorithms:
            tags = sorted(p.name for p in root.iterdir() if p.is_file() and not p.name.startswith("tagmanifest-"))
            lines = "".join(f"{_hex((root / t).read_bytes(), a)}  {t}\n" for t in tags)
            (root / f"tagmanifest-{a}.txt").write_bytes(lines.encode(encoding))
    return root


def bc_encode(path: str) -> str:
    return path.replace("%", "%25").replace("\n", "%0A").replace("\r", "%0D")


def codes(report: BagReport, severity: Severity | None = None) -> set[str]:
    return {str(i.code) for i in report.issues if severity is None or i.severity is severity}


def only(report: BagReport, code: str) -> list:  # type: ignore[type-arg]
    return [i for i in report.issues if i.code == code]


# --- a correct bag ---------------------------------------------------------------------------------
def test_valid_bag_report(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"data/x.fits": b"SIMPLE", "data/sub/y.txt": HELLO},
                   info="Source-Organization: IDOC\nContact-Name: A\nContact-Name: B\n"
                        "External-Description: first line\n  continued\tline\nPayload-Oxum: 18.2\nBag-Size: 1 KB\n")
    before, cwd = tree_snapshot(bag), os.getcwd()
    r = validate_bag(bag)
    assert r.valid and r.issues == [], r.issues
    assert (r.version, r.encoding, r.algorithms) == ("1.0", "UTF-8", ["sha256", "sha512"])
    assert r.payload == ["data/sub/y.txt", "data/x.fits"]
    assert r.info["Contact-Name"] == ["A", "B"]
    assert r.info["External-Description"] == ["first line continued\tline"]
    assert r.manifest_paths["sha256"]["data/x.fits"] == _hex(b"SIMPLE", "sha256")
    assert tree_snapshot(bag) == before and os.getcwd() == cwd


def test_bag_py_wrapper_joins_repeated_labels(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", info="Contact-Name: A\ncontact-name: B\n")
    issues, info = validate_bag_pair(bag)
    assert issues == [] and info == {"Contact-Name": "A; B"}


def test_v1_bag_without_bag_info_is_valid(tmp_path: Path) -> None:
    r = validate_bag(make_bag(tmp_path / "bag", info=""))
    assert r.valid and r.issues == [] and r.info == {}


def test_each_file_read_once_for_all_algorithms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bag = make_bag(tmp_path / "bag", {"data/a": b"a" * 3_000_000, "data/b": b"b"},
                   algorithms=("md5", "sha1", "sha256", "sha512"))
    opened: list[str] = []
    real = bc.open_regular
    monkeypatch.setattr(bc, "open_regular", lambda p: (opened.append(Path(p).relative_to(bag).as_posix()), real(p))[1])
    r = validate_bag(bag)
    assert r.valid, r.issues
    assert opened.count("data/a") == 1 and opened.count("data/b") == 1


# --- links and special files -----------------------------------------------------------------------
def test_SIP_E015_symlink_in_data_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_bytes(HELLO)
    bag = make_bag(tmp_path / "bag")
    (bag / "data" / "link.txt").symlink_to(outside)
    (bag / "data" / "dirlink").symlink_to(tmp_path, target_is_directory=True)
    r = validate_bag(bag)
    links = {i.path: i.message for i in only(r, "SIP-E015")}
    assert set(links) == {"data/link.txt", "data/dirlink"} and "outside the bag" in links["data/link.txt"]
    assert "data/link.txt" not in r.payload and not r.valid
    assert not only(r, "SIP-E013")  # a link is reported once, as a link


def test_SIP_E015_symlinked_tag_file(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", tag=False)
    (bag / "bag-info.txt").unlink()
    (bag / "bag-info.txt").symlink_to("/etc/passwd")
    r = validate_bag(bag)
    assert codes(r, Severity.ERROR) == {"SIP-E015"} and r.info == {}


def test_SIP_E005_fifo_in_data_does_not_block(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag")
    os.mkfifo(bag / "data" / "pipe")
    done: list[BagReport] = []
    t = threading.Thread(target=lambda: done.append(validate_bag(bag)), daemon=True)
    t.start()
    t.join(20)
    assert done, "validate_bag blocked on a FIFO"
    assert [(i.code, i.path) for i in done[0].errors] == [("SIP-E005", "data/pipe")]


def test_SIP_E005_fifo_listed_in_manifest_is_never_opened(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"data/hello.txt": HELLO, "data/pipe": b""}, tag=False)
    (bag / "data" / "pipe").unlink()
    os.mkfifo(bag / "data" / "pipe")
    r = validate_bag(bag)
    assert codes(r, Severity.ERROR) == {"SIP-E005", "SIP-E014"}


# --- bagit.txt ---------------------------------------------------------------------------------------
def test_SIP_E020_bagit_txt_missing(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", tag=False)
    (bag / "bagit.txt").unlink()
    assert [(i.code, i.path) for i in validate_bag(bag).errors] == [("SIP-E020", "bagit.txt")]


@pytest.mark.parametrize("content, words", [
    (b"\xef\xbb\xbfBagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n", "byte-order mark"),
    (b"BagIt-Version: .97\nTag-File-Character-Encoding: UTF-8\n", "invalid version number"),
    (b"BagIt-Version : 1.0\nTag-File-Character-Encoding: UTF-8\n", "whitespace around the label"),
    (b"BagIt-Version: 1.0\n", "line is missing"),
    (b"Tag-File-Character-Encoding: UTF-8\nBagIt-Version: 1.0\n", "first line"),
    (b"BagIt-Version: 1.0\nTag-File-Character-Encoding: KLINGON-8\n", "unknown character encoding"),
    (b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\nExtra: line\n", "exactly two lines"),
    (b"", "is empty"),
])
def test_SIP_E020_bad_declaration(tmp_path: Path, content: bytes, words: str) -> None:
    bag = make_bag(tmp_path / "bag", tag=False)
    (bag / "bagit.txt").write_bytes(content)
    errors = validate_bag(bag).errors
    assert errors and all(i.code == "SIP-E020" and i.path == "bagit.txt" for i in errors)
    assert any(words in i.message for i in errors), errors


def test_old_versions_without_trailing_newline_and_package_info(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", version="0.95", info="", tag=False)
    (bag / "bagit.txt").write_bytes(b"BagIt-Version: 0.95\r\nTag-File-Character-Encoding: UTF-8")
    (bag / "package-info.txt").write_bytes(b"Source-Organization: X\r\nPayload-Oxum: 12.1\r\n")
    r = validate_bag(bag)
    assert r.valid and r.version == "0.95" and r.info["Payload-Oxum"] == ["12.1"], r.issues


def test_SIP_W010_unknown_version(tmp_path: Path) -> None:
    r = validate_bag(make_bag(tmp_path / "bag", version="1.1"))
    assert r.valid and codes(r) == {"SIP-W010"}


# --- tag-file encodings ------------------------------------------------------------------------------
def test_utf16_tag_files(tmp_path: Path) -> None:
    name = "data/café ü.txt"
    bag = make_bag(tmp_path / "bag", {name: HELLO}, encoding="UTF-16", info="Contact-Name: Zoë\nPayload-Oxum: 12.1\n")
    assert (bag / "manifest-sha256.txt").read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    r = validate_bag(bag)
    assert r.valid and r.issues == [] and r.encoding == "UTF-16", r.issues
    assert r.info["Contact-Name"] == ["Zoë"] and name in r.manifest_paths["sha512"]


def test_iso_8859_1_tag_files(tmp_path: Path) -> None:
    r = validate_bag(make_bag(tmp_path / "bag", encoding="ISO-8859-1", info="Contact-Name: Zoë\n"))
    assert r.valid and r.info["Contact-Name"] == ["Zoë"], r.issues


# --- bag-info.txt ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["no colon here\n", "  continuation first\n", "Label : value\n", "Label:value\n"])
def test_SIP_E021_bag_info_malformed_in_v1(tmp_path: Path, text: str) -> None:
    r = validate_bag(make_bag(tmp_path / "bag", info=text))
    assert [(i.code, i.path) for i in r.errors] == [("SIP-E021", "bag-info.txt")], r.issues


def test_SIP_W010_whitespace_around_labels_tolerated_before_v1(tmp_path: Path) -> None:
    r = validate_bag(make_bag(tmp_path / "bag", version="0.97", info="Test-Tag : 3\nTest-Tag    :   5\n"))
    assert r.valid and codes(r) == {"SIP-W010"} and r.info["Test-Tag"] == ["3", "5"]


def test_SIP_E014_payload_oxum_mismatch(tmp_path: Path) -> None:
    r = validate_bag(make_bag(tmp_path / "bag", info="Payload-Oxum: 13.1\n"))
    assert [(i.code, i.path) for i in r.errors] == [("SIP-E014", "bag-info.txt")]
    assert "13.1" in r.errors[0].message and "12.1" in r.errors[0].message


def test_SIP_E021_payload_oxum_syntax(tmp_path: Path) -> None:
    r = validate_bag(make_bag(tmp_path / "bag", info="Payload-Oxum: twelve\n"))
    assert codes(r, Severity.ERROR) == {"SIP-E021"}


# --- manifests ---------------------------------------------------------------------------------------
def test_SIP_E026_no_payload_manifest(tmp_path: Path) -> None:
    r = validate_bag(make_bag(tmp_path / "bag", algorithms=(), tag=False))
    assert codes(r, Severity.ERROR) == {"SIP-E026"}


def test_SIP_E011_checksum_mismatch(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag")
    (bag / "data" / "hello.txt").write_bytes(b"hello World\n")
    r = validate_bag(bag)
    assert [(i.code, i.path) for i in r.errors] == [("SIP-E011", "data/hello.txt")] * 2
    sha256 = next(i.message for i in r.errors if "sha256" in i.message)
    assert _hex(HELLO, "sha256") in sha256 and _hex(b"hello World\n", "sha256") in sha256


def test_SIP_E011_tag_manifest_mismatch(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag")
    (bag / "bag-info.txt").write_bytes(b"Source-Organization: someone else\n")
    r = validate_bag(bag)
    assert {(i.code, i.path) for i in r.errors} == {("SIP-E011", "bag-info.txt")}


def test_SIP_E012_missing_payload_and_tag_file(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"data/a": b"a", "data/b": b"b"}, info="")
    (bag / "data" / "b").unlink()
    (bag / "bagit.txt").write_bytes(b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    (bag / "tagmanifest-sha256.txt").write_text(f"{_hex(b'', 'sha256')}  bag-info.txt\n")
    (bag / "tagmanifest-sha512.txt").unlink()
    r = validate_bag(bag)
    assert {(i.code, i.path) for i in r.errors} == {("SIP-E012", "data/b"), ("SIP-E012", "bag-info.txt")}
    assert "manifest-sha256.txt, manifest-sha512.txt" in only(r, "SIP-E012")[0].message + only(r, "SIP-E012")[1].message


def test_SIP_E013_unexpected_file_and_not_in_every_manifest(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"data/a": b"a", "data/b": b"b"}, info="",
                   manifest_lines={"sha512": f"{_hex(b'a', 'sha512')}  data/a\n"})
    (bag / "data" / "extra").write_bytes(b"x")
    r = validate_bag(bag)
    found = {i.path: i.message for i in r.errors}
    assert set(found) == {"data/b", "data/extra"} and codes(r, Severity.ERROR) == {"SIP-E013"}
    assert "manifest-sha512.txt" in found["data/b"] and "manifest-sha256.txt" not in found["data/b"]


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/passwd", "~/foo", "~root/foo", "data/../../x",
                                  "C:\\Windows\\setx.exe", "\\\\server\\share\\x", "bagit.txt"])
def test_SIP_E016_manifest_path_escapes(tmp_path: Path, path: str) -> None:
    lines = f"{_hex(HELLO, 'sha256')}  data/hello.txt\n{_hex(HELLO, 'sha256')}  {path}\n"
    r = validate_bag(make_bag(tmp_path / "bag", algorithms=("sha256",), manifest_lines={"sha256": lines}))
    assert [(i.code, i.path) for i in r.errors] == [("SIP-E016", "manifest-sha256.txt")], r.issues


def test_SIP_E016_tag_manifest_escape(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", algorithms=("sha256",))
    with (bag / "tagmanifest-sha256.txt").open("a") as f:
        f.write(f"{_hex(HELLO, 'sha256')}  ../../etc/passwd\n")
    assert codes(validate_bag(bag), Severity.ERROR) == {"SIP-E016"}


def test_SIP_E016_fetch_escape(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", tag=False)
    (bag / "fetch.txt").write_text("https://example.org/x - ../../x\nhttps://example.org/y 5 /tmp/y\n")
    r = validate_bag(bag)
    assert [(i.code, i.path) for i in r.errors] == [("SIP-E016", "fetch.txt")] * 2


def test_SIP_E022_manifest_syntax(tmp_path: Path) -> None:
    lines = f"{_hex(HELLO, 'sha256')}  data/hello.txt\nonly-a-digest\nabc123  data/hello.txt\n"
    r = validate_bag(make_bag(tmp_path / "bag", algorithms=("sha256",), manifest_lines={"sha256": lines}))
    assert [(i.code, i.path) for i in r.errors] == [("SIP-E022", "manifest-sha256.txt")] * 2


def test_SIP_E023_same_path_different_hashes(tmp_path: Path) -> None:
    lines = f"{_hex(HELLO, 'sha256')}  data/hello.txt\n{'0' * 64}  data/hello.txt\n"
    r = validate_bag(make_bag(tmp_path / "bag", version="0.97", algorithms=("sha256",),
                              manifest_lines={"sha256": lines}))
    assert [(i.code, i.path) for i in r.errors] == [("SIP-E023", "manifest-sha256.txt")]


def test_SIP_E023_same_hash_twice_in_v1_but_SIP_W012_in_097(tmp_path: Path) -> None:
    lines = f"{_hex(HELLO, 'sha256')}  data/hello.txt\n" * 2
    v1 = validate_bag(make_bag(tmp_path / "v1", algorithms=("sha256",), manifest_lines={"sha256": lines}))
    v097 = validate_bag(make_bag(tmp_path / "v097", version="0.97", algorithms=("sha256",),
                                 manifest_lines={"sha256": lines}))
    assert codes(v1) == {"SIP-E023"} and not v1.valid
    assert codes(v097) == {"SIP-W012"} and v097.valid


def test_SIP_E024_accepted_algorithms(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", algorithms=("md5", "sha256"))
    assert validate_bag(bag, accepted_algorithms=["SHA-256", "md5"]).valid
    r = validate_bag(bag, accepted_algorithms=["sha256", "sha512"])
    assert {(i.code, i.path) for i in r.errors} == {("SIP-E024", "manifest-md5.txt"),
                                                    ("SIP-E024", "tagmanifest-md5.txt")}
    none = validate_bag(make_bag(tmp_path / "md5", algorithms=("md5",)), accepted_algorithms={"sha512"})
    assert codes(none, Severity.ERROR) == {"SIP-E024"} and not none.valid


def test_SIP_E024_algorithm_that_cannot_be_computed(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", tag=False)
    (bag / "manifest-crc32.txt").write_text("0badcafe  data/hello.txt\n")
    assert [(i.code, i.path) for i in validate_bag(bag).errors] == [("SIP-E024", "manifest-crc32.txt")]


def test_SIP_W011_weak_algorithm_only(tmp_path: Path) -> None:
    r = validate_bag(make_bag(tmp_path / "bag", algorithms=("md5", "sha1")))
    assert r.valid and codes(r) == {"SIP-W011"}
    assert validate_bag(make_bag(tmp_path / "mixed", algorithms=("md5", "sha256"))).issues == []


def test_sha3_and_blake2(tmp_path: Path) -> None:
    r = validate_bag(make_bag(tmp_path / "bag", algorithms=("sha3-256", "blake2b")))
    assert r.valid and r.issues == [] and r.algorithms == ["blake2b", "sha3-256"], r.issues


def test_SIP_W010_md5sum_binary_marker(tmp_path: Path) -> None:
    lines = f"{_hex(HELLO, 'md5')} *data/hello.txt\n"
    r = validate_bag(make_bag(tmp_path / "bag", algorithms=("md5",), manifest_lines={"md5": lines}))
    assert r.valid and codes(r) == {"SIP-W010", "SIP-W011"}
    assert only(r, "SIP-W010")[0].path == "manifest-md5.txt"


def test_SIP_W014_leading_dot_slash(tmp_path: Path) -> None:
    lines = f"{_hex(HELLO, 'sha256')}  ./data/hello.txt\n"
    r = validate_bag(make_bag(tmp_path / "bag", algorithms=("sha256",), manifest_lines={"sha256": lines}))
    assert r.valid and [(i.code, i.path) for i in r.issues] == [("SIP-W014", "manifest-sha256.txt")]
    assert r.manifest_paths["sha256"] == {"data/hello.txt": _hex(HELLO, "sha256")}


def test_SIP_W013_case_only_match(tmp_path: Path) -> None:
    lines = f"{_hex(HELLO, 'sha256')}  data/hello.txt\n{_hex(HELLO, 'sha256')}  data/HELLO.txt\n"
    r = validate_bag(make_bag(tmp_path / "bag", algorithms=("sha256",), manifest_lines={"sha256": lines}))
    assert r.valid and [(i.code, i.path) for i in r.issues] == [("SIP-W013", "data/hello.txt")]


def test_SIP_W013_normalisation_only_match_is_still_verified(tmp_path: Path) -> None:
    nfd = "data/Nu\u0301n\u0303ez"
    nfc = unicodedata.normalize("NFC", nfd)
    assert nfc != nfd
    good = validate_bag(make_bag(tmp_path / "good", {nfc: HELLO}, algorithms=("sha256",),
                                 manifest_lines={"sha256": f"{_hex(HELLO, 'sha256')}  {nfd}\n"}))
    assert good.valid and codes(good) == {"SIP-W013"}
    bad = validate_bag(make_bag(tmp_path / "bad", {nfc: HELLO}, algorithms=("sha256",),
                                manifest_lines={"sha256": f"{'0' * 64}  {nfd}\n"}))
    assert [(i.code, i.path) for i in bad.errors] == [("SIP-E011", nfc)]


def test_SIP_W013_payload_names_colliding_by_case(tmp_path: Path) -> None:
    r = validate_bag(make_bag(tmp_path / "bag", {"data/a.txt": b"1", "data/A.txt": b"2"}))
    assert r.valid and codes(r) == {"SIP-W013"}


def test_SIP_W002_system_junk(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"data/x": b"x", "data/.DS_Store": b"", "data/Thumbs.db": b""}, tag=False)
    (bag / "data" / ".DS_Store").unlink()  # listed but absent: not data, not an error (and not in the Oxum check)
    r = validate_bag(bag)
    assert r.valid and {(i.code, i.path) for i in r.issues} == {("SIP-W002", "data/.DS_Store"),
                                                                ("SIP-W002", "data/Thumbs.db")}, r.issues


def test_SIP_W015_fetch_entries_not_delivered(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"data/a": b"a", "data/remote": b"12345"}, tag=False)
    (bag / "data" / "remote").unlink()
    (bag / "fetch.txt").write_text("https://example.org/remote 5 data/remote\nhttps://example.org/a - data/a\n")
    r = validate_bag(bag)
    assert r.valid and [(i.code, i.path) for i in r.issues] == [("SIP-W015", "data/remote")], r.issues


def test_SIP_E010_fetch_entry_not_in_manifests_and_missing_data(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", tag=False)
    (bag / "fetch.txt").write_text("https://example.org/z - data/z\n")
    assert {(i.code, i.path) for i in validate_bag(bag).errors} == {("SIP-E010", "fetch.txt")}
    empty = make_bag(tmp_path / "empty", {}, tag=False)
    (empty / "data").rmdir()
    assert {(i.code, i.path) for i in validate_bag(empty).errors} == {("SIP-E010", "data")}


def test_percent_encoded_newline_and_percent_names(tmp_path: Path) -> None:
    files = {"data/two\nlines.txt": b"1", "data/carriage\rreturn": b"2", "data/100%.txt": b"3", "data/%7E": b"4"}
    r = validate_bag(make_bag(tmp_path / "bag", files))
    assert r.valid and r.issues == [], r.issues
    assert "data/two%0Alines.txt" in (tmp_path / "bag" / "manifest-sha256.txt").read_text()
    assert set(r.manifest_paths["sha512"]) == set(files) == set(r.payload)


def test_nested_bag_is_payload(tmp_path: Path) -> None:
    inner = make_bag(tmp_path / "inner")
    files = {f"data/inner/{p.relative_to(inner).as_posix()}": p.read_bytes() for p in inner.rglob("*") if p.is_file()}
    r = validate_bag(make_bag(tmp_path / "outer", files))
    assert r.valid and r.issues == [] and "data/inner/bagit.txt" in r.payload


def test_SIP_E001_not_found_and_SIP_E010_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    assert codes(validate_bag(tmp_path / "file")) == {"SIP-E010"}
    assert codes(validate_bag(tmp_path / "nothing")) == {"SIP-E001"}


def test_SIP_E014_names_package_info_before_096(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", version="0.94", info="", tag=False)
    (bag / "package-info.txt").write_bytes(b"Payload-Oxum: 99.1\n")
    assert [(i.code, i.path) for i in validate_bag(bag).errors] == [("SIP-E014", "package-info.txt")]


def test_SIP_E008_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bag = make_bag(tmp_path / "bag", {"data/a": b"a", "data/b": b"b"}, tag=False)
    real = bc.open_regular

    def refuse(path: str):  # type: ignore[no-untyped-def]
        if path.endswith("/data/a"):
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(bc, "open_regular", refuse)
    r = validate_bag(bag)
    assert [(i.code, i.path) for i in r.errors] == [("SIP-E008", "data/a")]
    assert "Permission denied" in r.errors[0].message


def test_SIP_E008_unreadable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bag = make_bag(tmp_path / "bag", {"data/a": b"a", "data/sub/b": b"b"}, tag=False)
    real = os.scandir

    def refuse(path):  # type: ignore[no-untyped-def]
        if str(path).endswith("/data/sub"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", refuse)
    r = validate_bag(bag)
    assert {(i.code, i.path) for i in r.errors} == {("SIP-E008", "data/sub"), ("SIP-E014", "bag-info.txt")}


def test_SIP_E020_bag_without_bagit_txt_still_looks_like_a_bag(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag")
    assert looks_like_bag(bag)
    (bag / "bagit.txt").unlink()
    assert looks_like_bag(bag)  # refused as a bag (SIP-E020), not accepted as a plain folder
    plain = tmp_path / "plain"
    (plain / "data").mkdir(parents=True)
    (plain / "notes-manifest.txt").write_text("x")
    assert not looks_like_bag(plain)
