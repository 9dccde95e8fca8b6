"""Search over real ingested holdings: HST files from astropy's package data and a day of SOHO/EIT-like
files written here (one per hour on 2003-10-28), on SQLite and on PostgreSQL, and ``oais search``."""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

from oais.services.search import SearchCriteria, SearchResult, search
from tests.conftest import ASTROPY_FITS

DAY = datetime(2003, 10, 28, tzinfo=timezone.utc)
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
TEST0, ACS, STIS = "test0.fits", "j94f05bgq_flt.fits", "o4sp040b0_raw.fits"
EIT = [f"eit_{h:02d}.fits" for h in range(24)]
E195 = [n for h, n in enumerate(EIT) if h % 2 == 0]  # even hours at 195 A, odd hours at 171 A
E171 = [n for h, n in enumerate(EIT) if h % 2 == 1]


def at(hour: int, minute: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute)


def write_eit_day(folder: Path, hours: range) -> None:
    """EIT-like level-0 images: DATE-OBS on the hour; DATE-END 30 min later except every third hour."""
    folder.mkdir(parents=True)
    for h in hours:
        hdr = fits.Header()
        hdr["TELESCOP"], hdr["INSTRUME"], hdr["DETECTOR"] = "SOHO", "EIT", "EIT"
        hdr["WAVELNTH"], hdr["WAVEUNIT"] = (195 if h % 2 == 0 else 171), "Angstrom"
        hdr["OBJECT"], hdr["FILTER"], hdr["EXPTIME"] = "full FOV", "Al +1", 12.6
        hdr["DATE-OBS"] = at(h).strftime("%Y-%m-%dT%H:%M:%S.000")
        if h % 3:
            hdr["DATE-END"] = at(h, 30).strftime("%Y-%m-%dT%H:%M:%S.000")
        data = np.full((8 + h, 8), h, dtype=np.int16)  # sizes differ a little
        fits.PrimaryHDU(data, hdr).writeto(folder / f"eit_{h:02d}.fits")


def astropy_file(name: str) -> Path:
    import astropy

    return next(Path(astropy.__file__).parent / rel for rel in ASTROPY_FITS if rel.endswith(name))


def build_holdings(archive: Any, root: Path) -> dict[str, int]:
    """Four AIPs in three datasets; returns the size of every original file by name."""
    from oais.services.ingest import IngestRequest, ingest

    (root / "imaging").mkdir(parents=True)
    (root / "spectra").mkdir()
    for name in (TEST0, ACS):
        shutil.copyfile(astropy_file(name), root / "imaging" / name)
    shutil.copyfile(astropy_file(STIS), root / "spectra" / STIS)
    (root / "spectra" / "README.txt").write_text("STIS raw frame.\n", encoding="utf-8")
    write_eit_day(root / "eit195", range(0, 24, 2))
    write_eit_day(root / "eit171", range(1, 24, 2))
    for folder, dataset, producer in (("imaging", "hst-imaging", "STScI"), ("spectra", "hst-spectra", "STIS team"),
                                      ("eit195", "soho-eit", "SOHO/EIT team"), ("eit171", "soho-eit", None)):
        result = ingest(IngestRequest(root / folder, dataset, producer), archive.ingest_context())
        assert result.aip_id, result.issues
    return {p.name: p.stat().st_size for p in root.rglob("*") if p.is_file()}


def names(result: SearchResult) -> list[str]:
    return [f["path"].rsplit("/", 1)[-1] for f in result.files]


