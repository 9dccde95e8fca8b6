"""Engines, sessions and schema migrations (Alembic) for the catalog."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text

if TYPE_CHECKING:  # the ORM is imported where sessions are made: the fixity audit works without it
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, WAL, ``synchronous=FULL`` (set again on
    every connection going back to the pool, whatever :func:`redoable_commit` relaxed, after rolling
    back a transaction that a refused COMMIT left open) and a busy timeout."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30})
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        @event.listens_for(engine, "checkin")
        def _full_sync_again(dbapi_conn: Any, _record: Any) -> None:
            if dbapi_conn is not None:  # None: the connection was invalidated and closed
                if dbapi_conn.in_transaction:  # a COMMIT refused by a deferred constraint leaves it open
                    dbapi_conn.rollback()
                dbapi_conn.execute("PRAGMA synchronous=FULL")

    return engine


def redoable_commit(conn: Connection) -> None:
    """Let the commit of ``conn``'s transaction (call it first) return before the catalog's disk
    has it: for work that is redone when it is lost, such as one batch of fixity-audit results.

    A crash or a power loss can then lose that transaction, never the catalog's consistency, and the
    next durable commit on the same database (the default, and every later transaction) makes it
    durable too: SQLite's WAL and PostgreSQL's write-ahead log are written in order, and syncing a
    commit syncs everything before it. SQLite: ``synchronous=NORMAL`` for this connection until it
    goes back to the pool (it is set back to FULL then; it cannot change within a transaction, so
    it is left as it is if one is already open). PostgreSQL: ``synchronous_commit`` off for this
    transaction only. (With an ORM session: ``redoable_commit(session.connection())``.)
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
    elif conn.dialect.name == "sqlite":
        dbapi = conn.connection.dbapi_connection
        if dbapi is not None and not getattr(dbapi, "in_transaction", True):
            conn.exec_driver_sql("PRAGMA synchronous=NORMAL")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine, expire_on_commit=False)


def migrations_dir() -> Path:
    """The Alembic script folder shipped as the ``migrations`` package."""
    return Path(str(resources.files("migrations")))


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the catalog schema to ``revision`` (default: the newest)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The catalog's revision (the row Alembic keeps in ``alembic_version``); None for an empty catalog.

    Read with one query, without importing Alembic (a third of a second at every command's start).
    """
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


_REVISION = re.compile(r"^(down_)?revision\s*(?::[^=]*)?=\s*['\"]([^'\"]*)['\"]", re.MULTILINE)


def head_revision() -> str:
    """The newest revision in ``migrations/versions``: the one no other revision names as its
    ``down_revision``. Read from the scripts' text, without importing Alembic; the test suite checks
    it against Alembic's own ``ScriptDirectory.get_current_head()``."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (migrations_dir() / "versions").glob("*.py"):
        for down, value in _REVISION.findall(script.read_text(encoding="utf-8")):
            (parents if down else revisions).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"migrations/versions has {len(heads)} heads ({sorted(heads)}), not one")
    return heads.pop()
