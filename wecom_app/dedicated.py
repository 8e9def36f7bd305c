"""A database connection kept out of the pool for the callback inbox's one hot statement.

Taking a connection from the pool and giving it back, and the driver's own per-call work, cost
more CPU than the inbox's INSERT itself (measured with scripts/bench_callbacks: group commit on
pooled connections reached 0.26 / 0.24 of the bare endpoint on SQLite / PostgreSQL, on this
connection 0.42 / 0.43). It also carries the inbox's own limits: statement and lock timeouts on
PostgreSQL, synchronous=FULL and a short busy timeout on SQLite.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

# The callback inbox answers WeCom within its 5 s: past these, it gives up and says 503.
INBOX_STATEMENT_TIMEOUT_MS = 2000
INBOX_LOCK_TIMEOUT_MS = 1000


class DedicatedConnection:
    """One connection kept out of the pool, for a few statements that run very often.

    Taking a connection from the pool and giving it back, and the driver's own per-call work,
    cost more CPU than the callback inbox's INSERT itself (measured). So a statement is compiled
    once per set of parameter names, its column types still convert the values, and then:

    - on PostgreSQL it is prepared once per connection and run through libpq directly, with
      text parameters, in autocommit (one round trip, committed durably when it returns);
      values come back as text;
    - on SQLite it runs on the sqlite3 connection under the writer queue, with synchronous=FULL.

    A DBAPI failure surfaces as SQLAlchemy's DBAPIError, like every other database error; a
    connection that broke is dropped and the next call opens a fresh one, and so is a
    PostgreSQL connection left idle for `Database.idle_ping` seconds. The owner must not
    use it from two threads at once (GroupInsert's single leader guarantees that). After a fork
    the child opens its own and leaves the parent's alone.
    """

    def __init__(
        self,
        engine: Engine,
        writing: Callable[[float], AbstractContextManager[None]],
        *,
        idle_ping: Callable[[], float],
        wait: float,
    ) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self._writing = writing
        self._idle_ping = idle_ping
        self._wait = wait
        self._held = _Held()
        weakref.finalize(self, self._held.close)
        dialect = engine.dialect
        # Positional $n placeholders with casts: what libpq's prepared statements take.
        self._dialect: Any = (
            type(dialect)(paramstyle="numeric_dollar")  # type: ignore[call-arg]
            if self.is_postgres
            else dialect
        )
        self._statements: dict[tuple[int, tuple[str, ...]], _Compiled] = {}
        self._names = itertools.count()  # prepared-statement names, never reused

    def execute(self, stmt: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run one statement, committed when this returns; return the rows it gave back."""
        compiled = self._compile(stmt, tuple(params))
        values = [
            fn(params[n]) if fn else params[n]
            for n, fn in zip(compiled.names, compiled.processors, strict=True)
        ]
        if self.is_postgres:
            return self._execute_libpq(compiled, values)
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        with self._writing(self._wait):
            cursor = self._driver().cursor()
            try:
                cursor.execute(compiled.sql, values)
                return [tuple(r) for r in cursor.fetchall()] if cursor.description else []
            except dbapi_error as exc:
                raise DBAPIError.instance(compiled.sql, values, exc, dbapi_error) from exc
            finally:
                cursor.close()

    def _execute_libpq(self, compiled: _Compiled, values: list[Any]) -> list[tuple[Any, ...]]:
        """Prepare (once per connection) and run a statement with libpq; rows come as text."""
        import psycopg
        from psycopg.pq import ExecStatus

        pgconn = self._driver().pgconn
        try:
            args = [_pg_text(v) for v in values]
            if compiled.name not in self._held.prepared:
                _pg_check(pgconn.prepare(compiled.name, compiled.sql.encode()), pgconn)
                self._held.prepared.add(compiled.name)
            result = _pg_check(pgconn.exec_prepared(compiled.name, args), pgconn)
        except (psycopg.Error, TypeError) as exc:
            if pgconn.status != psycopg.pq.ConnStatus.OK:
                self._held.close()
            error = exc if isinstance(exc, psycopg.Error) else psycopg.ProgrammingError(str(exc))
            raise DBAPIError.instance(compiled.sql, values, error, psycopg.Error) from exc
        if result.status != ExecStatus.TUPLES_OK:
            return []
        width = result.nfields
        return [
            tuple(_pg_value(result.get_value(row, col)) for col in range(width))
            for row in range(result.ntuples)
        ]

    def _compile(self, stmt: Any, keys: tuple[str, ...]) -> _Compiled:
        """Compile a statement for these parameter names once; remember its bind processors."""
        found = self._statements.get((id(stmt), keys))
        if found is None or found.stmt is not stmt:
            compiled = stmt.compile(dialect=self._dialect, column_keys=list(keys))
            names = list(compiled.positiontup or keys)
            types = {name: bind.type for name, bind in compiled.binds.items()}
            processors = [types[n].bind_processor(self._dialect) for n in names]
            name = f"wecom_app_{next(self._names)}".encode()
            found = _Compiled(stmt, str(compiled), name, names, processors)
            self._statements[(id(stmt), keys)] = found
        return found

    def _driver(self) -> Any:
        """The driver connection, opened on first use and after a fork or a failure."""
        held = self._held
        if held.raw is not None and held.pid != os.getpid():
            held.forget()
        now = time.monotonic()
        idle = now - held.used_at
        if held.raw is not None and self.is_postgres and idle > self._idle_ping():
            # Idle long enough for a firewall to have dropped it without a word, and a dead
            # socket hangs rather than fails: a fresh connection costs a few ms once.
            held.close()
        held.used_at = now
        if held.raw is None:
            raw = self.engine.raw_connection()
            driver = raw.driver_connection
            try:
                if self.is_postgres:
                    driver.autocommit = True  # type: ignore[union-attr]
                    # Whoever calls this answers WeCom within 5 s: never wait longer than this
                    # for a lock or a statement, say 503 instead.
                    driver.execute(  # type: ignore[union-attr]
                        f"SET statement_timeout = {INBOX_STATEMENT_TIMEOUT_MS};"
                        f" SET lock_timeout = {INBOX_LOCK_TIMEOUT_MS}"
                    )
                else:
                    # Whoever calls this answers WeCom after it returns: a commit must survive
                    # a power cut too, not only a crash of the process (see _sqlite_pragmas).
                    driver.execute("PRAGMA synchronous=FULL")  # type: ignore[union-attr]
                    busy = int(self._wait * 1000)
                    driver.execute(f"PRAGMA busy_timeout={busy}")  # type: ignore[union-attr]
            except BaseException:
                raw.close()
                raise
            raw.detach()  # ours until closed; the pool opens another for everyone else
            held.raw, held.driver, held.pid = raw, driver, os.getpid()
        return held.driver

    def close(self) -> None:
        """Close the connection (a later execute opens a new one)."""
        self._held.close()


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement compiled once: SQL, prepared-statement name, parameter order, converters."""

    stmt: Any  # kept referenced, so that its id() is never reused for another statement
    sql: str
    name: bytes
    names: list[str]
    processors: list[Any]


def _pg_text(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text format (the statement's casts give it its type)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat().encode()
    raise TypeError(f"no text form for a parameter of type {type(value).__name__}")


def _pg_value(raw: bytes | None) -> str | None:
    """A returned value in text format."""
    return None if raw is None else raw.decode()


def _pg_check(result: Any, pgconn: Any) -> Any:
    """Return a successful libpq result, or raise the psycopg error it stands for."""
    import psycopg
    from psycopg.pq import DiagnosticField, ExecStatus

    if result.status in (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK):
        return result
    message = (result.error_message or pgconn.error_message or b"").decode(errors="replace")
    sqlstate = result.error_field(DiagnosticField.SQLSTATE)
    try:
        error_class = psycopg.errors.lookup(sqlstate.decode()) if sqlstate else None
    except KeyError:
        error_class = None
    if error_class is None:
        ok = pgconn.status == psycopg.pq.ConnStatus.OK
        error_class = psycopg.DatabaseError if ok else psycopg.OperationalError
    raise error_class(message.strip() or "query failed")


# Connections a forked child inherited: kept referenced so that no finaliser of the child's
# closes a socket the parent is still using.
_INHERITED: list[Any] = []


class _Held:
    """The connection a DedicatedConnection holds, closable by a finaliser without it."""

    __slots__ = ("driver", "pid", "prepared", "raw", "used_at")

    def __init__(self) -> None:
        self.raw: Any = None
        self.driver: Any = None
        self.pid = 0
        self.used_at = 0.0
        self.prepared: set[bytes] = set()  # statement names prepared on this connection

    def forget(self) -> None:
        """Let go of a connection inherited through fork, without touching it."""
        _INHERITED.append((self.raw, self.driver))
        self.raw = self.driver = None
        self.prepared = set()

    def close(self) -> None:
        """Close the connection if this process opened it."""
        if self.raw is None:
            return
        if self.pid != os.getpid():
            self.forget()
            return
        raw, self.raw, self.driver = self.raw, None, None
        self.prepared = set()
        with contextlib.suppress(Exception):  # it may be broken already
            raw.close()
