"""Alembic migrations: round trip and "models equal migrations", on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from oais.catalog import db
from oais.catalog.models import Base

TABLES = {"producers", "datasets", "agents", "deliveries", "aips", "aip_versions", "files", "replicas",
          "events", "event_agents"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    return request.getfixturevalue("pg_url")


def _diff(engine) -> list:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(ctx, Base.metadata)


def test_upgrade_downgrade_upgrade_round_trip(url: str) -> None:
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision()
        assert TABLES <= set(inspect(engine).get_table_names())
        db.downgrade(engine, "base")
        assert db.current_revision(engine) is None
        assert not TABLES & set(inspect(engine).get_table_names())
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision()
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_models_equal_migrations(url: str) -> None:
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        assert _diff(engine) == [], "models and migrations differ: write a new Alembic revision"
    finally:
        engine.dispose()


def test_difference_is_detected(url: str) -> None:
    """The comparison itself can fail: a catalog one revision short differs from the models."""
    from sqlalchemy import Column, Integer, MetaData, Table

    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        extra = MetaData()
        for table in Base.metadata.tables.values():
            table.to_metadata(extra)
        Table("not_migrated", extra, Column("id", Integer, primary_key=True))
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), extra)
        assert [d[0] for d in diff] == ["add_table"]
    finally:
        engine.dispose()


def test_revisions_read_without_alembic_agree_with_alembic(url: str) -> None:
    """``head_revision``/``current_revision`` skip importing Alembic at start-up; they must say what
    Alembic itself says, before and after an upgrade."""
    from alembic.script import ScriptDirectory

    engine = db.make_engine(url)
    try:
        assert db.head_revision() == ScriptDirectory.from_config(db.alembic_config(engine)).get_current_head()
        for step in ("none", "0001", "head"):
            if step != "none":
                db.upgrade(engine, step)
            with engine.connect() as conn:
                assert db.current_revision(engine) == MigrationContext.configure(conn).get_current_revision()
        assert db.current_revision(engine) == db.head_revision()
    finally:
        db.downgrade(engine, "base")
        engine.dispose()
