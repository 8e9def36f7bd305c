"""Backups and restores on SQLite and PostgreSQL, through the CLI as IT runs them; and the
retention of processed callbacks (the ledger kept)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, inspect, select, text

from tests.test_deployment import SETTINGS
from tests.world import World, make_world
from wecom_app.backup import purge
from wecom_app.cli import main
from wecom_app.db import Database
from wecom_app.jobs import JobContext
from wecom_app.models import Feedback, InboxEvent, InboxStatus
from wecom_app.outbox import enqueue


def cli(url: str, *args: str, code: int = 0) -> str:
    env = {**os.environ, **SETTINGS, "DATABASE_URL": url}
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exit_code == code, result.output
    return (
        result.stdout if result.exit_code == 0 else result.output
    )  # JSON on stdout; logs on stderr


def feedback(url: str) -> list[str]:
    database = Database(url)
    try:
        with database.read() as session:
            return sorted(session.scalars(select(Feedback.text)))
    finally:
        database.dispose()


def test_a_backup_restores_what_it_held(database_url: str, tmp_path: Path) -> None:
    database = Database(database_url)
    try:
        with database.begin() as session:
            session.add_all([Feedback(text="食堂排队太久", day="2026-03-30"),
                             Feedback(text="会议太多", day="2026-03-31")])  # fmt: skip
    finally:
        database.dispose()
    database = Database(database_url)
    try:
        with database.begin() as session:  # a write the worker had not sent yet
            enqueue(session, "message_send", {"msg": {}, "touser": ["u"]}, "pending-1",
                    now=datetime.now(UTC))  # fmt: skip
    finally:
        database.dispose()
    target = tmp_path / "backups" / "wecom-app.dump"
    assert "已备份" in cli(database_url, "db", "backup", str(target))
    assert target.stat().st_size > 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # personal data: the owner's only
    assert "已存在" in cli(database_url, "db", "backup", str(target), code=1)  # never overwritten

    database = Database(database_url)
    try:
        with database.begin() as session:  # what happens after the backup is lost on restore
            session.query(Feedback).delete()
            session.add(Feedback(text="备份之后的反馈", day="2026-04-01"))
            session.execute(text("CREATE TABLE later_release (id integer)"))  # a newer table
    finally:
        database.dispose()
    refused = cli(database_url, "db", "restore", str(target), code=1)
    assert "--replace" in refused and feedback(database_url) == ["备份之后的反馈"]
    restored = cli(database_url, "db", "restore", str(target), "--replace")
    assert "已从" in restored and "1 条尚未发出的企业微信写入" in restored
    assert feedback(database_url) == ["会议太多", "食堂排队太久"]
    database = Database(database_url)
    try:
        with database.read() as session:
            assert "later_release" not in inspect(session.connection()).get_table_names()
    finally:
        database.dispose()
    assert "schema" not in cli(database_url, "db", "restore", str(target), "--replace")


def test_a_restore_into_an_empty_database_works_and_bad_files_are_refused(
    tmp_path: Path, sqlite_url: str
) -> None:
    target = tmp_path / "b.db"
    cli(sqlite_url, "db", "backup", str(target))
    fresh = f"sqlite:///{tmp_path / 'new.db'}"
    cli(fresh, "db", "restore", str(target))
    assert "检查通过" in cli(fresh, "serve", "--check")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert "不是 SQLite 备份" in cli(other, "db", "restore", str(junk), code=1)


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with make_world(database_url, serve=False) as running:
        yield running


def test_processed_callbacks_older_than_the_retention_are_purged(world: World) -> None:
    now = world.clock.now()
    rows = [
        (InboxStatus.DONE, now - timedelta(days=31)),
        (InboxStatus.UNHANDLED, now - timedelta(days=40)),
        (InboxStatus.DONE, now - timedelta(days=29)),
        (InboxStatus.FAILED, now - timedelta(days=90)),  # kept: someone must look at it
        (InboxStatus.PENDING, None),
    ]
    with world.db.begin() as session:
        for n, (status, processed) in enumerate(rows):
            session.add(InboxEvent(channel="app", dedupe_key=f"k{n}", msg_type="text", event=None,
                                   change_type=None, from_user="u", subject=None, agent_id=None,
                                   create_time=n, msg_id=None, raw_xml="<xml/>",
                                   received_at=now - timedelta(days=91), status=status,
                                   processed_at=processed))  # fmt: skip
    summary = purge(JobContext(world.services), keep=timedelta(days=30))
    assert summary is not None and summary["purged"] == 2
    with world.db.read() as session:
        left = sorted(session.scalars(select(InboxEvent.dedupe_key)))
        assert left == ["k2", "k3", "k4"]
    assert purge(JobContext(world.services), keep=None) == {"purged": 0, "kept": "forever"}
    assert "inbox.purge" in world.registry.jobs.names()
    with world.db.read() as session:
        assert session.scalar(select(func.count()).select_from(InboxEvent)) == 3
