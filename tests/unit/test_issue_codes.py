"""Every issue code is stable, documented, and has a test (or hostile-input fixture) named after it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from oais.domain.issues import REFERENCES, IssueCode, Severity, severity_of

TESTS = Path(__file__).resolve().parents[1]


def _names() -> set[str]:
    """Test function names and string keys of fixture registries in the test suite."""
    names: set[str] = set()
    for path in TESTS.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.add(node.name)
            elif isinstance(node, ast.Dict):
                names.update(k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "param":
                for kw in node.keywords:
                    if kw.arg == "id" and isinstance(kw.value, ast.Constant):
                        names.add(str(kw.value.value))
    return names


def test_codes_are_unique_well_formed_and_referenced() -> None:
    values = [c.value for c in IssueCode]
    assert len(values) == len(set(values))
    for code in IssueCode:
        assert re.fullmatch(r"[A-Z]{3,4}-[EWI]\d{3}", code.value), code
        assert REFERENCES.get(code), f"{code} has no reference to a rule or standard"
        assert severity_of(code) in Severity


def test_every_code_has_a_test_named_after_it() -> None:
    names = _names()
    missing = [c.value for c in IssueCode
               if not any(c.value in n or c.value.replace("-", "_") in n for n in names)]
    assert missing == [], f"codes without a test or fixture named after them: {missing}"


def test_docs_list_every_code() -> None:
    text = (TESTS.parent / "docs" / "intake.md").read_text(encoding="utf-8")
    assert [c.value for c in IssueCode if f"`{c.value}`" not in text] == []


def test_an_issue_as_a_dict_has_every_field_as_plain_values_in_order() -> None:
    import dataclasses
    import json

    from oais.domain.issues import IssueCode, Severity, issue

    found = issue(IssueCode.FORMAT_UNIDENTIFIED, "format not identified by fido", "data/x.bin")
    as_dict = found.to_dict()
    assert list(as_dict) == ["code", "severity", "message", "path", "reference"]
    assert as_dict == {**{f.name: getattr(found, f.name) for f in dataclasses.fields(found)},
                       "code": "FMT-W001", "severity": "warning", "reference": found.reference}
    assert found.severity is Severity.WARNING and as_dict["reference"]
    assert json.loads(json.dumps(as_dict)) == as_dict  # plain strings: no enum left
    assert type(as_dict["code"]) is str and type(as_dict["severity"]) is str
