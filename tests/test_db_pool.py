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


def test_one_statement_is_durable_when_it_returns(database_url):
    from callbacks.inbox import _INSERT_NEW

    database = Database(database_url)
    other = Database(database_url)
    try:
        with database.one_statement() as session:
            stmt = _INSERT_NEW[session.get_bind().dialect.name]
            assert session.connection().execute(stmt, _row("m1")).first() is not None
            assert session.connection().execute(stmt, _row("m1")).first() is None
        with other.begin() as session:
            assert session.scalar(select(func.count()).select_from(InboxEvent)) == 1
    finally:
        database.dispose()
        other.dispose()


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
