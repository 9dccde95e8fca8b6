"""``indented_json`` writes the very text of ``json.dumps`` with a 2-space indent (the ``--json``
output of every command and, with sorted keys, the OCFL inventories through ``canonical_json``), or
leaves it to ``json.dumps``."""

from __future__ import annotations

import enum
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from aip.ocfl import canonical_json
from oais.domain.jsontext import indented_json


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def deep(levels: int) -> list[Any]:
    top: list[Any] = []
    current = top
    for _ in range(levels):
        current.append([])
        current = current[0]
    return top


VALUES = [
    {}, [], (), "", None, True, False, 0, -7, 10**40, 1.5, -0.0, 1e300, 1 / 3, 0.1234567, 5e-324,
    float("nan"), float("inf"), {"x": [float("nan"), 1], "y": {"z": 2}},
    {"z": 1, "a": [1, True, None, "é\u2028\"\\/\x00\x1f"], "m": {"z": [], "y": {}, "x": ("t",)}},
    {"issues": [{"code": "FMT-W001", "path": f"d/{i}.bin", "severity": "warning"} for i in range(50)]},
    {"colour": Colour.RED, "level": Level.HIGH, "ratio": 0.1},
    {1: "int key", 2: "x"}, {"a": {2.5: 1, 3: 2}, "b": {True: 1, None: 0}},
    deep(64), deep(65), deep(300),
]


@pytest.mark.parametrize("sort_keys", [False, True])
@pytest.mark.parametrize("value", VALUES)
def test_the_text_is_that_of_json_dumps(value: Any, sort_keys: bool) -> None:
    try:
        expected = json.dumps(value, sort_keys=sort_keys, indent=2, ensure_ascii=False, separators=(",", ": "))
    except TypeError as exc:  # keys json.dumps cannot sort: the same error
        with pytest.raises(TypeError, match=str(exc)):
            indented_json(value, sort_keys=sort_keys)
        return
    assert indented_json(value, sort_keys=sort_keys) == expected


@pytest.mark.parametrize("value", [
    {"at": datetime(2026, 11, 29, 9, 30, tzinfo=timezone.utc), "path": Path("/a/b"), "n": [Path("x"), 2]},
    [ValueError("bad")], {"set": {1}},
])
def test_default_applies_as_in_json_dumps(value: Any) -> None:
    expected = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    assert indented_json(value, default=str) == expected


def test_default_is_called_for_what_json_cannot_write() -> None:
    def describe(o: Any) -> Any:
        return {"type": type(o).__name__, "parts": list(o.parts)} if isinstance(o, Path) else str(o)

    value = {"files": [Path("a/b"), Path("c")], "at": datetime(2026, 11, 29, tzinfo=timezone.utc)}
    assert indented_json(value, default=describe) == json.dumps(value, indent=2, ensure_ascii=False,
                                                                default=describe)
    assert '"type": "PosixPath"' in indented_json(value, default=describe)


def test_errors_are_those_of_json_dumps() -> None:
    circular: list[Any] = []
    circular.append(circular)
    with pytest.raises(ValueError, match="Circular reference"):
        indented_json(circular)
    with pytest.raises(TypeError):
        indented_json({"a": 1, 1: "b"}, sort_keys=True)  # keys json.dumps cannot sort
    with pytest.raises(TypeError, match="not JSON serializable"):
        indented_json({"a": object()})
    with pytest.raises(ValueError, match="Circular reference"):
        indented_json({"a": [circular]}, default=str)


@pytest.mark.parametrize("value", [
    {"manifest": {"ab": ["v1/content/a b.txt"], "aa": ["v1/content/x", "v1/content/y"]}, "head": "v1"},
    {"b": [1, True, None, "é\u2028\"\\/\x00\x1f"], "a": {"z": [], "y": {}, "x": ("t",)}}, deep(65), {},
])
def test_canonical_json_is_the_sorted_text_of_json_dumps_with_a_newline(value: Any) -> None:
    expected = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, separators=(",", ": "))
    assert canonical_json(value) == (expected + "\n").encode("utf-8")
    with pytest.raises(TypeError):
        canonical_json({"a": 1, 1: "b"})  # keys json.dumps cannot sort
