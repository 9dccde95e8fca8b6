"""The scan of a folder checks each entry's name given its folder (``child_member_path``, the last
component of ``_Names.add``, the name's own warnings) instead of re-checking its whole path. Both
must give the same errors, warnings and staged files as the whole-path checks, on folders full of
hostile and unusual names: here the scan runs twice, once as shipped and once with every shortcut
turned off, and the results are compared."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path
from typing import Any

import pytest

import sip.receive_folder as rf
from sip import receive_common
from sip.receive_common import DeliveryRefused, Limits

NFC = unicodedata.normalize("NFC", "café")
NFD = unicodedata.normalize("NFD", "café")

# Names given as bytes where they are not valid UTF-8. Folders end with "/".
HOSTILE = [
    "ok/a.txt", "ok/sub/deeper/b.txt",
    "A/one.txt", "a/ONE.txt", "a/two.txt", "a/sub/three.txt",  # folders that collide by case, with files
    "B", "b/inside.txt",  # a file and a folder that collide
    f"{NFC}/x.txt", f"{NFD}/y.txt",  # folders that collide after normalisation
    f"n/{NFC}.txt", f"n/{NFD}.txt",  # files that do
    "C:evil/x.txt", "C:top.txt", "d/C:fine.txt",  # a drive letter counts at the top only
    "back\\slash.txt", "dir\\x/y.txt",
    "__MACOSX/._a.txt", "__MACOSX/deep/f.txt", "keep/__MACOSX/g.txt", "keep/.DS_Store", "keep/._b",
    "keep/._", "._top", "Thumbs.db/inner.txt",
    "-dash.txt", "trail./x.txt", " lead/y.txt", "q/what?.txt", "q/tab\there.txt", "ctl\x01/z.txt",
    "x" * 253 + ".d/f.txt", "long/" + "z" * 253 + "é",  # 255 bytes: the longest name the disk takes
    "deep/" + "/".join(["p" * 40] * 24) + "/f.txt",  # within 1,024 bytes...
    "deeper/" + "/".join(["p" * 40] * 26) + "/f.txt",  # ...and over
    "empty/",
]


def _make(root: Path, names: list[str | bytes]) -> None:
    for i, name in enumerate(names):
        raw = name if isinstance(name, bytes) else name.encode("utf-8")
        path = os.path.join(os.fsencode(root), raw)
        if raw.endswith(b"/"):
            os.makedirs(path, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"%d\n" % i)


def _scan(source: Path, dest: Path, limits: Limits) -> tuple[Any, ...]:
    dest.mkdir()
    try:
        warnings, digests = rf._copy_tree(source, dest, limits, None, "the folder")
    except DeliveryRefused as exc:
        return ("refused", exc.issues)
    return ("staged", warnings, sorted((p.relative_to(dest).as_posix(), d) for p, d in digests.items()))


def _both(tmp_path: Path, names: list[str | bytes], monkeypatch: pytest.MonkeyPatch,
          limits: Limits = Limits()) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    source = tmp_path / "delivery"
    source.mkdir()
    _make(source, names)
    fast = _scan(source, tmp_path / "fast", limits)
    add = receive_common._Names.add
    with monkeypatch.context() as m:  # every entry checked by its whole path, as before
        m.setattr(rf, "child_member_path", lambda *args: None)
        m.setattr(rf, "part_reason", lambda name: "every name checked in full")
        m.setattr(receive_common._Names, "add",
                  lambda self, rel, is_dir, parents_known=False: add(self, rel, is_dir))
        slow = _scan(source, tmp_path / "slow", limits)
    return fast, slow


def test_hostile_names_give_the_same_errors_by_either_check(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    names: list[str | bytes] = [*HOSTILE, b"bad\xffname/f.txt", b"ok/bad\xfe.txt"]
    fast, slow = _both(tmp_path, names, monkeypatch)
    assert fast[0] == "refused"
    assert fast == slow
    codes = {i.code.value for i in fast[1]}
    assert {"SIP-E004", "SIP-E009"} <= codes, codes


def test_warnings_and_staged_files_are_the_same_by_either_check(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    names: list[str | bytes] = [
        "ok/a.txt", "ok/sub/deeper/b.txt", "d/C:fine.txt", "__MACOSX/._a.txt", "__MACOSX/deep/f.txt",
        "keep/__MACOSX/g.txt", "keep/.DS_Store", "keep/._b", "keep/._", "._top", "Thumbs.db/inner.txt",
        "-dash.txt", "trail./x.txt", " lead/y.txt", "q/what?.txt", "q/tab\there.txt", "ctl\x01/z.txt",
        "-dir/-sub/f.txt", "ok2/x./y", f"n/{NFC}.txt", "empty/",
    ]
    fast, slow = _both(tmp_path, names, monkeypatch)
    assert fast[0] == "staged"
    assert fast == slow
    assert {i.code.value for i in fast[1]} == {"SIP-W001", "SIP-W002"}
    warned = {i.path for i in fast[1]}
    assert {"__MACOSX/deep/f.txt", "keep/__MACOSX/g.txt", "q/tab\\x09here.txt", "-dir/-sub/f.txt"} <= warned
    assert "ok/a.txt" not in warned


@pytest.mark.parametrize("max_path_bytes", [12, 13, 14, 20, 21])
def test_path_limits_are_the_same_by_either_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  max_path_bytes: int) -> None:
    names: list[str | bytes] = ["abc/defg/hi.txt", "abc/é/x.txt", "top.txt", "abcdefghijk", "abc/xyz/",
                                "abc/ééé/a", "abc/éééé/a", "abcdefgh/x"]  # names of 6, 8 and 8 bytes
    fast, slow = _both(tmp_path, names, monkeypatch,
                       Limits(max_path_bytes=max_path_bytes, max_name_bytes=7))
    assert fast == slow