# criteria -> expected file names (as a set; order is checked separately)
CASES: dict[str, tuple[SearchCriteria, set[str]]] = {
    "everything": (SearchCriteria(), {TEST0, ACS, STIS, "README.txt", *EIT}),
    "dataset": (SearchCriteria(dataset="hst-imaging"), {TEST0, ACS}),
    "dataset unknown": (SearchCriteria(dataset="no-such"), set()),
    "producer": (SearchCriteria(producer="STIS team"), {STIS, "README.txt"}),
    "producer of the dataset": (SearchCriteria(producer="SOHO/EIT team"), set(EIT)),
    "instrument WFPC2": (SearchCriteria(instrument="WFPC2"), {TEST0}),
    "instrument ACS": (SearchCriteria(instrument="ACS"), {ACS}),
    "instrument STIS": (SearchCriteria(instrument="STIS"), {STIS}),
    "instrument EIT": (SearchCriteria(instrument="EIT"), set(EIT)),
    "instrument, exact case": (SearchCriteria(instrument="eit"), set()),
    "detector": (SearchCriteria(detector="WFC"), {ACS}),
    "detector as number": (SearchCriteria(detector="1"), {TEST0}),
    "wavelength 195": (SearchCriteria(wavelength=195.0), set(E195)),
    "wavelength text": (SearchCriteria(wavelength="171"), set(E171)),
    "wavelength range": (SearchCriteria(wavelength=(170.0, 200.0)), set(EIT)),
    "wavelength range text": (SearchCriteria(wavelength="190-200"), set(E195)),
    "wavelength none": (SearchCriteria(wavelength=304.0), set()),
    "format FITS": (SearchCriteria(format="x-fmt/383"), {TEST0, ACS, STIS, *EIT}),
    "format, other": (SearchCriteria(dataset="hst-spectra", format="x-fmt/111"), {"README.txt"}),
    "every role": (SearchCriteria(dataset="hst-imaging", role=None), {TEST0, ACS, "METS.xml", "premis.xml",
                                                                       "fits-headers.json"}),
    # time overlap: [obs_start, obs_end or obs_start] against [start, end], bounds included
    "inside one interval": (SearchCriteria(start=at(5, 10), end=at(5, 20)), {EIT[5]}),
    "instant and interval": (SearchCriteria(start=at(5, 45), end=at(7, 15)), {EIT[6], EIT[7]}),
    "end bound": (SearchCriteria(start=at(7, 30), end=at(7, 30)), {EIT[7]}),
    "instant bound": (SearchCriteria(start=at(9), end=at(9)), {EIT[9]}),
    "gap": (SearchCriteria(start=at(10, 31), end=at(10, 59)), set()),
    "start only": (SearchCriteria(start=at(22, 10)), {EIT[22], EIT[23], ACS}),
    "end only": (SearchCriteria(end=at(0, 59), instrument="EIT"), {EIT[0]}),
    "end only, other missions": (SearchCriteria(end=datetime(2003, 1, 1, tzinfo=timezone.utc)), {STIS}),
    "a date-only DATE-OBS": (SearchCriteria(start=datetime(2005, 3, 7, tzinfo=timezone.utc)), {ACS}),
    "whole day at 195": (SearchCriteria(start=DAY, end=at(24) - timedelta(microseconds=1), wavelength=195),
                         set(E195)),
    "offset time": (SearchCriteria(start=datetime.fromisoformat("2003-10-28T03:15:00+01:00"),
                                   end=datetime.fromisoformat("2003-10-28T03:15:00+01:00")), {EIT[2]}),
    # keywords: typed columns
    "INSTRUME": (SearchCriteria(keywords=[("INSTRUME", "STIS")]), {STIS}),
    "DETECTOR+TELESCOP": (SearchCriteria(keywords=[("DETECTOR", "CCD"), ("TELESCOP", "HST")]), {STIS}),
    "EXPTIME": (SearchCriteria(keywords=[("EXPTIME", "30")]), {STIS}),
    "WAVELNTH": (SearchCriteria(keywords=[("wavelnth", "171.0")]), set(E171)),
    "DATE-OBS text": (SearchCriteria(keywords=[("DATE-OBS", "2005-03-07")]), {ACS}),
    "OBJECT": (SearchCriteria(keywords=[("OBJECT", "full FOV")], wavelength=171), set(E171)),
    # keywords: stored JSON, any HDU
    "FILTER": (SearchCriteria(keywords=[("FILTER", "Clear")]), {STIS}),
    "FILTER with space": (SearchCriteria(keywords=[("FILTER", "Al +1")], start=at(23)), {EIT[23]}),
    "BUNIT, second HDU": (SearchCriteria(keywords=[("BUNIT", "ELECTRONS")]), {ACS}),
    "NAXIS1 integer": (SearchCriteria(keywords=[("NAXIS1", "62")]), {STIS}),
    "NAXIS1 as float": (SearchCriteria(keywords=[("NAXIS1", "40.0")]), {TEST0}),
    "NAXIS2 EIT": (SearchCriteria(keywords=[("NAXIS2", "8")], instrument="EIT"), {EIT[0]}),
    "JSON and typed": (SearchCriteria(keywords=[("FILTER", "Clear"), ("INSTRUME", "ACS")]), set()),
    "JSON and JSON": (SearchCriteria(keywords=[("BUNIT", "COUNTS"), ("FILTER", "Clear")]), {STIS}),
    "JSON no such keyword": (SearchCriteria(keywords=[("QUALITY", "GOOD")]), set()),
    "everything combined": (SearchCriteria(dataset="soho-eit", producer="SOHO/EIT team", instrument="EIT",
                                           detector="EIT", wavelength="195", start=at(3), end=at(8),
                                           keywords=[("FILTER", "Al +1")], format="x-fmt/383"),
                            {EIT[4], EIT[6], EIT[8]}),
}


