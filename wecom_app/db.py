"""Engines and sessions: SQLite in WAL mode by default, PostgreSQL via DATABASE_URL.

The caller owns the session and the transaction (`with db.begin() as session:` to write,
`with db.read() as session:` to only read); services take the session as an argument and never
commit. `db.in_transaction()` tells whether this thread holds one open, which the composition
root uses to catch a WeCom call made from inside a transaction. `db.exclusive(name)` is a lock
across processes for work that must not run twice at once (a full sync), taken with the
database's own means: an advisory lock on PostgreSQL, flock() beside a SQLite file.
"""

from __future__ import annotations

import fcntl
import functools
import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from wecom_app.dedicated import DedicatedConnection

IDLE_PING_SECONDS = 10.0  # PostgreSQL connections idle longer are pinged before reuse
CONNECT_TIMEOUT_SECONDS = 3  # a database host that does not answer fails fast
INBOX_WAIT_SECONDS = 2.0  # the callback inbox's longest wait for SQLite's writer queue


def normalise_url(url: str) -> str:
    """Pick the psycopg 3 driver for plain postgres URLs and make SQLite's folder exist."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, idle_ping: float = IDLE_PING_SECONDS, **kwargs: Any) -> Engine:
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
        kwargs.setdefault("pool_timeout", 10)
    kwargs.setdefault("connect_args", {"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        event.listen(engine, "checkout", _idle_pinger(engine, idle_ping))
        event.listen(engine, "checkin", _note_checkin)
    return engine


def _idle_pinger(engine: Engine, idle_ping: float) -> Any:
    """A checkout hook that pings only connections that sat idle in the pool.

    Pinging on every checkout (pool_pre_ping) cost a full round trip per request, as much as the
    callback's INSERT itself. A connection used seconds ago is alive or fails its next statement,
    which invalidates the pool anyway; one idle for longer (a database restart, a firewall
    dropping quiet sockets) is pinged, and a dead one is replaced before anyone sees it.
    """

    def ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("checked_in_at")
        if idle_since is None or time.monotonic() - idle_since < idle_ping:
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
    """WAL for concurrent readers, NORMAL sync, FKs on, wait on locks.

    In WAL mode NORMAL keeps every commit across a crash of the process, and loses at most the
    last ones to a power cut or an OS crash (never corrupting the file). That suits the worker's
    transactions, which are re-derived or retried; the callback inbox's dedicated connection
    switches to FULL, since WeCom does not redeliver what was answered 200.
    """
    # Let SQLAlchemy, not the sqlite3 module, issue BEGIN (see _sqlite_begin_immediate).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


READ_ONLY = "wecom_app_read_only"


def _sqlite_begin_immediate(conn: Any) -> None:
    """Take the write lock at BEGIN so two writers queue instead of failing on upgrade.

    A read-only transaction (Database.read) begins deferred: in WAL mode it reads a snapshot
    and never waits for, nor holds up, a writer.
    """
    # Straight to the driver: every transaction runs this, and SQLAlchemy's execution machinery
    # (context, events, result) around it cost about 10 us a time for nothing.
    deferred = conn.get_execution_options().get(READ_ONLY)
    conn.connection.driver_connection.execute("BEGIN" if deferred else "BEGIN IMMEDIATE")


def _sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL, or None (PostgreSQL, in-memory SQLite)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def _no_writer(timeout: float | None = None) -> AbstractContextManager[None]:
    return nullcontext()


class Database:
    """An engine and its session factory."""

    def __init__(
        self, url: str, *, idle_ping: float = IDLE_PING_SECONDS, **engine_kwargs: Any
    ) -> None:
        self.url = normalise_url(url)
        self.idle_ping = idle_ping  # seconds after which an idle connection is checked first
        self.engine = make_engine(url, idle_ping=idle_ping, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._file = _sqlite_file(self.url)
        if self._file is not None:
            from wecom_app.sqlite_writer import writer_lock

            self._writer: Any = writer_lock(self._file).hold
        else:
            self._writer = _no_writer
        self._dedicated: weakref.WeakSet[DedicatedConnection] = weakref.WeakSet()
        self._open = threading.local()
        self._exclusive_guard = threading.Lock()
        self._exclusive_held: set[str] = set()
        self._memory_locks: dict[str, threading.Lock] = {}

    @property
    def is_postgres(self) -> bool:
        """Whether this database is PostgreSQL."""
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """Open a session inside one transaction, committed on success."""
        with self._writer(), self._tracked(), self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session in a transaction that only reads; on SQLite it never waits for a writer."""
        with self._tracked(), self.sessions() as session:
            session.connection(execution_options={READ_ONLY: True})
            yield session  # closing the session rolls the read transaction back

    @contextmanager
    def _tracked(self) -> Iterator[None]:
        self._open.depth = getattr(self._open, "depth", 0) + 1
        try:
            yield
        finally:
            self._open.depth -= 1

    def in_transaction(self) -> bool:
        """Whether this thread has a transaction of this database open right now."""
        return getattr(self._open, "depth", 0) > 0

    def writing(self, timeout: float | None = None) -> AbstractContextManager[None]:
        """Hold SQLite's writer queue (re-entrant in a thread); on PostgreSQL, nothing."""
        return self._writer(timeout)

    @contextmanager
    def exclusive(self, name: str, *, wait: bool = True) -> Iterator[bool]:
        """Hold a lock named `name` across every process on this database.

        Yields True when held; with wait=False, yields False at once if someone holds it. The
        lock ends with the block, and with the process if it dies (the database or the kernel
        releases it).
        """
        with self._exclusive_guard:
            if name in self._exclusive_held and not wait:
                yield False
                return
        lock = _PgAdvisoryLock(self, name) if self.is_postgres else _FileLock(self, name)
        with lock.hold(wait) as held:
            if held:
                with self._exclusive_guard:
                    self._exclusive_held.add(name)
            try:
                yield held
            finally:
                if held:
                    with self._exclusive_guard:
                        self._exclusive_held.discard(name)

    def dedicated(self) -> DedicatedConnection:
        """A connection of its own, outside the pool, for one hot single-statement path.

        dispose() closes it along with the pool.
        """
        conn = DedicatedConnection(
            self.engine, self.writing, idle_ping=lambda: self.idle_ping, wait=INBOX_WAIT_SECONDS
        )
        self._dedicated.add(conn)
        return conn

    def dispose(self) -> None:
        """Close every pooled and dedicated connection."""
        for conn in list(self._dedicated):
            conn.close()
        self.engine.dispose()


