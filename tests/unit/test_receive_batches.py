"""A folder's files are staged in batches of one folder each: every file once, in scan order, never
two folders in a batch, and within the caps (a large file alone). Then a real folder of many small
files in many folders, staged, comes out whole and with the right digests."""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path, PurePosixPath

from oais.formats.digest import digest_file
from sip.receive import stage_delivery
from sip.receive_folder import BATCH_BYTES, BATCH_FILES, _batches, _Planned


def _planned(rel: str, size: int) -> _Planned:
    st = os.stat_result((stat.S_IFREG | 0o644, 1, 1, 1, 0, 0, size, 0, 0, 0))
    return PurePosixPath(rel), f"/src/{rel}", st


def test_batches_keep_the_scan_order_and_one_folder_each() -> None:
    plan = ([_planned(f"a/f{i:03d}", 10) for i in range(BATCH_FILES + 5)]  # one folder over the count cap
            + [_planned("a/b/one", 10)]  # a folder of one file
            + [_planned(f"c/big{i}", BATCH_BYTES + 1) for i in range(3)]  # large files: one per batch
            + [_planned(f"c/s{i}", BATCH_BYTES // 4) for i in range(6)]  # bytes cap: four per batch at most
            + [_planned("top", 0)])  # a file at the top
    batches = list(_batches(plan))
    assert [item for batch in batches for item in batch] == plan
    for batch in batches:
        assert len({rel.parent for rel, _p, _st in batch}) == 1, batch
        assert len(batch) <= BATCH_FILES
        assert len(batch) == 1 or sum(st.st_size for _r, _p, st in batch) <= BATCH_BYTES
    sizes = [len(b) for b in batches]
    assert sizes == [BATCH_FILES, 5, 1, 1, 1, 1, 4, 2, 1], sizes


def test_no_file_gives_no_batch() -> None:
    assert list(_batches([])) == []


def test_a_folder_of_many_folders_is_staged_whole(tmp_path: Path) -> None:
    source = tmp_path / "delivery"
    rng = random.Random(11)
    expected: dict[str, bytes] = {}
    for i in range(700):  # 7 folders of 100 files, in 2 levels, as a delivery of many small files
        rel = f"d{i // 300}/s{(i // 100) % 3}/f{i:04d}.bin"
        data = rng.randbytes(rng.randint(0, 9000))
        path = source / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expected[rel] = data
    staged = stage_delivery(source, tmp_path / "staged")
    files = [p for p in staged.root.rglob("*") if p.is_file()]
    assert {p.relative_to(staged.root).as_posix(): p.read_bytes() for p in files} == expected
    assert set(staged.digests) == set(files)
    for path in files:
        assert staged.digests[path] == digest_file(path), path
