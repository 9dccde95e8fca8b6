"""Search on a seeded catalog of a few thousand files (``bench/catalog_fill.py``, the benchmark's own
generator) against a plain Python evaluation of the same criteria: the same files in the same order,
the same totals, for every kind of criterion, limit and access rule, on SQLite and on PostgreSQL.

The seed is edited so that every ordering rule is exercised: headers without an observation time,
observation times shared by files of different AIPs (ties broken by path, then AIP, then version),
second versions of AIPs, and embargoes and restrictions. On SQLite, the query plans are checked too:
the page is read in the order of ``ix_fits_headers_search`` (no sort of every match), and the totals
read one covering index: ``ix_fits_headers_search`` with FITS criteria, ``ix_files_search_totals``
without.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, update

from oais.catalog import models as m
from oais.services import access
from oais.services.search import SearchCriteria, search
from tests.conftest import REPO

N_FILES = 4_000
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
FUTURE = datetime(2030, 1, 1, tzinfo=timezone.utc)


def _fill(home: Path, n: int) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("catalog_fill", REPO / "bench" / "catalog_fill.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result: dict[str, Any] = module.fill(home, n)
    return result


def _seed_edge_cases(archive: Any) -> None:
    """No observation time for one EIT header in 9; one EIT time in 5 copied from an EIT file of another
    AIP (a tie across AIPs); embargoes and restrictions; one AIP's head version moved back to 1."""
    with archive.sessions.begin() as s:
        rows = s.execute(select(m.FitsHeader.id, m.FitsHeader.obs_start, m.AipVersion.aip_id)
                         .join(m.File, m.FitsHeader.file_id == m.File.id)
                         .join(m.AipVersion, m.File.version_id == m.AipVersion.id)
                         .where(m.FitsHeader.instrument == "EIT").order_by(m.FitsHeader.id)).all()
        assert len(rows) > 200
        for k, (hid, _obs, _aip) in enumerate(rows):
            if k % 9 == 4:
                s.execute(update(m.FitsHeader).where(m.FitsHeader.id == hid).values(obs_start=None))
            elif k % 5 == 2:
                other = next(r for r in reversed(rows) if r[2] != rows[k][2] and r[1] is not None)
                s.execute(update(m.FitsHeader).where(m.FitsHeader.id == hid).values(obs_start=other[1]))
        datasets = dict(s.execute(select(m.Dataset.identifier, m.Dataset.id)).all())
        aips = s.scalars(select(m.Aip).order_by(m.Aip.id)).all()
        eit_aips = [a for a in aips if a.dataset_id == datasets["soho-eit"]]
        access.set_embargo(s, "sdo-aia", FUTURE, users=["alice"], now=NOW)  # hidden from all but alice
        access.set_embargo(s, "soho-mdi", datetime(2020, 1, 1, tzinfo=timezone.utc), now=NOW)  # over
        access.restrict_aip(s, eit_aips[1].identifier, None, groups=["eit-team"], now=NOW)
        twice = next(a for a in aips if a.head_version == 2)
        twice.head_version = 1  # an AIP whose head is its first version (its second is then not searched)


def _rows(archive: Any) -> list[dict[str, Any]]:
    """Every file with its version, AIP, dataset, producer, header and visibility inputs."""
    with archive.sessions() as s:
        q = (select(m.File.path, m.File.size, m.File.sha512, m.File.puid, m.File.role, m.AipVersion.number,
                    m.Aip.identifier, m.Aip.head_version, m.Aip.id, m.Aip.dataset_id, m.Dataset.identifier,
                    m.Producer.name, m.FitsHeader.id, m.FitsHeader.instrument, m.FitsHeader.detector,
                    m.FitsHeader.wavelength, m.FitsHeader.date_obs, m.FitsHeader.obs_start, m.FitsHeader.obs_end)
             .join(m.AipVersion, m.File.version_id == m.AipVersion.id).join(m.Aip, m.AipVersion.aip_id == m.Aip.id)
             .join(m.Dataset, m.Aip.dataset_id == m.Dataset.id)
             .join(m.Producer, m.Aip.producer_id == m.Producer.id, isouter=True)
             .join(m.FitsHeader, m.FitsHeader.file_id == m.File.id, isouter=True))
        keys = ["path", "size", "sha512", "puid", "role", "version", "aip_id", "head", "aip_pk", "dataset_pk",
                "dataset", "producer", "header", "instrument", "detector", "wavelength", "date_obs", "obs_start",
                "obs_end"]
        out = [dict(zip(keys, r)) for r in s.execute(q)]
        rules = s.scalars(select(m.AccessRule)).all()
        for r in out:
            r["rules"] = [x for x in rules if x.dataset_id == r["dataset_pk"] or x.aip_id == r["aip_pk"]]
    return out


