"""A folder of many small files is staged by worker processes (``sip.stage_workers``): the staged tree,
its digests, modes and times, and the issues come out exactly as from the staging threads; a file
changed after the scan is reported at its place in scan order; the byte limit holds across the
workers; a failing worker is an internal error naming it, never a silent gap."""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import pytest

import sip.stage_workers as sw
from oais.domain.issues import Issue
from oais.formats.digest import digest_file
from sip.receive import stage_delivery
from sip.receive_common import DeliveryRefused, Limits, _Budget
from sip.receive_folder import _batches, _Planned


def _delivery(root: Path, count: int, seed: int = 5) -> dict[str, bytes]:
    rng = random.Random(seed)
    files: dict[str, bytes] = {}
    for i in range(count):
        rel = f"d{i // 150}/s{(i // 50) % 3}/f {i:04d} é.bin"  # spaces and non-ASCII names travel too
        data = rng.randbytes(rng.randint(0, 6000))
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, ns=(1_600_000_000_000_000_000 + i, 1_500_000_000_123_456_789 + i))
        if i % 7 == 0:
            path.chmod(0o600)
        files[rel] = data
    return files


def _tree(staged_root: Path) -> dict[str, tuple[bytes, int, int]]:
    out = {}
    for path in staged_root.rglob("*"):
        if path.is_file():
            st = path.stat()
            out[path.relative_to(staged_root).as_posix()] = (path.read_bytes(), st.st_mode, st.st_mtime_ns)
    return out


def test_the_rule_takes_many_small_files_only() -> None:
    assert sw.use_processes(sw.PROCESS_MIN_FILES, sw.PROCESS_MIN_FILES * 1000)
    assert not sw.use_processes(sw.PROCESS_MIN_FILES - 1, 0)
    assert not sw.use_processes(sw.PROCESS_MIN_FILES, sw.PROCESS_MIN_FILES * sw.PROCESS_MAX_MEAN + 1)


def test_workers_stage_exactly_what_the_threads_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "delivery"
    expected = _delivery(source, 600)
    (source / "Thumbs.db").write_bytes(b"junk")  # a name warning, reported the same way
    calls = []
    real = sw.copy_in_processes

    def spy(dest: Path, batches: Sequence[Sequence[_Planned]], budget: _Budget, declared: int) -> list[Issue]:
        calls.append(len(batches))
        return real(dest, batches, budget, declared)

    monkeypatch.setattr("sip.receive_folder.copy_in_processes", spy)
    by_workers = stage_delivery(source, tmp_path / "workers")
    assert len(calls) == 1 and calls[0] > sw.PROCESSES  # 601 files: the workers took them, in many batches
    monkeypatch.setattr(sw, "PROCESS_MIN_FILES", 10**9)
    by_threads = stage_delivery(source, tmp_path / "threads")
    assert len(calls) == 1

    tree = _tree(by_workers.root)
    assert tree == _tree(by_threads.root)
    assert {rel: data for rel, (data, _m, _t) in tree.items() if rel != "Thumbs.db"} == expected
    assert tree["d0/s0/f 0000 é.bin"][1] & 0o777 == 0o600 and tree["d0/s0/f 0001 é.bin"][1] & 0o777 == 0o644
    assert tree["d0/s0/f 0003 é.bin"][2] == 1_500_000_000_123_456_792
    assert by_workers.issues == by_threads.issues and by_workers.issues
    relative = {p.relative_to(by_workers.root): fx for p, fx in by_workers.digests.items()}
    assert relative == {p.relative_to(by_threads.root): fx for p, fx in by_threads.digests.items()}
    for path, fx in by_workers.digests.items():
        assert fx == digest_file(path), path
    assert {p.relative_to(source).as_posix(): p.read_bytes() for p in source.rglob("*") if p.is_file()
            and p.name != "Thumbs.db"} == expected  # the source is untouched


def _plan(source: Path) -> list[tuple[PurePosixPath, str, os.stat_result]]:
    return [(PurePosixPath(p.relative_to(source).as_posix()), str(p), os.lstat(p))
            for p in sorted(source.rglob("*")) if p.is_file()]


def _made_folders(dest: Path, plan: list[tuple[PurePosixPath, str, os.stat_result]]) -> None:
    for rel, _path, _st in plan:
        (dest / rel.parent.as_posix()).mkdir(parents=True, exist_ok=True)


def test_files_changed_after_the_scan_are_reported_in_scan_order(tmp_path: Path) -> None:
    source = tmp_path / "delivery"
    _delivery(source, 400)
    plan = _plan(source)
    batches = list(_batches(plan))
    assert len(batches) >= 6
    changed = [batches[0][3], batches[5][0], batches[1][7]]  # replaced by other files after the scan
    for _rel, path, _st in changed:
        os.replace(_replacement(Path(path)), path)
    dest = tmp_path / "staged"
    _made_folders(dest, plan)
    budget = _Budget(1 << 40, "max_bytes", "delivery")
    issues = sw.copy_in_processes(dest, batches, budget, sum(st.st_size for _r, _p, st in plan))
    order = [changed[0], changed[2], changed[1]]  # batch 0, then batch 1, then batch 5
    assert [(str(i.code), i.path) for i in issues] == [("SIP-E008", rel.as_posix()) for rel, _p, _s in order]
    assert all("changed while being received" in i.message for i in issues)
    staged = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert staged == {rel.as_posix() for rel, _p, _s in plan} - {rel.as_posix() for rel, _p, _s in changed}
    assert set(budget.digests) == {dest / name for name in staged}
    assert budget.bytes == sum((dest / name).stat().st_size for name in staged)


