"""Callbacks when the database fails: a 503 within WeCom's 5 s, one log line, nothing lost (the
disk spool), and `/healthz` answering within a second whatever the database does."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from tests.conftest import base_settings
from tests.helpers import post_event, text_xml
from tests.tcp_gate import Gate
from tests.world import until
from wecom_app import create_app
from wecom_app.app import composition_of
from wecom_app.clock import FakeClock
from wecom_app.compose import compose
from wecom_app.db import normalise_url
from wecom_app.models import InboxEvent
from wecom_app.settings import load_settings

PATH = "/wecom/callback"


def make_app(database_url: str, spool: Path) -> Any:
    settings = load_settings(**base_settings(database_url=database_url, spool_dir=str(spool)))
    app = create_app(composition=compose(settings, clock=FakeClock()))
    app.config["TESTING"] = True
    return app


def inbox_rows(database_url: str) -> int:
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(InboxEvent)).scalar() or 0)
    finally:
        engine.dispose()


def post_texts(app: Any, crypto: Any, first: int, count: int) -> list[tuple[int, float]]:
    """POST `count` distinct texts; return (status, seconds) for each."""
    client, answers = app.test_client(), []
    for msg_id in range(first, first + count):
        started = time.monotonic()
        resp = post_event(client, PATH, crypto, text_xml("zhangsan", "收到", msg_id))
        answers.append((resp.status_code, time.monotonic() - started))
        assert b"Traceback" not in resp.data
    return answers


def healthz(app: Any) -> tuple[int, float, dict[str, Any]]:
    started = time.monotonic()
    resp = app.test_client().get("/healthz")
    return resp.status_code, time.monotonic() - started, resp.get_json()


@pytest.fixture
def gated(database_url: str) -> Iterator[tuple[str, Gate]]:
    """The PostgreSQL test database behind a gate that can refuse connections."""
    if not database_url.startswith("postgresql"):
        pytest.skip("refusing connections is a database server's matter")
    url = make_url(normalise_url(database_url))
    gate = Gate(url.host or "127.0.0.1", url.port or 5432)
    try:
        yield url.set(port=gate.port).render_as_string(hide_password=False), gate
    finally:
        gate.close()


@pytest.mark.postgres
def test_a_database_that_refuses_connections_costs_no_callback(
    gated: tuple[str, Gate], app_crypto: Any, tmp_path: Path, caplog: Any
) -> None:
    url, gate = gated
    app = make_app(url, tmp_path / "spool")
    try:
        assert post_texts(app, app_crypto, 1, 1)[0][0] == 200
        gate.close()
        caplog.set_level(logging.WARNING, logger="callbacks")
        answers = post_texts(app, app_crypto, 100, 10)
        assert {status for status, _ in answers} == {503}
        assert max(seconds for _, seconds in answers) < 5
        lines = [r for r in caplog.records if "inbox unavailable" in r.getMessage()]
        assert len(lines) == 1  # one line, not a traceback per request
        assert len(list((tmp_path / "spool").glob("*.event.json"))) == 10
        status, seconds, body = healthz(app)
        assert status == 503 and seconds < 1.5 and body["spooled_callbacks"] == 10
        post_texts(app, app_crypto, 100, 3)  # WeCom's retries of three of them: same files
        assert len(list((tmp_path / "spool").glob("*.event.json"))) == 10
        gate.open()
        until(lambda: inbox_rows(url) == 11, timeout=30)  # moved in by the web process
        assert post_texts(app, app_crypto, 100, 1)[0][0] == 200  # a late retry: a duplicate
        assert inbox_rows(url) == 11
        until(lambda: not list((tmp_path / "spool").glob("*.event.json")))
    finally:
        composition_of(app).close()


def test_a_locked_inbox_answers_503_in_time_and_keeps_the_event(
    database_url: str, app_crypto: Any, tmp_path: Path
) -> None:
    app = make_app(database_url, tmp_path / "spool")
    release, locked = _lock_the_inbox(database_url)
    try:
        locked.wait(10)
        answers = post_texts(app, app_crypto, 200, 3)
        assert {status for status, _ in answers} == {503}
        assert max(seconds for _, seconds in answers) < 5
        status, seconds, _ = healthz(app)
        assert seconds < 1.5 and status == 200  # the database answers; only a table is locked
    finally:
        release.set()
    try:
        until(lambda: inbox_rows(database_url) == 3, timeout=30)
    finally:
        composition_of(app).close()


def _lock_the_inbox(database_url: str) -> tuple[threading.Event, threading.Event]:
    """Hold the inbox locked in another connection until released."""
    release, locked = threading.Event(), threading.Event()
    url = make_url(normalise_url(database_url))

    def hold() -> None:
        if url.drivername.startswith("sqlite"):
            conn = sqlite3.connect(url.database or "", isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")  # the whole file, as a stuck writer would
            locked.set()
            release.wait(30)
            conn.execute("ROLLBACK")
            conn.close()
            return
        engine = create_engine(url)
        with engine.connect() as conn, conn.begin():
            conn.execute(text("LOCK TABLE inbox_events IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            release.wait(30)
        engine.dispose()

    threading.Thread(target=hold, daemon=True).start()
    return release, locked


def test_healthz_answers_within_a_second_when_the_database_hangs(tmp_path: Path) -> None:
    """A database that takes the connection and never answers (frozen, packets swallowed)."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts into the backlog, never speaks
    port = silent.getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{port}/test"
    app = make_app(url, tmp_path / "spool")
    try:
        for _ in range(3):  # a hanging check does not pile up the next ones behind it
            status, seconds, body = healthz(app)
            assert status == 503 and seconds < 1.5 and body["database"] == "down"
    finally:
        composition_of(app).close()
        silent.close()
