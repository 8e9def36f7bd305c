"""Database connections: dedicated ones for hot statements, pooled ones pinged after idling."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from tests.helpers import inbox_values
from wecom_app.clock import FakeClock
from wecom_app.db import Database
from wecom_app.models import InboxEvent


def _insert_new(database: Database) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id, in the database's dialect."""
    dialect = postgresql if database.is_postgres else sqlite
    return (
        dialect.insert(InboxEvent.__table__)
        .on_conflict_do_nothing(index_elements=["channel", "dedupe_key"])
        .returning(InboxEvent.__table__.c.id)
    )


def test_a_dedicated_connection_commits_before_it_returns(database_url):
    database = Database(database_url)
    other = Database(database_url)
    try:
        conn = database.dedicated()
        stmt = _insert_new(database)
        assert len(conn.execute(stmt, inbox_values("m1"))) == 1
        assert conn.execute(stmt, inbox_values("m1")) == []  # the key exists: nothing returned
        with other.begin() as session:
            assert session.scalar(select(func.count()).select_from(InboxEvent)) == 1
            row = session.scalars(select(InboxEvent)).one()
        assert row.received_at == FakeClock().now()  # column types still convert values
    finally:
        database.dispose()
        other.dispose()


def test_a_dedicated_connection_reports_database_errors_as_sqlalchemy_errors(database_url):
    database = Database(database_url)
    try:
        conn = database.dedicated()
        with pytest.raises(DBAPIError):
            conn.execute(_insert_new(database), {**inbox_values("m2"), "channel": None})  # NOT NULL
        assert (
            len(conn.execute(_insert_new(database), inbox_values("m3"))) == 1
        )  # and goes on working
        with pytest.raises((DBAPIError, ValueError)):  # a naive time is refused, not guessed at
            conn.execute(
                _insert_new(database), {**inbox_values("m4"), "received_at": datetime(2026, 1, 1)}
            )
    finally:
        database.dispose()


@pytest.fixture
def pg_database(database_url):
    """A Database on PostgreSQL: server sessions, sockets and prepared statements are its matter."""
    if not database_url.startswith("postgres"):
        pytest.skip("server connections and prepared statements are a PostgreSQL matter")
    database = Database(database_url)
    yield database
    database.dispose()


def _backend(conn: Any) -> str:
    """The PostgreSQL backend process serving a dedicated connection."""
    return str(conn.execute(text("SELECT pg_backend_pid()"), {})[0][0])


@pytest.mark.postgres
def test_a_dedicated_connection_that_broke_is_replaced(pg_database):
    conn = pg_database.dedicated()
    pid = _backend(conn)
    with pg_database.engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": int(pid)})
        other.commit()
    with pytest.raises(DBAPIError):
        _backend(conn)  # this request fails: WeCom retries it
    assert _backend(conn) != pid


@pytest.mark.postgres
def test_dispose_closes_dedicated_connections(pg_database):
    count_query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dedicated-test'"
    )
    conn = pg_database.dedicated()  # referenced: one nobody holds is closed when collected
    conn.execute(text("SET application_name = 'dedicated-test'"), {})
    with pg_database.engine.connect() as c:
        assert c.execute(count_query).scalar() == 1
    pg_database.dispose()
    with pg_database.engine.connect() as c:  # the pool reopens; the dedicated one is gone
        assert c.execute(count_query).scalar() == 0


@pytest.mark.postgres
def test_a_dead_idle_connection_is_replaced(database_url):
    if not database_url.startswith("postgres"):
        pytest.skip("pooled server connections are a PostgreSQL matter")
    database = Database(database_url, idle_ping=0.0)
    killer = Database(database_url)
    try:
        with database.engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with killer.engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            conn.commit()
        with database.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        database.dispose()
        killer.dispose()


def test_the_sqlite_inbox_connection_syncs_every_commit(sqlite_url):
    database = Database(sqlite_url)
    try:
        # FULL (2): a commit the caller answered WeCom for survives a power cut, not only a
        # crash; pooled connections keep NORMAL (1).
        assert database.dedicated().execute(text("PRAGMA synchronous"), {}) == [(2,)]
        with database.engine.connect() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1
    finally:
        database.dispose()


@pytest.mark.postgres
def test_an_idle_dedicated_connection_is_replaced_before_use(pg_database):
    conn = pg_database.dedicated()
    first = _backend(conn)
    assert _backend(conn) == first  # in steady use it is kept
    pg_database.idle_ping = -1.0  # from now on everything counts as idle
    assert _backend(conn) != first


@pytest.mark.postgres
def test_after_a_fork_the_child_opens_its_own_dedicated_connection(pg_database):
    import os

    conn = pg_database.dedicated()
    parent_backend = _backend(conn)
    child = os.fork()
    if child == 0:  # the child: a backend of its own, the parent's left untouched
        try:
            os._exit(0 if _backend(conn) != parent_backend else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _backend(conn) == parent_backend  # still the parent's, and alive


@pytest.mark.postgres
def test_each_statement_runs_its_own_prepared_sql(pg_database):
    conn = pg_database.dedicated()
    # Every statement gets its own server-side name: none runs another's SQL.
    for i in range(50):
        assert conn.execute(text(f"SELECT {i}"), {}) == [(str(i),)]
    assert conn.execute(text("SELECT 'again'"), {}) == [("again",)]


@pytest.mark.postgres
def test_a_dedicated_connection_nobody_holds_is_closed(pg_database):
    import gc

    count_query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dropped'")
    conn = pg_database.dedicated()
    conn.execute(text("SET application_name = 'dropped'"), {})
    del conn
    gc.collect()
    with pg_database.engine.connect() as c:
        assert c.execute(count_query).scalar() == 0
