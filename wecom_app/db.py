"""Engines and sessions: SQLite in WAL mode by default, PostgreSQL via DATABASE_URL.

The caller owns the session and the transaction (`with db.begin() as session:`); services take the
session as an argument and never commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    """Pick the psycopg 3 driver for plain postgres URLs and make SQLite's folder exist."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the pragmas and pool settings each backend wants."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL for concurrent readers, NORMAL sync (durable in WAL), FKs on, wait on locks."""
    # Let SQLAlchemy, not the sqlite3 module, issue BEGIN (see _sqlite_begin_immediate).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    """Take the write lock at BEGIN so two writers queue instead of failing on upgrade."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_writer(url: str) -> Any:
    """For a SQLite file, the shared writer queue; otherwise a lock that does nothing."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return nullcontext
    from wecom_app.sqlite_writer import writer_lock

    return writer_lock(parsed.database).hold


class Database:
    """An engine and its session factory."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = _sqlite_writer(self.url)

    @property
    def is_postgres(self) -> bool:
        """Whether this database is PostgreSQL."""
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """Open a session inside one transaction, committed on success."""
        with self._writer(), self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def alembic_config(url: str) -> Any:
    """Build an Alembic config pointing at the packaged migrations."""
    from alembic.config import Config

    folder = Path(__file__).parent / "migrations"
    cfg = Config(str(folder / "alembic.ini"))
    cfg.set_main_option("script_location", str(folder))
    cfg.attributes["database_url"] = normalise_url(url)
    return cfg


def upgrade_database(url: str, revision: str = "heads") -> None:
    """Apply migrations to the database at URL."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
