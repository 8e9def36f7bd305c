"""Group commit: concurrent inserts share statements, and each caller learns its own fate."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from tests.helpers import inbox_values
from wecom_app.db import Database
from wecom_app.group_commit import GroupInsert
from wecom_app.models import InboxEvent


@pytest.fixture
def database(database_url):
    database = Database(database_url)
    yield database
    database.dispose()


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
            stored = group.insert(inbox_values(key))
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
    assert group._write([inbox_values("same"), inbox_values("same"), inbox_values("other")]) == {
        ("app", "same"),
        ("app", "other"),
    }
    assert count(database) == 2


def test_a_failed_batch_fails_every_caller_and_the_next_batch_works(database) -> None:
    group = GroupInsert(database, InboxEvent.__table__, ("channel", "dedupe_key"))
    with pytest.raises(DBAPIError):
        group.insert(inbox_values("bad", channel=None))  # NOT NULL
    assert group.insert(inbox_values("good")) is True
    assert count(database) == 1


def test_no_write_access_fails_the_queued_callers_and_the_next_batch_works(
    database, monkeypatch
) -> None:
    from contextlib import contextmanager

    from sqlalchemy.exc import TimeoutError as PoolTimeout

    group = GroupInsert(database, InboxEvent.__table__, ("channel", "dedupe_key"))
    real = database.writing

    @contextmanager
    def stuck(timeout=None):
        raise PoolTimeout("no write access within 2 s")
        yield

    monkeypatch.setattr(database, "writing", stuck)
    with pytest.raises(PoolTimeout):
        group.insert(inbox_values("blocked"))
    monkeypatch.setattr(database, "writing", real)
    assert group.insert(inbox_values("blocked")) is True  # nothing was left half-led
    assert count(database) == 1


def test_announced_rows_share_a_commit_and_a_withdrawn_one_is_not_waited_for(database) -> None:
    group = GroupInsert(database, InboxEvent.__table__, ("channel", "dedupe_key"))
    sizes: list[int] = []
    write = group._write

    def counting_write(rows):
        sizes.append(len(rows))
        return write(rows)

    group._write = counting_write  # type: ignore[method-assign]
    with group.expecting() as first, group.expecting() as second:
        announced = threading.Event()
        results: list[bool] = []

        def insert_soon() -> None:
            announced.wait()
            results.append(group.insert(inbox_values("second"), second))

        helper = threading.Thread(target=insert_soon)
        helper.start()
        announced.set()
        assert group.insert(inbox_values("first"), first) is True  # waits for "second" to join
        helper.join()
    assert results == [True] and sizes == [2]

    with group.expecting():  # announced, then left without inserting
        pass
    assert group._expected == 0  # withdrawn: no leader lingers for it
    assert group.insert(inbox_values("third")) is True
    assert sizes == [2, 1] and count(database) == 3


def test_a_slot_handed_the_lead_before_it_starts_waiting_still_waits_its_turn(database) -> None:
    """The handoff may happen between a caller queueing its row and starting to wait."""
    import threading

    queued, released = threading.Event(), threading.Event()

    class Racing(GroupInsert):
        def _wait_turn(self, slot, leading):  # the second caller pauses right after queueing
            if not leading:
                queued.set()
                assert released.wait(10)
            super()._wait_turn(slot, leading)

    group = Racing(database, InboxEvent.__table__, ("channel", "dedupe_key"))
    write = group._write

    def slow_write(rows):
        assert queued.wait(10)  # the second row is queued behind this batch
        return write(rows)

    group._write = slow_write
    first = threading.Thread(target=group.insert, args=(inbox_values("first"),))
    first.start()
    outcome: list[object] = []

    def second() -> None:
        try:
            outcome.append(group.insert(inbox_values("second")))
        except BaseException as exc:  # pragma: no cover - the bug this guards against
            outcome.append(exc)

    waiter = threading.Thread(target=second)
    waiter.start()
    first.join(10)  # the first leader wrote, handed the lead over and released the slot
    group._write = write
    released.set()
    waiter.join(10)
    assert outcome == [True] and count(database) == 2
