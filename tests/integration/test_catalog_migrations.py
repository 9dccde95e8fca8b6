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


def test_0008_fills_the_header_copies_from_files_and_downgrades_keeping_the_rows(url: str) -> None:
    """Revision 0008 copies each file's version, role, format and size into its ``fits_headers``
    row (the search totals read them there); a downgrade to 0007 removes them and keeps every row."""
    from datetime import datetime, timezone

    from sqlalchemy import MetaData, Table, select

    engine = db.make_engine(url)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    try:
        db.upgrade(engine, "0007")
        old = MetaData()
        t = {name: Table(name, old, autoload_with=engine)
             for name in ("datasets", "aips", "aip_versions", "files", "fits_headers")}
        files = [  # id, version, path, role, puid, size
            (1, 1, "a.fits", "original", "x-fmt/383", 2880 * 3),
            (2, 2, "b.fits", "normalized", None, 2880),
            (3, 2, "METS.xml", "metadata", "fmt/101", 512),
        ]
        with engine.begin() as conn:
            conn.execute(t["datasets"].insert(), [{"id": 1, "identifier": "eit", "created_at": now}])
            conn.execute(t["aips"].insert(), [{"id": 1, "identifier": "urn:uuid:1", "dataset_id": 1,
                                                "object_path": "o", "head_version": 2, "created_at": now}])
            conn.execute(t["aip_versions"].insert(), [
                {"id": v, "aip_id": 1, "number": v, "created_at": now, "inventory_sha512": "0" * 128} for v in (1, 2)])
            conn.execute(t["files"].insert(), [
                {"id": i, "version_id": v, "path": p, "content_path": f"v{v}/content/{p}", "size": n,
                 "sha256": "0" * 64, "sha512": "0" * 128, "role": r, "puid": f} for i, v, p, r, f, n in files])
            conn.execute(t["fits_headers"].insert(), [  # no header for the METS file
                {"id": 10 + i, "file_id": i, "instrument": "EIT", "keywords": {"hdus": []}} for i in (1, 2)])
        db.upgrade(engine)
        assert _diff(engine) == []
        h = Base.metadata.tables["fits_headers"]
        with engine.connect() as conn:
            got = conn.execute(select(h.c.file_id, h.c.version_id, h.c.role, h.c.puid, h.c.size)
                               .order_by(h.c.file_id)).all()
        assert [tuple(r) for r in got] == [(i, v, r, f, n) for i, v, _p, r, f, n in files[:2]]
        db.downgrade(engine, "0007")
        with engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("fits_headers")}
            assert not {"version_id", "role", "puid", "size"} & columns
            assert conn.execute(select(t["fits_headers"].c.file_id, t["fits_headers"].c.instrument)
                                .order_by(t["fits_headers"].c.file_id)).all() == [(1, "EIT"), (2, "EIT")]
    finally:
        db.downgrade(engine, "base")
        engine.dispose()
