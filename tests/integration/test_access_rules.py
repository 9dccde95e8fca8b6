"""Embargoes and restrictions: invisible in searches and not deliverable to others, open on their date
by themselves; the SQL filter (search) and the Python check (orders) agree; ``oais dataset embargo``."""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

from oais.services import access
from oais.services.holdings import NotFound
from oais.services.search import SearchCriteria, search

UNTIL = datetime(2027, 1, 1, tzinfo=timezone.utc)
BEFORE, AFTER = datetime(2026, 6, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, 0, 0, 1, tzinfo=timezone.utc)
FAR = datetime(2100, 1, 1, tzinfo=timezone.utc)


def write_eit(folder: Path, hours: range) -> None:
    folder.mkdir(parents=True)
    for h in hours:
        hdr = fits.Header()
        hdr["INSTRUME"], hdr["WAVELNTH"], hdr["DATE-OBS"] = "EIT", 195, f"2003-10-28T{h:02d}:00:00.000"
        fits.PrimaryHDU(np.zeros((8, 8), dtype=np.int16), hdr).writeto(folder / f"eit_{h:02d}.fits")


def ingest_holdings(archive: Any, tmp_path: Path, astropy_fits: list[Path]) -> dict[str, str]:
    """Dataset 'eit-new' (two AIPs, 3 + 2 files) and dataset 'hst' (one AIP, one file): AIP ids by name."""
    from oais.services.ingest import IngestRequest, ingest

    write_eit(tmp_path / "a", range(0, 3))
    write_eit(tmp_path / "b", range(3, 5))
    (tmp_path / "hst").mkdir()
    shutil.copyfile(next(p for p in astropy_fits if p.name == "test0.fits"), tmp_path / "hst" / "test0.fits")
    out = {}
    for name, dataset in (("a", "eit-new"), ("b", "eit-new"), ("hst", "hst")):
        result = ingest(IngestRequest(tmp_path / name, dataset, "SOHO/EIT team"), archive.ingest_context())
        assert result.aip_id, result.issues
        out[name] = result.aip_id
    return out


@pytest.fixture
def held(archive: Any, tmp_path: Path, astropy_fits: list[Path]) -> dict[str, str]:
    return ingest_holdings(archive, tmp_path, astropy_fits)


def seen(archive: Any, user: str | None, groups: list[str], now: datetime, **criteria: Any) -> int:
    with archive.sessions() as s:
        return search(s, SearchCriteria(**criteria), user=user, groups=groups, now=now).count


def assert_agreement(archive: Any, aips: dict[str, str]) -> None:
    """For every AIP, user, group set and time: visible in a search exactly when can_access says so."""
    users = [None, "alice", "bob"]
    group_sets: list[list[str]] = [[], ["eit-team"], ["hst"], ["other", "eit-team"]]
    with archive.sessions() as s:
        for aip_id, user, groups, now in itertools.product(aips.values(), users, group_sets, (BEFORE, AFTER, FAR)):
            found = search(s, SearchCriteria(aip=aip_id), user=user, groups=groups, now=now).count > 0
            assert found == access.can_access(s, aip_id, user, groups, now), (aip_id, user, groups, now)


def test_embargo_with_users_and_groups(archive: Any, held: dict[str, str]) -> None:
    with archive.sessions.begin() as s:
        access.set_embargo(s, "eit-new", UNTIL, users=["alice"], groups=["eit-team"], note="PI period")
    assert seen(archive, "bob", [], BEFORE) == 1  # only hst's test0.fits
    assert seen(archive, "bob", [], BEFORE, dataset="eit-new") == 0
    assert seen(archive, "bob", ["other"], BEFORE, instrument="EIT") == 0
    assert seen(archive, None, [], BEFORE, aip=held["a"]) == 0
    assert seen(archive, "alice", [], BEFORE, instrument="EIT") == 5
    assert seen(archive, "bob", ["other", "eit-team"], BEFORE, instrument="EIT") == 5
    assert seen(archive, "eit-team", [], BEFORE, instrument="EIT") == 0  # a user is not a group
    # the date passes: open to everyone, no manual step
    assert seen(archive, "bob", [], UNTIL, instrument="EIT") == 5
    assert seen(archive, None, [], AFTER) == 6
    with archive.sessions() as s:
        assert not access.can_access(s, held["a"], "bob", [], BEFORE)
        assert access.can_access(s, held["a"], "alice", [], BEFORE)
        assert access.can_access(s, held["b"], "bob", ["eit-team"], BEFORE)
        assert access.can_access(s, held["b"], "bob", [], AFTER)
        assert access.can_access(s, held["hst"], "bob", [], BEFORE)
        rules = access.list_rules(s, BEFORE)
    assert rules == [{"id": rules[0]["id"], "dataset": "eit-new", "aip_id": None, "embargo_until": "2027-01-01T00:00:00Z",
                      "users": ["alice"], "groups": ["eit-team"], "created": rules[0]["created"],
                      "note": "PI period", "in_force": True}]
    assert_agreement(archive, held)


def test_embargo_alone_hides_from_everyone_until_the_date(archive: Any, held: dict[str, str]) -> None:
    with archive.sessions.begin() as s:
        access.set_embargo(s, "eit-new", date(2027, 1, 1))  # a date: from its first instant, UTC
    for user, groups in ((None, []), ("alice", ["eit-team"])):
        assert seen(archive, user, groups, BEFORE, dataset="eit-new") == 0
        assert seen(archive, user, groups, UNTIL, dataset="eit-new") == 5
    assert_agreement(archive, held)