def _replacement(path: Path) -> Path:
    other = path.with_name(path.name + ".new")
    other.write_bytes(path.read_bytes())  # same bytes, another inode
    return other


def test_the_byte_limit_holds_across_the_workers(tmp_path: Path) -> None:
    source = tmp_path / "delivery"
    _delivery(source, 300)
    plan = _plan(source)
    declared = sum(st.st_size for _r, _p, st in plan)
    grown = Path(plan[250][1])
    with open(grown, "ab") as f:  # grows after the scan by more than the room left under the limit
        f.write(b"\x01" * 5000)
    dest = tmp_path / "staged"
    _made_folders(dest, plan)
    limit = declared + 4000  # the room left: 4,000 bytes, 2,000 per worker
    with pytest.raises(DeliveryRefused) as exc:
        sw.copy_in_processes(dest, list(_batches(plan)), _Budget(limit, "max_bytes=X", "delivery"), declared)
    [refusal] = exc.value.issues
    assert str(refusal.code) == "SIP-E006" and refusal.path == "delivery"
    assert refusal.message == f"expands to more than {limit} bytes (limit: {limit} bytes, max_bytes=X)"
    for path in dest.rglob("*"):  # whatever was staged is whole: no partial file
        if path.is_file():
            assert path.read_bytes() == (source / path.relative_to(dest)).read_bytes(), path
    assert not (dest / plan[250][0].as_posix()).exists()


def test_growth_within_the_room_left_is_staged(tmp_path: Path) -> None:
    source = tmp_path / "delivery"
    _delivery(source, 100)
    plan = _plan(source)
    declared = sum(st.st_size for _r, _p, st in plan)
    with open(plan[40][1], "ab") as f:
        f.write(b"\x02" * 1000)
    dest = tmp_path / "staged"
    _made_folders(dest, plan)
    budget = _Budget(declared + 4000, "max_bytes", "delivery")
    assert sw.copy_in_processes(dest, list(_batches(plan)), budget, declared) == []
    assert budget.bytes == declared + 1000
    assert (dest / plan[40][0].as_posix()).read_bytes() == Path(plan[40][1]).read_bytes()


def test_a_failing_worker_is_an_internal_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "delivery"
    _delivery(source, 50)
    plan = _plan(source)
    dest = tmp_path / "staged"
    _made_folders(dest, plan)
    monkeypatch.setattr(sw, "worker_command", lambda *_a: [
        sys.executable, "-c", "import sys; sys.stdin.readline(); sys.stderr.write('disk on fire'); sys.exit(3)"])
    with pytest.raises(RuntimeError, match="a staging process exited with status 3: disk on fire"):
        sw.copy_in_processes(dest, list(_batches(plan)), _Budget(1 << 40, "max_bytes", "delivery"), 0)


def test_a_worker_that_answers_too_little_is_an_internal_error(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "delivery"
    _delivery(source, 50)
    plan = _plan(source)
    dest = tmp_path / "staged"
    _made_folders(dest, plan)
    monkeypatch.setattr(sw, "worker_command", lambda *_a: [sys.executable, "-c", "import sys; sys.stdin.read()"])
    with pytest.raises(RuntimeError, match=r"answered 0 batches of \d+"):
        sw.copy_in_processes(dest, list(_batches(plan)), _Budget(1 << 40, "max_bytes", "delivery"), 0)


def test_a_refused_folder_over_the_limit_through_stage_delivery(tmp_path: Path) -> None:
    source = tmp_path / "delivery"
    _delivery(source, sw.PROCESS_MIN_FILES)
    declared = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    with pytest.raises(DeliveryRefused) as exc:  # refused by the scan, before any worker starts
        stage_delivery(source, tmp_path / "staged", Limits(max_bytes=declared - 1))
    assert [str(i.code) for i in exc.value.issues] == ["SIP-E006"]


def test_no_worker_to_be_had_leaves_the_staging_to_the_threads(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "delivery"
    expected = _delivery(source, sw.PROCESS_MIN_FILES)
    monkeypatch.setattr(sw, "worker_command", lambda *_a: [str(tmp_path / "no-such-python")])
    plan = _plan(source)
    with pytest.raises(sw.WorkersUnavailable):
        sw.copy_in_processes(tmp_path / "unused", list(_batches(plan)), _Budget(1 << 40, "m", "d"), 0)
    assert not (tmp_path / "unused").exists()
    staged = stage_delivery(source, tmp_path / "staged")  # the same delivery, staged by the threads
    assert {rel: data for rel, (data, _m, _t) in _tree(staged.root).items()} == expected
    for path, fx in staged.digests.items():
        assert fx == digest_file(path), path