def _expected(rows: list[dict[str, Any]], c: SearchCriteria, user: str | None, groups: list[str],
              limit: int | None) -> dict[str, Any]:
    """What the search must answer, evaluated in Python."""
    wave = c.wavelength
    fits_criteria = bool(c.instrument or c.detector or wave is not None or c.start or c.end or c.keywords)

    def keep(r: dict[str, Any]) -> bool:
        if fits_criteria and r["header"] is None:
            return False
        if c.role and r["role"] != c.role or c.head_only and r["version"] != r["head"]:
            return False
        if c.dataset and r["dataset"] != c.dataset or c.producer and r["producer"] != c.producer:
            return False
        if c.aip and r["aip_id"] not in (c.aip, f"urn:uuid:{c.aip}") or c.format and r["puid"] != c.format:
            return False
        if c.instrument and r["instrument"] != c.instrument or c.detector and r["detector"] != c.detector:
            return False
        if isinstance(wave, tuple) and not (r["wavelength"] is not None and wave[0] <= r["wavelength"] <= wave[1]):
            return False
        if isinstance(wave, float) and r["wavelength"] != wave:
            return False
        for key, value in c.keywords:
            assert key == "DETECTOR"  # the cases below use this typed keyword only
            if r["detector"] != value:
                return False
        if (c.start or c.end) and r["obs_start"] is None:
            return False
        if c.start and not (r["obs_end"] or r["obs_start"]) >= c.start:
            return False
        if c.end and not r["obs_start"] <= c.end:
            return False
        return all(access.rule_allows(rule, user, groups, NOW) for rule in r["rules"])

    found = [r for r in rows if keep(r)]
    found.sort(key=lambda r: (r["obs_start"] is None, r["obs_start"] or NOW, r["path"], r["aip_id"], r["version"]))
    files = [{"aip_id": r["aip_id"], "version": r["version"], "path": r["path"], "size": r["size"],
              "sha512": r["sha512"], "dataset": r["dataset"],
              "instrument": r["instrument"], "wavelength": r["wavelength"], "date_obs": r["date_obs"],
              "obs_start": r["obs_start"].isoformat().replace("+00:00", "Z") if r["obs_start"] else None,
              "format": r["puid"], "role": r["role"]} for r in found[:limit]]
    return {"count": len(found), "bytes": sum(r["size"] for r in found), "files": files}


