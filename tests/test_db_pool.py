"""Database connections: dedicated ones for hot statements, pooled ones pinged after idling."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from wecom_app import db as db_module
from wecom_app.clock import FakeClock
from wecom_app.db import Database
from wecom_app.models import InboxEvent


def _row(key: str) -> dict[str, object]:
    return {
        "channel": "app",
        "dedupe_key": key,
        "msg_type": "text",
        "from_user": "zhangsan",
        "create_time": 1700000000,
        "raw_xml": "<xml/>",
        "received_at": FakeClock().now(),
        "status": "pending",
        "attempts": 0,
    }


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
        assert len(conn.execute(stmt, _row("m1"))) == 1
        assert conn.execute(stmt, _row("m1")) == []  # the key exists: nothing returned
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
            conn.execute(_insert_new(database), {**_row("m2"), "channel": None})  # NOT NULL
        assert len(conn.execute(_insert_new(database), _row("m3"))) == 1  # and goes on working
        with pytest.raises((DBAPIError, ValueError)):  # a naive time is refused, not guessed at
            conn.execute(_insert_new(database), {**_row("m4"), "received_at": datetime(2026, 1, 1)})
    finally:
        database.dispose()


@pytest.mark.postgres
def test_a_dedicated_connection_that_broke_is_replaced(database_url):
    if not database_url.startswith("postgres"):
        pytest.skip("a server closing connections is a PostgreSQL matter")
    database = Database(database_url)
    try:
        conn = database.dedicated()
        pid_query = text("SELECT pg_backend_pid()")
        (pid,) = conn.execute(pid_query, {})[0]
        with database.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            other.commit()
        with pytest.raises(DBAPIError):
            conn.execute(pid_query, {})  # this request fails: WeCom retries it
        (new_pid,) = conn.execute(pid_query, {})[0]
        assert new_pid != pid
    finally:
        database.dispose()


@pytest.mark.postgres
def test_dispose_closes_dedicated_connections(database_url):
    if not database_url.startswith("postgres"):
        pytest.skip("server-side sessions are a PostgreSQL matter")
    database = Database(database_url)
    observer = Database(database_url)
    count_query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dedicated-test'"
    )
    try:
        conn = database.dedicated()
        conn.execute(text("SET application_name = 'dedicated-test'"), {})
        with observer.engine.connect() as c:
            assert c.execute(count_query).scalar() >= 1
        database.dispose()
        with observer.engine.connect() as c:
            assert c.execute(count_query).scalar() == 0
    finally:
        database.dispose()
        observer.dispose()


@pytest.mark.postgres
def test_a_dead_idle_connection_is_replaced(database_url, monkeypatch):
    if not database_url.startswith("postgres"):
        pytest.skip("pooled server connections are a PostgreSQL matter")
    monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 0.0)
    database = Database(database_url)
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
def test_an_idle_dedicated_connection_is_replaced_before_use(database_url, monkeypatch):
    if not database_url.startswith("postgres"):
        pytest.skip("server connections dropped while idle are a PostgreSQL matter")
    database = Database(database_url)
    try:
        conn = database.dedicated()
        pid_query = text("SELECT pg_backend_pid()")
        first = conn.execute(pid_query, {})
        assert conn.execute(pid_query, {}) == first  # in steady use it is kept
        monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", -1.0)  # everything counts as idle
        assert conn.execute(pid_query, {}) != first
    finally:
        database.dispose()


@pytest.mark.postgres
def test_after_a_fork_the_child_opens_its_own_dedicated_connection(database_url):
    if not database_url.startswith("postgres"):
        pytest.skip("a shared server socket is a PostgreSQL matter")
    import os

    database = Database(database_url)
    try:
        conn = database.dedicated()
        pid_query = text("SELECT pg_backend_pid()")
        (parent_backend,) = conn.execute(pid_query, {})[0]
        child = os.fork()
        if child == 0:  # the child: a backend of its own, the parent's left untouched
            try:
                (child_backend,) = conn.execute(pid_query, {})[0]
                os._exit(0 if child_backend != parent_backend else 1)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert conn.execute(pid_query, {}) == [(parent_backend,)]  # still the parent's, alive
    finally:
        database.dispose()


@pytest.mark.postgres
def test_each_statement_runs_its_own_prepared_sql(database_url):
    if not database_url.startswith("postgres"):
        pytest.skip("server-side prepared statements are a PostgreSQL matter")
    database = Database(database_url)
    try:
        conn = database.dedicated()
        # Every statement gets its own server-side name: none runs another's SQL.
        for i in range(50):
            assert conn.execute(text(f"SELECT {i}"), {}) == [(str(i),)]
        assert conn.execute(text("SELECT 'again'"), {}) == [("again",)]
    finally:
        database.dispose()