def test_restriction_without_date_is_for_good(archive: Any, held: dict[str, str]) -> None:
    with archive.sessions.begin() as s:
        access.set_embargo(s, "hst", None, groups=["hst"])
    for now in (BEFORE, FAR):
        assert seen(archive, "bob", [], now, dataset="hst") == 0
        assert seen(archive, "bob", ["hst"], now, dataset="hst") == 1
    with archive.sessions() as s:
        assert not access.can_access(s, held["hst"], None, [], FAR)
        assert access.list_rules(s, FAR)[0]["in_force"] is True
    assert_agreement(archive, held)


def test_aip_rule_adds_to_the_dataset_rule(archive: Any, held: dict[str, str]) -> None:
    with archive.sessions.begin() as s:
        access.set_embargo(s, "eit-new", UNTIL, users=["alice"])
        access.restrict_aip(s, held["b"], None, users=["carol"])
    assert seen(archive, "alice", [], BEFORE, dataset="eit-new") == 3  # not b: carol's only
    assert seen(archive, "carol", [], BEFORE, dataset="eit-new") == 0  # the dataset embargo holds
    assert seen(archive, "carol", [], AFTER, dataset="eit-new") == 5
    assert seen(archive, "bob", [], AFTER, dataset="eit-new") == 3
    assert_agreement(archive, held)


def test_setting_again_replaces_and_bad_rules_are_refused(archive: Any, held: dict[str, str]) -> None:
    with archive.sessions.begin() as s:
        first = access.set_embargo(s, "eit-new", UNTIL, users=["alice"])
        second = access.set_embargo(s, "eit-new", FAR, groups=[" eit-team ", "eit-team", ""])
        assert first.id == second.id
        rows = access.list_rules(s)
    assert len(rows) == 1 and rows[0]["users"] == [] and rows[0]["groups"] == ["eit-team"]
    assert rows[0]["embargo_until"] == "2100-01-01T00:00:00Z" and "in_force" not in rows[0]
    with archive.sessions() as s:
        with pytest.raises(NotFound):
            access.set_embargo(s, "no-such-dataset", UNTIL)
        with pytest.raises(ValueError):
            access.set_embargo(s, "hst", None)
        with pytest.raises(NotFound):
            access.can_access(s, "urn:uuid:00000000-0000-0000-0000-000000000000", "bob", [], BEFORE)
        with pytest.raises(ValueError):
            access.can_access(s, held["a"], "bob", [], datetime(2026, 1, 1))  # naive


@pytest.mark.postgres
def test_rules_on_postgresql(tmp_path: Path, pg_url: str, astropy_fits: list[Path],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    from oais.bootstrap import init_archive, open_archive

    monkeypatch.setenv("OAIS_CATALOG_URL", pg_url)
    archive = open_archive(init_archive(tmp_path / "archive")[0])
    try:
        aips = ingest_holdings(archive, tmp_path, astropy_fits)
        with archive.sessions.begin() as s:
            access.set_embargo(s, "eit-new", UNTIL, users=["alice"], groups=["eit-team"])
            access.set_embargo(s, "hst", None, users=["o'brien"], groups=["hst"])
        assert seen(archive, "bob", [], BEFORE) == 0
        assert seen(archive, "alice", [], BEFORE) == 5
        assert seen(archive, "bob", ["x", "eit-team"], BEFORE) == 5
        assert seen(archive, "o'brien", [], FAR) == 6
        assert seen(archive, None, ["hst"], AFTER) == 6
        assert_agreement(archive, aips)
    finally:
        archive.close()


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """``oais ARGV`` in this process, with ``oais.cli_access`` wired in if oais.cli does not yet do it."""
    from oais import cli, cli_access

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "dataset" not in sub.choices:
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument("--home", default=argparse.SUPPRESS)
        common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        cli_access.add_parsers(sub, common)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_cli_embargo_rules_and_search(archive: Any, held: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    home = str(archive.settings.home)
    monkeypatch.setenv("OAIS_USER", "bob")
    assert run_cli(["dataset", "embargo", "eit-new", "--until", "2099-01-01", "--user", "alice", "--group",
                    "eit-team", "--home", home, "--json"], monkeypatch) == 0
    rule = json.loads(capsys.readouterr().out)
    assert rule["dataset"] == "eit-new" and rule["embargo_until"] == "2099-01-01T00:00:00Z"
    assert rule["users"] == ["alice"] and rule["groups"] == ["eit-team"] and rule["in_force"] is True

    assert run_cli(["dataset", "rules", "--home", home, "--json"], monkeypatch) == 0
    assert [r["dataset"] for r in json.loads(capsys.readouterr().out)] == ["eit-new"]
    assert run_cli(["dataset", "rules", "--home", home], monkeypatch) == 0
    assert "dataset eit-new: embargo until 2099-01-01T00:00:00Z (in force); allowed: alice, @eit-team" in \
        capsys.readouterr().out

    def count(*extra: str) -> int:
        assert run_cli(["search", "--home", home, "--json", "--instrument", "EIT", *extra], monkeypatch) == 0
        return int(json.loads(capsys.readouterr().out)["count"])

    assert count() == 0  # bob, from $OAIS_USER
    assert count("--user", "alice") == 5
    assert count("--group", "eit-team") == 5
    monkeypatch.setenv("OAIS_USER", "alice")
    assert count() == 5

    assert run_cli(["dataset", "embargo", "eit-new", "--until", "next year", "--home", home], monkeypatch) == 2
    assert "--until" in capsys.readouterr().err
    assert run_cli(["dataset", "embargo", "eit-new", "--home", home], monkeypatch) == 2
    assert "--until" in capsys.readouterr().err
    assert run_cli(["dataset", "embargo", "nope", "--until", "2030-01-01", "--home", home], monkeypatch) == 1
    assert "nope" in capsys.readouterr().err