def _cases(rows: list[dict[str, Any]]) -> list[SearchCriteria]:
    eit = [r for r in rows if r["instrument"] == "EIT" and r["obs_start"] is not None]
    t0 = sorted(r["obs_start"] for r in eit)[len(eit) // 3]
    some_aip = next(r["aip_id"] for r in eit)
    return [
        SearchCriteria(instrument="EIT", wavelength=195.0),  # the benchmark's search
        SearchCriteria(instrument="EIT"),
        SearchCriteria(instrument="AIA", wavelength=(170.0, 200.0)),  # embargoed but for alice
        SearchCriteria(wavelength=(170.0, 200.0)),
        SearchCriteria(instrument="EIT", wavelength=195.0, start=t0, end=t0 + timedelta(days=400)),
        SearchCriteria(start=t0),
        SearchCriteria(end=t0),
        SearchCriteria(instrument="LASCO", keywords=[("DETECTOR", "C2")]),  # no wavelength at all
        SearchCriteria(instrument="MDI"),  # an embargo that is over
        SearchCriteria(dataset="soho-eit"),
        SearchCriteria(producer="PROBA2/SWAP team", format="x-fmt/383"),
        SearchCriteria(aip=some_aip.removeprefix("urn:uuid:"), role=None),
        SearchCriteria(instrument="EIT", head_only=False),
        SearchCriteria(instrument="LASCO", head_only=False),  # the AIP with two versions: ties by version
        SearchCriteria(instrument="LASCO"),  # ... whose head was moved back to its first version
        SearchCriteria(instrument="EIT", format="fmt/101"),  # FITS criteria and a format no FITS file has
        SearchCriteria(instrument="NONE"),
        SearchCriteria(),
        SearchCriteria(role=None),
    ]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from oais.bootstrap import init_archive, open_archive

    with pytest.MonkeyPatch.context() as mp:
        if request.param == "postgresql":
            mp.setenv("OAIS_CATALOG_URL", request.getfixturevalue("pg_url_module"))
        settings, _ = init_archive(tmp_path_factory.mktemp("seeded") / "archive")
        filled = _fill(settings.home, N_FILES)
        assert filled["files"] == N_FILES
        archive = open_archive(settings)
        try:
            _seed_edge_cases(archive)
            yield archive
        finally:
            archive.close()


@pytest.fixture(scope="module")
def pg_url_module() -> Iterator[str]:
    """A fresh PostgreSQL database for the module (see ``pg_url`` in conftest)."""
    from tests.conftest import fresh_pg_database

    with fresh_pg_database() as url:
        yield url


@pytest.mark.parametrize("who", [(None, []), ("alice", []), ("bob", ["eit-team"])], ids=["anonymous", "alice",
                                                                                     "eit-team"])
def test_results_order_and_totals_are_those_of_the_criteria(seeded: Any, who: tuple[str | None, list[str]]) -> None:
    user, groups = who
    rows = _rows(seeded)
    assert any(r["obs_start"] is None and r["header"] is not None for r in rows)  # the edge cases are there
    cases = _cases(rows)
    seen_counts = set()
    with seeded.sessions() as s:
        for criteria in cases:
            for limit in (10, 0, 1, None):
                got = search(s, criteria, user=user, groups=groups, now=NOW, limit=limit).to_dict()
                want = _expected(rows, criteria, user, groups, limit)
                assert got["count"] == want["count"] and got["bytes"] == want["bytes"], (criteria, limit)
                assert got["files"] == want["files"], (criteria, limit)
                seen_counts.add(want["count"])
    assert 0 in seen_counts and max(seen_counts) > 1000  # empty, small and large answers were all compared


def test_ties_and_files_without_observation_time_page_across(seeded: Any) -> None:
    """A page that ends inside the files without an observation time, and ties on obs_start."""
    rows = _rows(seeded)
    criteria = SearchCriteria(instrument="EIT", wavelength=195.0)
    want_all = _expected(rows, criteria, None, [], None)
    timed = sum(1 for f in want_all["files"] if f["obs_start"] is not None)
    assert 0 < timed < want_all["count"]
    starts = [f["obs_start"] for f in want_all["files"] if f["obs_start"]]
    assert len(set(starts)) < len(starts)  # ties exist
    with seeded.sessions() as s:
        for limit in (timed - 1, timed, timed + 3, want_all["count"] + 5):
            got = search(s, criteria, user=None, groups=[], now=NOW, limit=limit)
            assert got.files == want_all["files"][:limit] and got.count == want_all["count"], limit


def _plans(seeded: Any, searches: list[tuple[SearchCriteria, int]]) -> tuple[list[Any], list[str]]:
    """Run each ``(criteria, limit)`` search; return the results and the SQLite plan of every
    statement they executed, in order."""
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(seeded.engine, "before_cursor_execute", capture)
    try:
        with seeded.sessions() as s:
            results = [search(s, c, user=None, groups=[], now=NOW, limit=limit) for c, limit in searches]
    finally:
        event.remove(seeded.engine, "before_cursor_execute", capture)
    with seeded.engine.connect() as conn:
        plans = [" | ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                                          parameters).all())
                 for statement, parameters in statements]
    return results, plans


@pytest.mark.parametrize("seeded", ["sqlite"], indirect=True)  # plans are SQLite's, the default catalog
def test_sqlite_plans_read_the_search_indexes(seeded: Any) -> None:
    assert seeded.engine.dialect.name == "sqlite"
    (result,), plans = _plans(seeded, [(SearchCriteria(instrument="EIT", wavelength=195.0), 10)])
    assert result.count > 10 and len(result.files) == 10
    assert len(plans) == 2  # the totals, then one page query (it was full)
    totals, page = plans
    # the totals read the header index alone: no look-up into files, no wide row of either table
    assert "COVERING INDEX ix_fits_headers_search" in totals and "files" not in totals, totals
    assert "ix_fits_headers_search" in page and "TEMP B-TREE FOR ORDER BY" not in page, page


@pytest.mark.parametrize("seeded", ["sqlite"], indirect=True)
def test_sqlite_totals_without_fits_criteria_read_the_files_index(seeded: Any) -> None:
    results, plans = _plans(seeded, [(SearchCriteria(dataset="soho-eit"), 0), (SearchCriteria(), 0)])
    assert all(r.count > 0 and not r.files for r in results)
    assert len(plans) == 2  # the totals only (limit 0)
    for plan in plans:
        assert "COVERING INDEX ix_files_search_totals" in plan, plan
