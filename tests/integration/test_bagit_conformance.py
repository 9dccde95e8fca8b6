"""The Library of Congress BagIt conformance suite (60 bags, v0.93 to v1.0) against sip.bagit_check.

valid -> no error; warning -> no error and at least one warning; invalid and linux-only -> at least one
error; windows-only -> skipped (the suite's own harness skips them on other systems). The bags are
never modified.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oais.domain.issues import Severity
from sip.bagit_check import validate_bag

SUITE = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "bagit-conformance-suite"
REPO = Path(__file__).resolve().parents[2]
WINDOWS_ONLY = "windows-only bag: applies on Windows only (the suite's own harness skips it)"


def _suite() -> Path:
    if not (SUITE / "index.tsv").is_file():
        reason = f"BagIt conformance suite not found at {SUITE}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"required under CI=true: {reason}")
        pytest.skip(reason)
    return SUITE


def _cases() -> list[tuple[str, str]]:
    """(category, path) per row of index.tsv; one placeholder case when the suite is absent."""
    index = SUITE / "index.tsv"
    if not index.is_file():
        return [("absent", "absent")]
    rows = [line.split("\t") for line in index.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    return [(row[1], row[3]) for row in rows]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Names, sizes and mtimes of everything under ``root`` (lstat: links are not followed)."""
    out: dict[str, tuple[int, int]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            st = os.lstat(os.path.join(folder, name))
            out[os.path.relpath(os.path.join(folder, name), root)] = (st.st_size, st.st_mtime_ns)
    st = os.lstat(root)
    out["."] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.mark.parametrize("category, path", _cases(), ids=[p for _, p in _cases()])
def test_conformance_bag(category: str, path: str) -> None:
    suite = _suite()
    if category == "windows-only":
        pytest.skip(WINDOWS_ONLY)
    bag = suite / path
    before = _snapshot(bag)
    report = validate_bag(bag)
    errors = [i for i in report.issues if i.severity is Severity.ERROR]
    warnings = [i for i in report.issues if i.severity is Severity.WARNING]
    assert all(i.path or i.code == "SIP-E026" for i in report.issues), report.issues
    if category == "valid":
        assert not errors, errors
    elif category == "warning":
        assert not errors, errors
        assert warnings, "a warning bag must give at least one warning"
    elif category in ("invalid", "linux-only"):
        assert errors, f"{path} must be refused; issues: {report.issues}"
    else:
        pytest.fail(f"unknown category {category!r} in index.tsv")
    assert report.valid is (not errors)
    assert _snapshot(bag) == before, "the bag was modified"


def test_oais_validate_over_the_suite() -> None:
    """``oais validate <bag> --json``: exit 0 for valid and warning bags, 1 for invalid ones."""
    suite = _suite()
    failures: list[str] = []
    for category, path in _cases():
        if category == "windows-only":
            continue
        proc = subprocess.run([sys.executable, "-m", "oais.cli", "validate", str(suite / path), "--json"],
                              capture_output=True, text=True, cwd=REPO, timeout=120)
        expected = 0 if category in ("valid", "warning") else 1
        try:
            issues = json.loads(proc.stdout)["issues"]
        except (ValueError, KeyError, TypeError) as exc:
            failures.append(f"{path}: exit {proc.returncode}, no JSON 'issues' list ({exc}): "
                            f"{proc.stdout[:200]!r} {proc.stderr.strip()[-300:]}")
            continue
        if proc.returncode != expected:
            errors = [(i.get("code"), i.get("path"), str(i.get("message"))[:100]) for i in issues
                      if i.get("severity") == "error"]
            failures.append(f"{path}: exit {proc.returncode}, expected {expected}; errors: {errors}")
            continue
        if not all({"code", "severity", "message", "path"} <= set(i) for i in issues):
            failures.append(f"{path}: an issue lacks code/severity/message/path: {issues}")
        if category == "warning" and not any(i["severity"] == "warning" for i in issues):
            failures.append(f"{path}: a warning bag listed no warning: {issues}")
    assert not failures, "\n".join(failures)
