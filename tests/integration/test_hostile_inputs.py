"""Hostile deliveries, through the real ``oais`` command: refused with the right code, quickly, without a
traceback, without touching the input, and without writing a byte outside the archive home.

Every case of ``tests.hostile.HOSTILE`` runs ``python -m oais.cli ingest <input> --json`` in a
subprocess against a home made by ``oais init`` (a subprocess too). The subprocess runs in an empty
working folder with ``TMPDIR`` pointing into the test's own folder, so anything it writes outside the
home, temporary files included, shows up in the before/after snapshot of the test's folder.

Outside the test's folder (``/tmp`` and the rest of the disk) a snapshot cannot tell our run from the
other processes of the machine, so the subprocess also records, with a Python audit hook installed
by a ``sitecustomize`` on its ``PYTHONPATH``, every path it opens for writing, creates, renames or
removes; every one of them must lie inside the home. New names in ``/tmp`` are compared before and
after too, and one that the run wrote, or that looks like a payload (``evil``), fails the test.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from sip.receive import DeliveryRefused, Limits, stage_delivery
from tests.conftest import REPO, tree_snapshot
from tests.hostile import CONTENT, EVIL, HOSTILE, code_of

TIMEOUT = 60

AUDIT_HOOK = r"""
# Written by tests/integration/test_hostile_inputs.py: records every path this process writes.
import atexit, json, os, sys

_LOG = os.environ.get("HOSTILE_AUDIT_LOG")
_WRITES = []
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {"os.mkdir", "os.remove", "os.rmdir", "os.chmod", "os.utime", "os.truncate", "os.chown",
                "shutil.rmtree", "tempfile.mkstemp", "tempfile.mkdtemp", "sqlite3.connect"}
_PAIR_EVENTS = {"os.rename", "os.symlink", "os.link", "shutil.copyfile", "shutil.move", "shutil.copytree"}
_done = False


def _record(event, path, dir_fd=None):
    if isinstance(path, int) or path is None:
        return
    try:
        path = os.fsdecode(path)
    except TypeError:
        return
    if path in (":memory:", ""):
        return
    if dir_fd is not None and not os.path.isabs(path):
        path = "<relative to a folder descriptor>/" + path
    else:
        path = os.path.abspath(path)
    _WRITES.append([event, path])


def _hook(event, args):
    if _done or not _LOG:
        return
    try:
        if event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
                mode is None and flags is not None and flags & _WRITE_FLAGS)
            if writing:
                _record(event, path)
        elif event in _PATH_EVENTS:
            dir_fd = args[-1] if event in {"os.mkdir", "os.remove", "os.rmdir", "os.chmod", "os.utime",
                                             "os.chown", "shutil.rmtree"} and len(args) > 1 else None
            _record(event, args[0], dir_fd if isinstance(dir_fd, int) else None)
        elif event in _PAIR_EVENTS:
            _record(event, args[1])
            if event in {"os.rename", "shutil.move"}:
                _record(event, args[0])
    except Exception:  # the hook must never change what it watches
        pass


def _dump():
    global _done
    _done = True
    with open(_LOG, "w", encoding="utf-8") as f:
        json.dump(_WRITES, f)


if _LOG:
    sys.addaudithook(_hook)
    atexit.register(_dump)
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAIS_")}
    env["TMPDIR"] = str(tmp_path / "tmpdir")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "audit"), str(REPO)])
    env["HOSTILE_AUDIT_LOG"] = str(tmp_path / "audit" / "writes.json")
    return env


