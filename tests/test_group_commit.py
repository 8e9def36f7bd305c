"""Group commit: concurrent inserts share statements, and each caller learns its own fate."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from wecom_app.clock import FakeClock
from wecom_app.db import Database
from wecom_app.group_commit import GroupInsert
from wecom_app.models import InboxEvent


@pytest.fixture
def database(database_url):
    database = Database(database_url)
    yield database
    database.dispose()


def row(key: str, **extra: object) -> dict[str, object]:
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
        **extra,
    }


def count(db: Database) -> int:
    with db.begin() as s:
        return s.scalar(select(func.count()).select_from(InboxEvent)) or 0


def test_concurrent_callers_each_get_their_outcome(database) -> None:
    group = GroupInsert(database, InboxEvent.__table__, ("channel", "dedupe_key"))
    outcomes: dict[str, list[bool]] = {}
    lock = threading.Lock()

    def work(worker: int) -> None:
        for i in range(60):
            key = f"k{i % 40}"  # 40 keys, many written by several threads at once
            stored = group.insert(row(key))
            with lock:
                outcomes.setdefault(key, []).append(stored)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert count(database) == 40
    assert all(v.count(True) == 1 for v in outcomes.values())  # exactly one caller stored each
    assert sum(len(v) for v in outcomes.values()) == 8 * 60


def test_one_batch_with_the_same_key_twice_stores_it_once(database) -> None:
    group = GroupInsert(database, InboxEvent.__table__, ("channel", "dedupe_key"))
    assert group._write([row("same"), row("same"), row("other")]) == {
        ("app", "same"),
        ("app", "other"),
    }
    assert count(database) == 2


def test_a_failed_batch_fails_every_caller_and_the_next_batch_works(database) -> None:
    group = GroupInsert(database, InboxEvent.__table__, ("channel", "dedupe_key"))
    with pytest.raises(DBAPIError):
        group.insert(row("bad", channel=None))  # NOT NULL
    assert group.insert(row("good")) is True
    assert count(database) == 1
