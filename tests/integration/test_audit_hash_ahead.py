"""Hashing the stored files ahead of an audit (``oais.storage.hash_ahead``): the process reports the
right sha256 of exactly the regular files under its roots, and the audit takes a digest from it only
for the file it names, finds damage through it, and reads itself whatever it did not report.

A real process over real files; the audits run on real replicas of a real ingest (SQLite and
PostgreSQL, through ``test_audit_sha256``'s fixture).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

import oais.services.audit as audit_module
from oais.formats.digest import READ_BUFFER
from oais.storage import hash_ahead
from oais.storage.hash_ahead import Digests, Found, HashAhead
from tests.integration.test_audit_sha256 import BAD, FITS, GOOD, Held, flip_byte
from tests.integration.test_audit_sha256 import held as held  # noqa: F401 -- the fixture, shared


def sha256(path: Path) -> tuple[int, str]:
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


@pytest.fixture
def started() -> Iterator[list[HashAhead]]:
    processes: list[HashAhead] = []
    yield processes
    for p in processes:
        p.close()


def start(started: list[HashAhead], *roots: Path) -> HashAhead:
    ahead = HashAhead.start(list(roots))
    assert ahead is not None
    started.append(ahead)
    return ahead


# -- the process -----------------------------------------------------------------------------------
def test_every_regular_file_under_the_roots_and_nothing_else(tmp_path: Path, started: list[HashAhead]) -> None:
    root, other, outside = tmp_path / "root", tmp_path / "other", tmp_path / "outside"
    for folder in (root / "a" / "b", other, outside):
        folder.mkdir(parents=True)
    files = {root / "top.bin": os.urandom(70_000), root / "a" / "with space.fits": b"x" * 3,
             root / "a" / "b" / "empty": b"", root / "a" / "b" / "été.txt": b"accents",
             other / "second-root": os.urandom(1000), outside / "not-under-a-root": b"no"}
    for path, data in files.items():
        path.write_bytes(data)
    (root / "a" / "odd\nname").write_bytes(b"a newline in the name: left to the audit")
    (root / "linked-folder").symlink_to(outside)  # not followed
    (root / "linked-file").symlink_to(root / "top.bin")  # read, as the audit would read it
    os.mkfifo(root / "a" / "fifo")  # not a regular file: left out, and never waited on

    digests = start(started, root, other).digests(finish=True)

    expected = {str(p): sha256(p) for p in files if outside not in p.parents}
    expected[str(root / "linked-file")] = sha256(root / "top.bin")
    assert digests.done == expected
    assert digests.pending == {}


def test_stopped_early_it_reports_what_it_hashed_and_then_what_it_was_hashing(
        tmp_path: Path, started: list[HashAhead]) -> None:
    small = [tmp_path / f"s{i:03}" for i in range(50)]
    for p in small:
        p.write_bytes(os.urandom(4096))
    big = tmp_path / "zz-big"  # walked last; 2 GiB of a sparse file take more than a second to hash
    with open(big, "wb") as f:
        f.truncate(2 << 30)
    ahead = start(started, tmp_path)
    deadline = time.monotonic() + 30
    while not _has_open(ahead.process.pid, big):
        assert time.monotonic() < deadline, "the process never opened the big file"
        time.sleep(0.005)

    digests = ahead.digests()

    assert set(digests.done) | set(digests.pending) == {str(p) for p in [*small, big]}
    assert str(big) in digests.pending and len(digests.pending) <= 2  # one file per hashing thread
    for path, found in digests.done.items():
        assert found == sha256(Path(path))
    zeros = hashlib.sha256()
    for _ in range(2048):
        zeros.update(bytes(1 << 20))
    for path, future in digests.pending.items():
        assert future.result(timeout=60) == ((2 << 30, zeros.hexdigest()) if path == str(big) else sha256(Path(path)))
    assert ahead.digests() is digests
    ahead.process.wait(timeout=30)
    assert ahead.process.returncode == 0


def _has_open(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) == str(path) for fd in fds.iterdir())
    except OSError:  # a descriptor closed while listed
        return False


def test_the_process_ends_with_its_parent_and_writes_nothing(tmp_path: Path, started: list[HashAhead]) -> None:
    (tmp_path / "f").write_bytes(b"data")
    before = sorted(tmp_path.rglob("*"))
    ahead = start(started, tmp_path)
    assert ahead.process.stdin is not None
    ahead.process.stdin.close()  # as when the auditing process dies
    assert ahead.process.wait(timeout=30) == 0
    assert sorted(tmp_path.rglob("*")) == before and (tmp_path / "f").read_bytes() == b"data"


def test_the_process_imports_nothing_from_the_current_folder(tmp_path: Path, started: list[HashAhead],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    hostile, data = tmp_path / "hostile", tmp_path / "data"
    hostile.mkdir()
    data.mkdir()
    (data / "f").write_bytes(b"data")
    marker = tmp_path / "imported"
    (hostile / "hashlib.py").write_text(f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8")
    monkeypatch.chdir(hostile)  # where the archivist ran `oais audit`
    digests = start(started, data).digests(finish=True)
    assert not marker.exists()
    assert digests.done == {str(data / "f"): sha256(data / "f")}


# -- the audit's use of it --------------------------------------------------------------------------
def roots(held: Held) -> list[Path]:
    return [loc.root for loc in held.archive.location_map().values()]


def test_every_file_hashed_ahead_is_not_read_again(held: Held, started: list[HashAhead],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    held.set_digests(sha256=True)
    ahead = start(started, *roots(held))
    ahead.digests(finish=True)
    monkeypatch.setattr(audit_module, "hash_file", _must_not_read)

    result = held.audit(ahead=ahead)

    units = held.units()
    assert result.intact and result.files == result.passed == len(units)
    checks = held.checks(result.audit_id)
    assert {(loc, path): (c.outcome, c.sha256_found, c.size_found) for (loc, path), c in checks.items()} == {
        (loc, path): ("pass", digest, size) for _id, loc, path, size, digest, _sha512 in units}


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the audit reads itself, from now on (it still reads them)."""
    read: list[str] = []
    real = audit_module.hash_file

    def hash_file(path: Any, *args: Any, **kwargs: Any) -> tuple[int, str]:
        read.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(audit_module, "hash_file", hash_file)
    return read