def _oais(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oais.cli", *args], cwd=tmp_path / "cwd", env=_env(tmp_path),
                          capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def _writes(tmp_path: Path) -> list[tuple[str, str]]:
    return [tuple(w) for w in json.loads((tmp_path / "audit" / "writes.json").read_text("utf-8"))]


def lstat_tree(root: Path, exclude: Path | None = None) -> dict[str, tuple[str, int, int, int]]:
    """Every entry under ``root`` by ``lstat``: links are not followed, FIFOs and devices never opened."""
    snap: dict[str, tuple[str, int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if exclude is not None:
            dirnames[:] = [d for d in dirnames if Path(dirpath, d) != exclude]
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    what = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                what = "-> " + os.readlink(path)
            else:
                what = f"type {stat.S_IFMT(st.st_mode):o}"
            snap[os.path.relpath(path, root)] = (what, st.st_size, st.st_mode, st.st_mtime_ns)
    return snap


def input_snapshot(source: Path) -> dict[str, tuple[str, int, int, int]]:
    """``tree_snapshot`` of the input; by ``lstat`` only when it holds FIFOs, sockets or devices."""
    special = source.is_dir() and any(
        not (stat.S_ISREG(m) or stat.S_ISDIR(m) or stat.S_ISLNK(m))
        for m in (os.lstat(os.path.join(d, n)).st_mode for d, ds, fs in os.walk(source) for n in ds + fs))
    return lstat_tree(source) if special else tree_snapshot(source)


def _evil_anywhere_outside(home: Path, tmp_path: Path) -> list[str]:
    """Payload names (``evil.txt`` and kin) next to the input, in the test folders or in /tmp."""
    marker = Path(EVIL).stem
    found = [p for p in lstat_tree(tmp_path, exclude=home) if marker in Path(p).name]
    found += [n for n in os.listdir("/tmp") if marker in n]
    found += [n for n in os.listdir(tmp_path.parent) if marker in n]
    return found


def _params() -> list[object]:
    return [pytest.param(key, id=key) for key in sorted({**HOSTILE, **CONTENT})]


@pytest.mark.parametrize("key", _params())
def test_hostile_input_through_the_cli(key: str, tmp_path: Path) -> None:
    code = code_of(key)
    refused = "-E" in code
    home = tmp_path / "home"
    for folder in ("cwd", "tmpdir", "input", "audit"):
        (tmp_path / folder).mkdir()
    (tmp_path / "audit" / "sitecustomize.py").write_text(AUDIT_HOOK, encoding="utf-8")
    init = _oais(tmp_path, "init", "--home", str(home), "--json")
    assert init.returncode == 0, init.stderr
    assert _writes(tmp_path), "the audit hook did not run in the subprocess"
    source = {**HOSTILE, **CONTENT}[key](tmp_path / "input")

    before_input = input_snapshot(source)
    before_outside = lstat_tree(tmp_path, exclude=home)
    tmp_before = set(os.listdir("/tmp"))
    started = time.monotonic()
    run = _oais(tmp_path, "ingest", str(source), "--dataset", "hostile", "--home", str(home), "--json")
    elapsed = time.monotonic() - started
    new_in_tmp = set(os.listdir("/tmp")) - tmp_before

    assert "Traceback" not in run.stderr, run.stderr
    report = json.loads(run.stdout)
    codes = [i["code"] for i in report["issues"]]
    assert code in codes, report["issues"]
    if refused:
        assert run.returncode == 1, run.stderr
        assert report["disposition"] == "refused"
        assert report["aip_id"] is None
    else:
        assert run.returncode == 0, run.stderr
        assert report["disposition"] == "accepted"
    assert elapsed < TIMEOUT

    # the producer's input is untouched
    assert input_snapshot(source) == before_input
    # nothing was written outside the home: not next to the input, not in the cwd, not in TMPDIR...
    after_outside = lstat_tree(tmp_path, exclude=home)
    after_outside.pop("audit/writes.json")
    before_outside.pop("audit/writes.json")
    assert after_outside == before_outside
    # ... nor anywhere else, by the subprocess's own account of what it wrote
    inside = str(home.resolve()) + os.sep
    # (removals relative to a folder descriptor come from shutil.rmtree clearing staging; a removal
    # cannot create anything, and the on-disk comparison above covers what exists outside the home)
    outside = [w for w in _writes(tmp_path) if not (w[1] + os.sep).startswith(inside) and w[1] != os.devnull
               and not (w[0] in ("os.remove", "os.rmdir") and w[1].startswith("<relative to a folder"))]
    assert outside == [], outside
    assert _evil_anywhere_outside(home, tmp_path) == []
    ours_in_tmp = sorted(n for n in new_in_tmp if "evil" in n
                         or any(p == f"/tmp/{n}" or p.startswith(f"/tmp/{n}/") for _, p in _writes(tmp_path)))
    assert ours_in_tmp == [], ours_in_tmp
    # the staging area is emptied; what was kept in quarantine is regular files and folders only
    assert list((home / "staging").iterdir()) == []
    kept = lstat_tree(home / "quarantine")
    assert all(stat.S_ISREG(m) or stat.S_ISDIR(m) for _, _, m, _ in kept.values()), kept
    if refused:
        for replica in ("replica-a", "replica-b"):
            assert list((home / replica / "ocfl").rglob("inventory.json")) == [], replica


# -- the same rules, one level down (fast, no subprocess) -------------------------------------------
def _refusal(source: Path, dest: Path, limits: Limits = Limits()) -> list[tuple[str, str | None, str]]:
    with pytest.raises(DeliveryRefused) as exc:
        stage_delivery(source, dest, limits)
    return [(str(i.code), i.path, i.message) for i in exc.value.issues]


@pytest.mark.parametrize("key", sorted(HOSTILE))
def test_hostile_input_staged_directly(key: str, tmp_path: Path) -> None:
    (tmp_path / "input").mkdir()
    source = HOSTILE[key](tmp_path / "input")
    dest = tmp_path / "staging" / "delivery"
    started = time.monotonic()
    if code_of(key).startswith("SIP-W"):
        staged = stage_delivery(source, dest)
        assert code_of(key) in [str(i.code) for i in staged.issues]
    else:
        assert code_of(key) in [c for c, _, _ in _refusal(source, dest)]
    assert time.monotonic() - started < 10
    for dirpath, dirnames, filenames in os.walk(tmp_path / "staging"):
        for name in dirnames + filenames:
            mode = os.lstat(os.path.join(dirpath, name)).st_mode
            assert stat.S_ISREG(mode) or stat.S_ISDIR(mode), name


def test_every_bad_member_is_in_one_report(tmp_path: Path) -> None:
    source = tmp_path / "bad.zip"
    with zipfile.ZipFile(source, "w") as zf:
        zf.writestr("delivery/fine.txt", b"ok\n")
        for name in ("../evil1.txt", "/abs/evil2.txt", "..\\evil3.txt", "C:evil4.txt", "a/../../evil5.txt"):
            zf.writestr(name, b"x")
        link = zipfile.ZipInfo("delivery/link")
        link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "fine.txt")
        zf.writestr("delivery/Fine.txt", b"case\n")
    dest = tmp_path / "staging" / "delivery"
    issues = _refusal(source, dest)
    assert sorted(c for c, _, _ in issues) == ["SIP-E004"] * 5 + ["SIP-E009", "SIP-E015"]
    assert any("inside the delivery" in m for c, _, m in issues if c == "SIP-E015")
    assert list(dest.iterdir()) == []  # a zip is checked whole before a byte is written


def test_lying_header_leaves_no_partial_file(tmp_path: Path) -> None:
    source = HOSTILE["SIP-E006_zip_bomb_lying_header"](tmp_path)
    dest = tmp_path / "staging" / "delivery"
    issues = _refusal(source, dest)
    assert [c for c, _, _ in issues] == ["SIP-E006"]
    assert "lying header" in issues[0][2]
    staged = {p.relative_to(dest).as_posix(): p.stat().st_size for p in dest.rglob("*") if p.is_file()}
    assert staged == {"delivery/README.txt": 15}  # complete members only: the bomb's partial file is gone


def test_a_symlink_given_as_the_delivery_is_followed_links_inside_never(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.txt").write_text("a\n")
    link = tmp_path / "link-to-delivery"
    link.symlink_to(real)
    staged = stage_delivery(link, tmp_path / "s1" / "delivery")
    assert (staged.root / "a.txt").read_text() == "a\n"
    archive = tmp_path / "real.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("delivery/a.txt", b"a\n")
    zip_link = tmp_path / "latest"  # no suffix: the kind comes from the file it points at
    zip_link.symlink_to(archive)
    assert (stage_delivery(zip_link, tmp_path / "s2" / "delivery").root / "a.txt").read_bytes() == b"a\n"
    (real / "inner").symlink_to(real / "a.txt")
    assert [c for c, _, _ in _refusal(link, tmp_path / "s3" / "delivery")] == ["SIP-E015"]


def test_staged_files_keep_mtime_and_are_owner_readable(tmp_path: Path) -> None:
    src = tmp_path / "delivery"
    (src / "sub").mkdir(parents=True)
    files = {"ro.txt": 0o444, "setuid.sh": 0o4755, "sub/x.txt": 0o600}
    for name in files:
        (src / name).write_text(name)
        os.utime(src / name, ns=(1_000_000_000_000_000_000, 1_234_567_890_123_456_789))
    for name, mode in files.items():
        os.chmod(src / name, mode)
    os.chmod(src / "sub", 0o555)
    before = tree_snapshot(src)
    try:
        staged = stage_delivery(src, tmp_path / "staging" / "delivery")
    finally:
        os.chmod(src / "sub", 0o755)
    os.chmod(src / "sub", 0o555)
    assert tree_snapshot(src) == before
    expected = {"ro.txt": 0o644, "setuid.sh": 0o755, "sub/x.txt": 0o600}
    for name, mode in expected.items():
        st = os.stat(staged.root / name)
        assert st.st_mtime_ns == 1_234_567_890_123_456_789, name
        assert oct(stat.S_IMODE(st.st_mode)) == oct(mode), name
    assert os.stat(staged.root / "sub").st_mode & 0o700 == 0o700
    os.chmod(src / "sub", 0o755)


def test_nested_archives_are_payload_and_good_archives_expand(tmp_path: Path) -> None:
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("../evil.txt", b"never expanded: just bytes of the payload")
    methods = {"stored.bin": zipfile.ZIP_STORED, "deflated.txt": zipfile.ZIP_DEFLATED,
               "bzip2.txt": zipfile.ZIP_BZIP2, "lzma.txt": zipfile.ZIP_LZMA}
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(inner, "delivery/inner.zip")
        for name, method in methods.items():
            zf.writestr(zipfile.ZipInfo(f"delivery/{name}", (2020, 1, 2, 3, 4, 6)), name.encode() * 1000,
                        compress_type=method)
    staged = stage_delivery(outer, tmp_path / "staging" / "delivery")
    assert (staged.root / "inner.zip").read_bytes() == inner.read_bytes()
    for name in methods:
        assert (staged.root / name).read_bytes() == name.encode() * 1000
    assert time.localtime(os.stat(staged.root / "lzma.txt").st_mtime)[:6] == (2020, 1, 2, 3, 4, 6)
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_good_tars_expand(tmp_path: Path, mode: str) -> None:
    import io
    import tarfile

    source = tmp_path / ("d.tgz" if mode == "w:gz" else "d.tar")  # bz2/xz: recognised by their first bytes
    with tarfile.open(source, mode) as tf:
        for name in ("delivery/", "delivery/a.txt", "delivery/sub/b.txt"):
            info = tarfile.TarInfo(name.rstrip("/"))
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                data = name.encode() * 100
                info.size, info.mtime = len(data), 1_600_000_000
                tf.addfile(info, io.BytesIO(data))
    staged = stage_delivery(source, tmp_path / "staging" / "delivery")
    assert staged.kind == "tar"
    assert (staged.root / "sub" / "b.txt").read_bytes() == b"delivery/sub/b.txt" * 100
    assert os.stat(staged.root / "a.txt").st_mtime == 1_600_000_000


# -- hostile XML (delivery manifests, agreements): oais.formats.safexml ------------------------------
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>
"""
XXE_FILE = b"""<?xml version="1.0"?>
<!DOCTYPE delivery [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<delivery><sipId>&xxe;</sipId></delivery>
"""


def _xml_refused(payload: bytes | Path) -> str:
    from oais.formats.safexml import UnsafeXml, parse_xml

    started = time.monotonic()
    with pytest.raises(UnsafeXml) as exc:
        parse_xml(payload)
    assert time.monotonic() - started < 2
    message = str(exc.value)
    assert "root:" not in message and "/bin/" not in message  # nothing of /etc/passwd leaks
    return message


def test_billion_laughs_is_refused_quickly() -> None:
    assert "entities" in _xml_refused(BILLION_LAUGHS)
    assert "entities" in _xml_refused(BILLION_LAUGHS.decode().encode("utf-16"))


def test_xxe_file_is_refused_and_nothing_leaks(tmp_path: Path) -> None:
    _xml_refused(XXE_FILE)
    path = tmp_path / "delivery.xml"
    path.write_bytes(XXE_FILE)
    _xml_refused(path)


def test_xxe_hidden_from_a_byte_scan_is_still_refused() -> None:
    """UTF-7 hides '<!ENTITY' from a byte search; the parsed DOCTYPE is checked too (and lxml never
    resolved the entity meanwhile)."""
    utf7 = ('<?xml version="1.0" encoding="UTF-7"?>+ADw-+ACE-DOCTYPE r +AFs-+ADw-+ACE-ENTITY x SYSTEM '
            '+ACI-file:///etc/passwd+ACI-+AD4-+AF0-+AD4-+ADw-r+AD4-+ACY-x+ADs-+ADw-/r+AD4-').encode()
    assert b"<!ENTITY" not in utf7
    _xml_refused(utf7)


def test_xml_never_reaches_the_network() -> None:
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.3)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/evil"
        for payload in (f'<!DOCTYPE r [<!ENTITY x SYSTEM "{url}">]><r>&x;</r>',
                        f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{url}"> %p;]><r/>',
                        f'<!DOCTYPE r SYSTEM "{url}"><r/>'):
            _xml_refused(payload.encode())
        with pytest.raises(socket.timeout):
            server.accept()  # nobody called


def test_plain_xml_parses_and_oversized_or_special_files_do_not(tmp_path: Path) -> None:
    from lxml import etree

    from oais.formats.safexml import UnsafeXml, parse_xml

    tree = parse_xml(b'<?xml version="1.0"?><!DOCTYPE delivery><delivery><sipId>x</sipId></delivery>')
    assert isinstance(tree, etree._ElementTree) and tree.findtext("sipId") == "x"
    path = tmp_path / "m.xml"
    path.write_bytes(b"<a>" + b"<b/>" * 100 + b"</a>")
    assert len(parse_xml(path).getroot()) == 100
    with pytest.raises(UnsafeXml, match="larger than"):
        parse_xml(path, max_bytes=100)
    os.mkfifo(tmp_path / "pipe.xml")
    with pytest.raises(UnsafeXml, match="not a regular file"):
        parse_xml(tmp_path / "pipe.xml")  # opened non-blocking, refused: never waits for a writer
    with pytest.raises(etree.XMLSyntaxError):
        parse_xml(b"<a><b></a>")