def check_case(session: Any, label: str, sizes: dict[str, int]) -> None:
    criteria, expected = CASES[label]
    result = search(session, criteria, user="someone", groups=[], now=NOW)
    got = names(result)
    assert sorted(got) == sorted(expected), label
    assert result.count == len(expected), label
    if criteria.role is not None:
        assert result.bytes == sum(sizes[n] for n in expected), label
    for f in result.files:
        assert {"aip_id", "version", "path", "size", "sha512", "dataset", "instrument", "wavelength",
                "date_obs", "format"} <= set(f)


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, int]]]:
    from oais.bootstrap import init_archive, open_archive
    from oais.config import load_settings

    root = tmp_path_factory.mktemp("search")
    settings, _ = init_archive(root / "archive")
    archive = open_archive(settings)
    sizes = build_holdings(archive, root / "deliveries")
    yield archive, sizes
    archive.close()


@pytest.mark.parametrize("label", list(CASES))
def test_each_criterion_on_sqlite(held: tuple[Any, dict[str, int]], label: str) -> None:
    archive, sizes = held
    with archive.sessions() as s:
        check_case(s, label, sizes)


def test_sorted_by_observation_time_then_path_and_limited(held: tuple[Any, dict[str, int]]) -> None:
    archive, sizes = held
    with archive.sessions() as s:
        everything = search(s, SearchCriteria(), user=None, groups=(), now=NOW)
        # 1998 STIS, the EIT day by hour, 2005 ACS, then files without a parsed DATE-OBS by path
        assert names(everything) == [STIS, *EIT, ACS, "README.txt", TEST0]
        first = search(s, SearchCriteria(instrument="EIT"), user=None, groups=(), now=NOW, limit=5)
        assert names(first) == EIT[:5] and first.count == 24
        assert first.bytes == sum(sizes[n] for n in EIT)
        none = search(s, SearchCriteria(instrument="EIT"), user=None, groups=(), now=NOW, limit=0)
        assert none.files == [] and none.count == 24
        f = first.files[0]
        assert f["instrument"] == "EIT" and f["wavelength"] == 195.0 and f["dataset"] == "soho-eit"
        assert f["date_obs"] == "2003-10-28T00:00:00.000" and f["format"] == "x-fmt/383" and f["version"] == 1
        assert f["size"] == sizes[EIT[0]] and len(f["sha512"]) == 128


def test_aip_criterion_and_head_versions_only(held: tuple[Any, dict[str, int]]) -> None:
    from oais.catalog import models as m

    archive, _ = held
    with archive.sessions() as s:
        acs = search(s, SearchCriteria(instrument="ACS"), user=None, groups=(), now=NOW).files[0]
        by_aip = search(s, SearchCriteria(aip=acs["aip_id"]), user=None, groups=(), now=NOW)
        assert sorted(names(by_aip)) == sorted([TEST0, ACS])
        bare = acs["aip_id"].removeprefix("urn:uuid:")
        assert search(s, SearchCriteria(aip=bare), user=None, groups=(), now=NOW).count == 2
    with archive.sessions() as s:  # a second version holding only test0.fits; never committed
        aip = s.query(m.Aip).filter_by(identifier=acs["aip_id"]).one()
        old = next(f for f in aip.versions[0].files if f.path.endswith(TEST0))
        v2 = m.AipVersion(aip_id=aip.id, number=2, created_at=NOW, inventory_sha512="0" * 128)
        s.add(v2)
        s.add(m.File(version=v2, path=old.path, content_path=old.content_path, size=old.size, sha256=old.sha256,
                     sha512=old.sha512, puid=old.puid, role=old.role))
        aip.head_version = 2
        s.flush()
        head = search(s, SearchCriteria(aip=acs["aip_id"]), user=None, groups=(), now=NOW)
        assert [(f["version"], n) for f, n in zip(head.files, names(head))] == [(2, TEST0)]
        every = search(s, SearchCriteria(aip=acs["aip_id"], head_only=False), user=None, groups=(), now=NOW)
        assert sorted((f["version"], n) for f, n in zip(every.files, names(every))) == [(1, ACS), (1, TEST0),
                                                                                        (2, TEST0)]
        s.rollback()