class _PgAdvisoryLock:
    """pg_advisory_lock on a connection of its own, held for the block."""

    def __init__(self, db: Database, name: str) -> None:
        self.db, self.name = db, name

    @contextmanager
    def hold(self, wait: bool) -> Iterator[bool]:
        from sqlalchemy import text

        with self.db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            key = {"name": f"wecom_app:{self.name}"}
            if wait:
                conn.execute(text("SELECT pg_advisory_lock(hashtext(:name))"), key)
                held = True
            else:
                held = bool(
                    conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:name))"), key).scalar()
                )
            try:
                yield held
            finally:
                if held:
                    conn.execute(text("SELECT pg_advisory_unlock(hashtext(:name))"), key)


class _FileLock:
    """flock() on a file beside the SQLite database (a thread lock for an in-memory one)."""

    def __init__(self, db: Database, name: str) -> None:
        self.path = f"{db._file}.{name}.lock" if db._file else None
        self.name = name
        self.memory = db._memory_locks

    @contextmanager
    def hold(self, wait: bool) -> Iterator[bool]:
        if self.path is None:
            lock = self.memory.setdefault(self.name, threading.Lock())
            held = lock.acquire(blocking=wait)
            try:
                yield held
            finally:
                if held:
                    lock.release()
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                held = True
            except BlockingIOError:
                held = False
            yield held
        finally:
            os.close(fd)  # closing the descriptor releases the lock


def alembic_config(url: str) -> Any:
    """Build an Alembic config pointing at the packaged migrations."""
    from alembic.config import Config

    folder = Path(__file__).parent / "migrations"
    cfg = Config(str(folder / "alembic.ini"))
    cfg.set_main_option("script_location", str(folder))
    cfg.attributes["database_url"] = normalise_url(url)
    return cfg


@functools.cache
def migration_heads() -> frozenset[str]:
    """The newest revisions this release's migrations define."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def schema_behind(session: Any) -> str | None:
    """Why the schema does not match this release (no tables, an older or newer revision);
    None when it does."""
    try:
        rows = session.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:
        return "数据库尚未初始化：请运行 wecom-app db upgrade"
    current, heads = frozenset(rows), migration_heads()
    if current == heads:
        return None
    return (
        f"数据库版本 {', '.join(sorted(current)) or '无'} 与本版本所需的 {', '.join(sorted(heads))}"
        " 不符：请运行 wecom-app db upgrade"
    )


def upgrade_database(url: str, revision: str = "heads") -> None:
    """Apply migrations to the database at URL."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