def _must_not_read(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"read by the audit although hashed ahead: {args[0]}")


def test_damage_is_found_through_the_digests_hashed_ahead(held: Held, started: list[HashAhead],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    held.set_digests(sha256=True)
    flip_byte(held.obj(BAD) / FITS)
    found = sha256(held.obj(BAD) / FITS)
    ahead = start(started, *roots(held))
    ahead.digests(finish=True)
    monkeypatch.setattr(audit_module, "hash_file", _must_not_read)

    result = held.audit(ahead=ahead)

    assert [(f["location"], f["path"], f["outcome"]) for f in result.failed] == [(BAD, FITS, "fail")]
    assert f"sha256 {found[1][:16]}" in result.failed[0]["detail"]
    check = held.checks(result.audit_id)[BAD, FITS]
    assert (check.outcome, check.size_found, check.sha256_found) == ("fail", *found)
    assert held.checks(result.audit_id)[GOOD, FITS].outcome == "pass"
    assert held.last_ok(BAD, FITS) is False


def test_what_was_not_hashed_ahead_is_read_by_the_audit(held: Held, started: list[HashAhead],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    held.set_digests(sha256=True)
    (held.obj(BAD) / FITS).unlink()  # nothing to report for it: the audit finds it missing
    ahead = start(started, held.archive.location_map()[BAD].root)  # one location's files only
    ahead.digests(finish=True)
    read = count_reads(monkeypatch)

    result = held.audit(ahead=ahead)

    assert [(f["location"], f["path"], f["outcome"]) for f in result.failed] == [(BAD, FITS, "missing")]
    good = [u for u in held.units() if u[1] == GOOD]
    assert sorted(read) == sorted([u[2] for u in good] + [FITS])  # the other location's, and the missing one


def test_rows_without_sha256_are_read_by_the_audit_for_their_sha512(held: Held, started: list[HashAhead],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    held.set_digests(sha256=False)
    ahead = start(started, *roots(held))
    ahead.digests(finish=True)
    read = count_reads(monkeypatch)

    result = held.audit(ahead=ahead)

    assert result.intact and len(read) == len(held.units()) == result.files
    assert all(c.sha512_found and c.sha256_found is None for c in held.checks(result.audit_id).values())


class Reported:
    """What a hashing process reported, given as such: its ``digests`` as ``HashAhead.digests`` returns them."""

    def __init__(self, digests: Digests) -> None:
        self._digests = digests

    def digests(self, **_how: Any) -> Digests:
        return self._digests


def test_files_still_being_hashed_are_checked_when_the_process_ends_them(held: Held) -> None:
    held.set_digests(sha256=True)
    units = {(u[1], u[2]): u for u in held.units()}

    def key(location: str, path: str) -> str:
        return f"{held.obj(location)}/{path}"

    fits_size, fits_sha = units[GOOD, FITS][3], units[GOOD, FITS][4]
    assert fits_sha is not None
    reported = Digests()
    right: Future[Found | None] = Future()
    wrong: Future[Found | None] = Future()
    unread: Future[Found | None] = Future()
    reported.pending = {key(GOOD, FITS): right, key(BAD, FITS): wrong,
                        key(BAD, "inventory.json"): unread}

    def end_them() -> None:  # as the process does, a moment after the audit asked
        right.set_result((fits_size, fits_sha))
        wrong.set_result((fits_size, "0" * 64))
        unread.set_result(None)

    timer = threading.Timer(0.3, end_them)
    timer.start()
    try:
        result = held.audit(ahead=Reported(reported))
    finally:
        timer.join()

    checks = held.checks(result.audit_id)
    assert (checks[GOOD, FITS].outcome, checks[GOOD, FITS].sha256_found) == ("pass", fits_sha)
    assert (checks[BAD, FITS].outcome, checks[BAD, FITS].sha256_found) == ("fail", "0" * 64)
    assert checks[BAD, "inventory.json"].outcome == "pass"  # read by the audit itself
    assert [(f["location"], f["path"]) for f in result.failed] == [(BAD, FITS)]
    assert len(checks) == len(units)


# -- when `oais audit` hashes ahead ------------------------------------------------------------------
@pytest.mark.parametrize(("argv", "rate", "hashed"), [
    (["--location", "replica-a"], None, ["replica-a"]),
    ([], None, ["replica-a", "replica-b"]),
    (["--all"], None, ["replica-a", "replica-b"]),
    (["--aip", "urn:uuid:0"], None, []),  # one AIP: few files
    (["--location", "replica-a"], "[audit]", []),  # a read-rate cap must hold for every read
    (["--location", "replica-a"], "replica-a", []),
    (["--location", "replica-b"], "replica-a", ["replica-b"]),  # the cap is the other location's
    (["--location", "replica-z"], None, []),  # unknown: the command reports it
])
def test_the_command_hashes_ahead_only_a_whole_uncapped_audit(tmp_path: Path, argv: list[str], rate: str | None,
                                                             hashed: list[str]) -> None:
    from oais.bootstrap import init_archive
    from oais.cli import build_parser
    from oais.cli_preservation import _hash_ahead
    from oais.config import load_settings

    settings, _ = init_archive(tmp_path / "home")
    config = settings.home / "oais.toml"
    text = config.read_text("utf-8")
    if rate == "[audit]":
        text = text.replace("max_mb_per_s = 0", "max_mb_per_s = 50")
    elif rate is not None:
        text = text.replace(f'name = "{rate}"', f'name = "{rate}"\nmax_mb_per_s = 50')
        assert "max_mb_per_s = 50" in text
    config.write_text(text, "utf-8")
    settings = load_settings(settings.home)
    args = build_parser().parse_args(["audit", *argv, "--home", str(settings.home)])

    ahead = _hash_ahead(args, settings)
    try:
        if not hashed:
            assert ahead is None
        else:
            assert ahead is not None
            assert isinstance(ahead.process.args, list)
            assert ahead.process.args[1 + len(hash_ahead.CHILD):] == [
                str(settings.location(name).path / "ocfl") for name in hashed]
    finally:
        if ahead is not None:
            ahead.close()


def test_a_process_that_does_not_report_is_ended_and_nothing_is_taken_from_it(
        tmp_path: Path, started: list[HashAhead]) -> None:
    import signal

    (tmp_path / "f").write_bytes(b"data")
    ahead = start(started, tmp_path)
    os.kill(ahead.process.pid, signal.SIGSTOP)  # as if stuck on a file system that does not answer
    began = time.monotonic()

    digests = ahead.digests(timeout=0.5)

    assert time.monotonic() - began < 10
    assert digests.done == {} and digests.pending == {}
    assert ahead.process.poll() is not None  # ended (killed while stopped)


# -- asking for more, and hashing files of any size ---------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, READ_BUFFER - 1, READ_BUFFER, READ_BUFFER + 1, hash_ahead.LARGE - 1,
                                  hash_ahead.LARGE, 4 * hash_ahead.LARGE + 4097])
def test_a_file_of_any_size_is_hashed_whole(tmp_path: Path, size: int) -> None:
    path = tmp_path / "f"
    path.write_bytes(os.urandom(size))
    assert hash_ahead._digest(str(path)) == sha256(path)


def test_what_is_not_a_regular_file_is_refused_by_name(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    for path in (tmp_path, tmp_path / "fifo", tmp_path / "absent"):
        with pytest.raises(OSError) as raised:
            hash_ahead._digest(str(path))
        assert raised.value.filename == str(path)


def test_asked_for_more_it_hashes_the_files_named_then_ends(tmp_path: Path, started: list[HashAhead]) -> None:
    walked, other = tmp_path / "walked", tmp_path / "other"
    walked.mkdir()
    other.mkdir()
    mine = [walked / f"w{i}" for i in range(30)]
    theirs = [other / f"o{i}" for i in range(5)] + [other / "big"]
    for i, p in enumerate(mine + theirs):
        p.write_bytes(os.urandom(hash_ahead.LARGE + 3 if p.name == "big" else 100 + i))
    ahead = start(started, walked)
    digests = ahead.digests(more=True)
    assert digests.more is not None

    assert set(digests.done) | set(digests.pending) <= {str(p) for p in mine}  # stopped: no more of its walk
    left = [p for p in mine if str(p) not in digests.done and str(p) not in digests.pending]
    names = [str(p) for p in theirs + left] + [str(other / "absent"), str(other / "odd\nname")]
    asked = digests.more(names)

    assert list(asked) == names
    for p in theirs + left:
        assert asked[str(p)].result(timeout=30) == sha256(p)
    assert asked[str(other / "absent")].result(timeout=30) is None  # could not read: the audit reads it
    assert asked[str(other / "odd\nname")].result(timeout=30) is None  # cannot be named: the audit reads it
    assert ahead.process.wait(timeout=30) == 0
    for path, found in digests.done.items():
        assert found == sha256(Path(path))
    for path, future in digests.pending.items():
        assert future.result(timeout=30) == sha256(Path(path))


def test_asked_after_it_ended_every_file_is_left_to_the_audit(tmp_path: Path, started: list[HashAhead]) -> None:
    (tmp_path / "f").write_bytes(b"data")
    ahead = start(started, tmp_path)
    digests = ahead.digests(more=True)
    assert digests.more is not None
    ahead.close()

    asked = digests.more([str(tmp_path / "f"), str(tmp_path / "g")])

    assert {p: f.result(timeout=0) for p, f in asked.items()} == {str(tmp_path / "f"): None,
                                                                   str(tmp_path / "g"): None}


def forget_what_was_hashed(ahead: HashAhead, monkeypatch: pytest.MonkeyPatch, *, more_from: int | None = None,
                           then: Callable[[], None] | None = None) -> list[str]:
    """Make ``ahead.digests`` forget the files already hashed, as if the process had hashed nothing
    yet (the audit then asks for them, or reads them), optionally ask for files of ``more_from``
    bytes or more, and call ``then`` just before the process is asked. Returns the paths asked for."""
    real_digests = ahead.digests
    asked: list[str] = []

    def digests(**kwargs: Any) -> Digests:
        d = real_digests(**kwargs)
        d.done.clear()
        if more_from is not None:
            d.more_from = more_from
        real_more = d.more
        assert real_more is not None

        def more(paths: Any) -> Any:
            asked.extend(paths)
            if then is not None:
                then()
            return real_more(paths)

        d.more = more
        return d

    monkeypatch.setattr(ahead, "digests", digests)
    return asked


def unit_keys(held: Held) -> set[str]:
    """The full path of every unit's file, as the process names them."""
    return {f"{held.obj(loc)}/{path}" for _id, loc, path, *_ in held.units()}


def test_a_process_that_dies_while_hashing_what_it_was_asked_leaves_it_to_the_audit(
        held: Held, started: list[HashAhead], monkeypatch: pytest.MonkeyPatch) -> None:
    """As when the process is killed (by the kernel short of memory, by an operator): the audit reads
    itself every file the process did not report, and checks each file once."""
    import signal

    held.set_digests(sha256=True)
    flip_byte(held.obj(BAD) / FITS)
    ahead = start(started, *roots(held))

    def die() -> None:
        os.kill(ahead.process.pid, signal.SIGBUS)
        ahead.process.wait(timeout=30)

    asked = forget_what_was_hashed(ahead, monkeypatch, more_from=0, then=die)  # the fixture's files are small
    read = count_reads(monkeypatch)

    result = held.audit(ahead=ahead)

    units = held.units()
    assert ahead.process.returncode == -signal.SIGBUS and asked
    keys = unit_keys(held)
    ended = [k for k, f in ahead.digests().pending.items() if k in keys and f.result(timeout=0) is not None]
    assert len(read) == len(units) - len(ended) and set(read) <= {u[2] for u in units}  # each file read once
    assert result.files == len(units) and [(f["location"], f["path"], f["outcome"]) for f in result.failed] == [
        (BAD, FITS, "fail")]
    assert len(held.checks(result.audit_id)) == len(units)


def test_the_audit_asks_the_process_for_what_it_has_not_reported(
        held: Held, started: list[HashAhead], monkeypatch: pytest.MonkeyPatch) -> None:
    held.set_digests(sha256=True)
    flip_byte(held.obj(BAD) / FITS)
    found = sha256(held.obj(BAD) / FITS)
    ahead = start(started, *roots(held))
    asked = forget_what_was_hashed(ahead, monkeypatch, more_from=0)  # the fixture's files are small
    monkeypatch.setattr(audit_module, "hash_file", _must_not_read)

    result = held.audit(ahead=ahead)

    assert set(asked) == unit_keys(held) - set(ahead.digests().pending)
    assert [(f["location"], f["path"], f["outcome"]) for f in result.failed] == [(BAD, FITS, "fail")]
    assert held.checks(result.audit_id)[BAD, FITS].sha256_found == found[1]
    assert ahead.process.wait(timeout=30) == 0


def test_small_files_are_read_by_the_audit_not_asked_for(held: Held, started: list[HashAhead],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    held.set_digests(sha256=True)
    units = held.units()
    assert all(u[3] < hash_ahead.LARGE for u in units)  # the fixture's files are small
    ahead = start(started, *roots(held))
    asked = forget_what_was_hashed(ahead, monkeypatch)
    read = count_reads(monkeypatch)

    result = held.audit(ahead=ahead)

    assert ahead.digests().more_from == hash_ahead.LARGE
    assert asked == [] and result.intact and result.files == len(units)
    keys = unit_keys(held)
    from_pending = [k for k, f in ahead.digests().pending.items() if k in keys and f.result(timeout=0) is not None]
    assert len(read) == len(units) - len(from_pending)  # every other file read by the audit itself
    assert ahead.process.wait(timeout=30) == 0  # told that nothing more was wanted