def test_malformed_criteria_are_refused(held: tuple[Any, dict[str, int]]) -> None:
    archive, _ = held
    bad = [SearchCriteria(start=datetime(2003, 10, 28)),  # naive
           SearchCriteria(start=at(5), end=at(4)),
           SearchCriteria(wavelength="195-171"),
           SearchCriteria(wavelength="blue"),
           SearchCriteria(keywords=[("EXPTIME", "long")]),
           SearchCriteria(keywords=[("BAD'KEY", "1")])]
    with archive.sessions() as s:
        for criteria in bad:
            with pytest.raises(ValueError):
                search(s, criteria, user=None, groups=(), now=NOW)
        with pytest.raises(ValueError):
            search(s, SearchCriteria(), user=None, groups=(), now=NOW, limit=-1)


@pytest.mark.postgres
def test_each_criterion_on_postgresql(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from oais.bootstrap import init_archive, open_archive

    monkeypatch.setenv("OAIS_CATALOG_URL", pg_url)
    settings, _ = init_archive(tmp_path / "archive")
    assert settings.catalog_url == pg_url
    archive = open_archive(settings)
    try:
        sizes = build_holdings(archive, tmp_path / "deliveries")
        with archive.sessions() as s:
            for label in CASES:
                check_case(s, label, sizes)
            everything = search(s, SearchCriteria(), user=None, groups=(), now=NOW, limit=26)
            assert names(everything) == [STIS, *EIT, ACS]
    finally:
        archive.close()


# -- the command line ------------------------------------------------------------------------------
def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """``oais ARGV`` in this process, with ``oais.cli_access`` wired in if oais.cli does not yet do it."""
    from oais import cli, cli_access

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "search" not in sub.choices:
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument("--home", default=argparse.SUPPRESS)
        common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        cli_access.add_parsers(sub, common)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_cli_search(held: tuple[Any, dict[str, int]], monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    archive, sizes = held
    home = str(archive.settings.home)
    monkeypatch.setenv("OAIS_USER", "observer")
    code = run_cli(["search", "--home", home, "--instrument", "EIT", "--wavelength", "195", "--start",
                    "2003-10-28T03:00", "--end", "2003-10-28T08:00Z", "--keyword", "FILTER=Al +1", "--json"],
                   monkeypatch)
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    assert data["count"] == 3 and data["bytes"] == sum(sizes[n] for n in (EIT[4], EIT[6], EIT[8]))
    assert [f["path"].rsplit("/", 1)[-1] for f in data["files"]] == [EIT[4], EIT[6], EIT[8]]
    assert all(f["aip_id"].startswith("urn:uuid:") for f in data["files"]) and data["user"] == "observer"

    assert run_cli(["search", "--home", home, "--end", "2003-10-28", "--dataset", "soho-eit", "--limit", "2",
                    "--json"], monkeypatch) == 0  # a bare --end date includes that whole day
    data = json.loads(capsys.readouterr().out)
    assert data["count"] == 24 and len(data["files"]) == 2

    assert run_cli(["search", "--home", home, "--format", "x-fmt/383", "--dataset", "hst-imaging"], monkeypatch) == 0
    human = capsys.readouterr().out
    assert ACS in human and TEST0 in human and "2 files" in human

    for option, value in (("--start", "28/10/2003"), ("--end", "2003-13-01"), ("--wavelength", "blue"),
                          ("--keyword", "FILTER"), ("--limit", "-3")):
        assert run_cli(["search", "--home", home, option, value], monkeypatch) == 2, option
        assert option in capsys.readouterr().err, option
    assert run_cli(["search", "--home", home, "--start", "2003-10-29", "--end", "2003-10-28"], monkeypatch) == 2
    assert "--start" in capsys.readouterr().err
