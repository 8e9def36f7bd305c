"""Database sessions: single-statement writes, and pooled connections checked after idling."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

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


def test_execute_one_is_durable_when_it_returns(database_url):
    from callbacks.inbox import _INSERT_NEW

    database = Database(database_url)
    other = Database(database_url)
    try:
        stmt = _INSERT_NEW[database.engine.dialect.name]
        assert database.execute_one(stmt, _row("m1")) is not None
        assert database.execute_one(stmt, _row("m1")) is None
        with other.begin() as session:
            assert session.scalar(select(func.count()).select_from(InboxEvent)) == 1
            row = session.scalars(select(InboxEvent)).one()
        assert row.received_at == FakeClock().now()  # column types still convert values
    finally:
        database.dispose()
        other.dispose()


def test_execute_one_reports_database_errors_as_sqlalchemy_errors(database_url):
    from sqlalchemy.exc import DBAPIError

    from callbacks.inbox import _INSERT_NEW

    database = Database(database_url)
    try:
        stmt = _INSERT_NEW[database.engine.dialect.name]
        with pytest.raises(DBAPIError):
            database.execute_one(stmt, {**_row("m2"), "channel": None})  # NOT NULL
    finally:
        database.dispose()


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
