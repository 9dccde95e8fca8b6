"""``oais.services.audit._id_filters``: the conditions a batch of checks is recorded with select
exactly its units, whether their ids come in runs or scattered (checked on a real SQLite table)."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select

from oais.services.audit import IN_CHUNK, RUN_MIN, _id_filters

metadata = MetaData()
units = Table("units", metadata, Column("id", Integer, primary_key=True))


def _selected(ids: list[int]) -> tuple[list[int], int]:
    """The ids the filters select (each statement run on its own), and the number of statements."""
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(units), [{"id": i} for i in range(1, 5001)])
        found: list[int] = []
        statements = 0
        for where in _id_filters(units.c.id, ids):
            statements += 1
            found.extend(conn.scalars(select(units.c.id).where(where)))
    return found, statements


@pytest.mark.parametrize("ids", [
    pytest.param([], id="none"),
    pytest.param(list(range(1, 4097)), id="one-run"),
    pytest.param(list(range(10, 10 + RUN_MIN - 1)), id="run-too-short"),
    pytest.param(list(range(10, 10 + RUN_MIN)), id="shortest-run"),
    pytest.param([5, 3, 4, 100, 2, 101, 7, 102, 3] + list(range(200, 260)) + [4999], id="mixed-unsorted-dup"),
    pytest.param(list(range(1, 5001, 2)), id="scattered-many-chunks"),
])
def test_filters_select_exactly_the_ids(ids: list[int]) -> None:
    found, _ = _selected(ids)
    assert sorted(found) == sorted(set(ids)) and len(found) == len(set(ids))  # each row once


def test_runs_make_few_statements() -> None:
    rng = random.Random(7)
    ids = list(range(1, 4097))
    holes = set(rng.sample(ids, 5))  # five failed checks leave holes in the run of passes
    passed = [i for i in ids if i not in holes]
    found, statements = _selected(passed)
    assert sorted(found) == passed
    assert statements <= 6
    _, scattered = _selected(list(range(1, 5001, 2)))
    assert scattered == -(-2500 // IN_CHUNK)
