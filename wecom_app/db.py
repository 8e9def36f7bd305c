"""Engines and sessions: SQLite in WAL mode by default, PostgreSQL via DATABASE_URL.

The caller owns the session and the transaction (`with db.begin() as session:`); services take the
session as an argument and never commit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

IDLE_PING_SECONDS = 10.0  # PostgreSQL connections idle longer are pinged before reuse


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
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        event.listen(engine, "checkout", _idle_pinger(engine))
        event.listen(engine, "checkin", _note_checkin)
    return engine


def _idle_pinger(engine: Engine) -> Any:
    """A checkout hook that pings only connections that sat idle in the pool.

    Pinging on every checkout (pool_pre_ping) cost a full round trip per request, as much as the
    callback's INSERT itself. A connection used seconds ago is alive or fails its next statement,
    which invalidates the pool anyway; one idle for longer (a database restart, a firewall
    dropping quiet sockets) is pinged, and a dead one is replaced before anyone sees it.
    """

    def ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("checked_in_at")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # any failure means: do not hand this connection out
            raise DisconnectionError(f"idle connection failed its ping: {exc}") from exc

    return ping_if_idle


def _note_checkin(_dbapi_conn: Any, record: Any) -> None:
    """Remember when a connection went back to the pool."""
    if record is not None:
        record.info["checked_in_at"] = time.monotonic()


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
    # Straight to the driver: every transaction runs this, and SQLAlchemy's execution machinery
    # (context, events, result) around it cost about 10 us a time for nothing.
    conn.connection.driver_connection.execute("BEGIN IMMEDIATE")


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
        self._statements: dict[tuple[int, tuple[str, ...]], tuple[str, list[str], list[Any]]] = {}
        self._positional = self.engine.dialect.positional

    @property
    def is_postgres(self) -> bool:
        """Whether this database is PostgreSQL."""
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """Open a session inside one transaction, committed on success."""
        with self._writer(), self.sessions() as session, session.begin():
            yield session

    def execute_one(self, stmt: Any, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """Run one statement on a pooled DBAPI connection, commit, and return its first row.

        For the callback inbox's single INSERT, the hottest write there is: it skips the Session
        and SQLAlchemy's per-call execution context, which cost more CPU than the database work
        (about 100 us per call on SQLite and 230 us on PostgreSQL, measured). The statement is
        compiled once per set of parameter names; column types still convert the values. A
        DBAPI failure surfaces as SQLAlchemy's DBAPIError, like every other database error.
        """
        rows = self.execute_all(stmt, params, first_only=True)
        return rows[0] if rows else None

    def execute_all(
        self, stmt: Any, params: dict[str, Any], *, first_only: bool = False
    ) -> list[tuple[Any, ...]]:
        """Like execute_one, returning every row the statement gives back."""
        sql, names, processors = self._compiled(stmt, tuple(params))
        values = [
            fn(params[n]) if fn else params[n] for n, fn in zip(names, processors, strict=True)
        ]
        args: Any = values if self._positional else dict(zip(names, values, strict=True))
        with self._writer():
            conn = self.engine.raw_connection()
            # One statement needs no transaction around it: in autocommit PostgreSQL commits it
            # durably in one round trip instead of three (BEGIN, statement, COMMIT). SQLite's
            # connections already run in autocommit (see _sqlite_pragmas).
            driver = conn.driver_connection
            if self.is_postgres:
                driver.autocommit = True  # type: ignore[union-attr]
            try:
                cursor = conn.cursor()
                cursor.execute(sql, args)
                if not cursor.description:
                    return []
                if first_only:
                    row = cursor.fetchone()
                    return [tuple(row)] if row is not None else []
                return [tuple(r) for r in cursor.fetchall()]
            except self.engine.dialect.loaded_dbapi.Error as exc:
                dbapi_error = self.engine.dialect.loaded_dbapi.Error
                raise DBAPIError.instance(sql, args, exc, dbapi_error) from exc
            finally:
                if self.is_postgres:
                    driver.autocommit = False  # type: ignore[union-attr]
                conn.close()

    def _compiled(self, stmt: Any, keys: tuple[str, ...]) -> tuple[str, list[str], list[Any]]:
        """Compile a statement for these parameter names once; remember its bind processors."""
        cache_key = (id(stmt), keys)
        found = self._statements.get(cache_key)
        if found is None:
            compiled = stmt.compile(dialect=self.engine.dialect, column_keys=list(keys))
            names = list(compiled.positiontup or keys)
            types = {name: bind.type for name, bind in compiled.binds.items()}
            processors = [types[n].bind_processor(self.engine.dialect) for n in names]
            found = self._statements[cache_key] = (str(compiled), names, processors)
        return found

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
