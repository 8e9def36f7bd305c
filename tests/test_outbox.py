"""The outbox against the real simulator: exactly-once sends, retries, leases, lane pacing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.world import make_world
from wecom_app.models import OutboxMessage
from wecom_app.outbox import Lane, enqueue
from wecom_app.registry import Registry
from wecom_app.simulator.state import Fault
from wecom_app.worker import Worker

TEXT = {"msgtype": "text", "text": {"content": "测试消息"}}


@pytest.fixture
def stack(database_url, clock):
    with make_world(database_url, clock=clock) as s:
        yield s


def paced(limit: int):
    """Tighten the appchat lane, as a deployment with a lower limit would."""

    def customize(registry: Registry) -> None:
        registry.outbox.add_lane("appchat", Lane(limit, timedelta(hours=1)))

    return customize


def _send(stack, key: str, users: list[str], **kw) -> bool:
    with stack.services.db.begin() as s:
        return enqueue(
            s,
            "message_send",
            {"msg": TEXT, "touser": users, "duplicate_check_interval": 1800},
            key,
            now=stack.clock.now(),
            **kw,
        )


def _rows(stack) -> list[OutboxMessage]:
    with stack.services.db.begin() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def _delivered(stack, userid: str) -> int:
    return sum(userid in m["delivered"] for m in stack.sim.state.messages)


def test_enqueue_is_idempotent_and_drain_sends_once(stack) -> None:
    assert _send(stack, "k1", ["zhaoming"]) is True
    assert _send(stack, "k1", ["zhaoming"]) is False
    assert stack.outbox.drain() == 1
    (row,) = _rows(stack)
    assert row.status == "done" and row.result["msgid"] and row.lease_token is None
    assert _delivered(stack, "zhaoming") == 1
    assert stack.outbox.drain() == 0


def test_retryable_error_backs_off_then_succeeds(stack) -> None:
    stack.sim.state.faults.append(Fault("/cgi-bin/message/send", "errcode", 10, errcode=-1))
    _send(stack, "k2", ["zhaoming"])
    stack.outbox.drain()
    (row,) = _rows(stack)
    assert row.status == "pending" and row.errcode == -1 and row.next_attempt_at > stack.clock.now()
    assert stack.calls("message/send") == 1  # the client sends a write once: no inline retry
    assert stack.outbox.drain() == 0  # not due yet
    stack.sim.state.faults.clear()
    stack.clock.advance(timedelta(minutes=1))
    stack.outbox.drain()
    (row,) = _rows(stack)
    assert row.status == "done" and row.attempts == 2
    assert _delivered(stack, "zhaoming") == 1


def test_final_error_recorded_with_errcode(stack) -> None:
    _send(stack, "k3", ["nobody-here"])
    stack.outbox.drain()
    (row,) = _rows(stack)
    assert row.status == "failed" and row.errcode == 81013


def test_a_text_whose_worker_died_mid_call_is_unknown_not_repeated(stack) -> None:
    _send(stack, "k4", ["zhaoming"])
    (msg,) = stack.outbox.claim()
    stack.outbox.perform(msg)  # the call lands, then the worker dies before recording it
    assert stack.outbox.claim() == []  # leased
    stack.clock.advance(stack.services.tuning.outbox_lease + timedelta(seconds=1))
    assert stack.outbox.drain() == 1
    (row,) = _rows(stack)
    assert (row.status, row.attempts, row.unanswered) == ("unknown", 2, 1)
    assert "中断" in row.last_error
    assert _delivered(stack, "zhaoming") == 1  # never sent a second time


def test_a_card_whose_worker_died_mid_call_is_repeated_and_deduplicated_by_task_id(stack) -> None:
    card = {"msgtype": "template_card", "template_card": {
        "card_type": "button_interaction", "task_id": "t-crash-1",
        "main_title": {"title": "测试"}, "button_list": [{"text": "收到", "key": "k"}]}}  # fmt: skip
    with stack.db.begin() as s:
        enqueue(s, "message_send", {"msg": card, "touser": ["zhaoming"]}, "card",
                now=stack.clock.now())  # fmt: skip
    (msg,) = stack.outbox.claim()
    stack.outbox.perform(msg)
    stack.clock.advance(stack.services.tuning.outbox_lease + timedelta(seconds=1))
    assert stack.outbox.drain() == 1
    (row,) = _rows(stack)
    assert row.status == "done" and row.result["delivered_earlier"] is True
    assert stack.calls("message/send") == 2 and _delivered(stack, "zhaoming") == 1


def test_lane_paces_instead_of_dropping(database_url, clock) -> None:
    with make_world(database_url, clock=clock, customize=paced(3)) as stack:
        _lane_paces(stack)


def _lane_paces(stack) -> None:
    chatid = stack.services.client.appchat_create("测试群", "zhaoming", ["zhaoming", "zhangyao"])
    with stack.services.db.begin() as s:
        for i in range(7):
            enqueue(
                s,
                "appchat_send",
                {"chatid": chatid, "msg": {"msgtype": "text", "text": {"content": f"第{i}条"}}},
                f"chat-{i}",
                now=stack.clock.now(),
                lane="appchat",
            )
    assert stack.outbox.drain() == 3
    assert stack.outbox.drain() == 0
    stack.clock.advance(timedelta(hours=1, seconds=1))
    assert stack.outbox.drain() == 3
    stack.clock.advance(timedelta(hours=1, seconds=1))
    assert stack.outbox.drain() == 1
    assert all(r.status == "done" for r in _rows(stack))


@pytest.mark.postgres
def test_two_workers_on_postgres_send_each_message_once(stack, database_url) -> None:
    if not database_url.startswith("postgres"):
        pytest.skip("PostgreSQL only: SQLite serialises writers anyway")
    users = ["zhaoming", "zhangyao", "luoxinlei", "huangyao"]
    for i in range(40):
        _send(stack, f"burst-{i}", [users[i % 4]], ref=("test", str(i)))
    # Distinct payloads so WeCom's duplicate check cannot hide a double send.
    with stack.services.db.begin() as s:
        for row in s.scalars(select(OutboxMessage)):
            row.payload = {
                **row.payload,
                "msg": {"msgtype": "text", "text": {"content": row.idempotency_key}},
            }
    second = stack.compose_another()
    errors: list[BaseException] = []

    def run(worker: Worker) -> None:
        try:
            while worker.outbox.drain(3):
                pass
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    workers = (stack.worker, Worker(second))
    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    second.close()
    assert not errors
    assert len(stack.sim.state.messages) == 40
    with stack.services.db.begin() as s:
        assert s.scalar(select(func.count()).where(OutboxMessage.status == "done")) == 40


def test_an_exhausted_lane_does_not_starve_other_writes(database_url, clock) -> None:
    with make_world(database_url, clock=clock, customize=paced(2)) as stack:
        _exhausted_lane(stack)


def _exhausted_lane(stack) -> None:
    chatid = stack.services.client.appchat_create("测试群", "zhaoming", ["zhaoming", "zhangyao"])
    msg = {"msgtype": "text", "text": {"content": "群消息"}}
    with stack.services.db.begin() as s:
        for i in range(250):  # a paced backlog, queued first, longer than one claim looks
            enqueue(
                s,
                "appchat_send",
                {"chatid": chatid, "msg": msg},
                f"chat-{i}",
                now=stack.clock.now(),
                lane="appchat",
            )
    stack.clock.advance(1)
    _send(stack, "after-the-backlog", ["zhaoming"])
    while stack.outbox.drain():
        pass
    with stack.services.db.begin() as s:
        sent = s.scalar(
            select(OutboxMessage.status).where(OutboxMessage.idempotency_key == "after-the-backlog")
        )
        paced = s.scalar(
            select(func.count()).where(
                OutboxMessage.status == "done", OutboxMessage.lane == "appchat"
            )
        )
    assert sent == "done" and paced == 2


def test_the_appchat_lane_is_paced_for_wecoms_documented_hourly_limit() -> None:
    """WeCom allows 1000 group changes per hour per corp (older docs: 100); the lane: 950."""
    from tests.conftest import base_settings
    from wecom_app.compose import compose
    from wecom_app.db import Database
    from wecom_app.settings import load_settings

    registry = compose(load_settings(**base_settings()), db=Database("sqlite:///:memory:"))
    assert registry.registry.outbox.lanes["appchat"] == Lane(950, timedelta(hours=1))
    registry.close()


def test_a_burst_of_group_changes_is_paced_under_wecoms_limit_not_dropped(
    database_url, clock
) -> None:
    """A deployment whose WeCom enforces the older 100 an hour, paced at 95: 300 changes in
    four windows, none refused, none dropped."""
    with make_world(database_url, clock=clock, customize=paced(95)) as stack:
        stack.sim.state.config.limits.appchat_changes_per_hour = 100
        _burst(stack)


def _burst(stack) -> None:
    chats = [
        stack.services.client.appchat_create(f"项目群{g}", "zhaoming", ["zhaoming", "zhangyao"])
        for g in range(10)
    ]
    stack.clock.advance(timedelta(hours=1, seconds=1))  # the creates' hour is over
    with stack.services.db.begin() as s:
        for i in range(300):
            chatid = chats[i % 10]
            enqueue(
                s,
                "appchat_update",
                {"chatid": chatid, "name": f"项目群-{i}"},
                f"burst-{i}",
                now=stack.clock.now(),
                lane="appchat",
            )
    hours = 0
    while True:
        while stack.outbox.drain(200):
            pass
        with stack.services.db.begin() as s:
            left = s.scalar(select(func.count()).where(OutboxMessage.status == "pending"))
        if not left:
            break
        hours += 1
        assert hours < 10, "the backlog is not draining"
        stack.clock.advance(timedelta(hours=1, seconds=1))
    with stack.services.db.begin() as s:
        assert s.scalar(select(func.count()).where(OutboxMessage.status == "done")) == 300
        assert s.scalar(select(func.count()).where(OutboxMessage.errcode.is_not(None))) == 0
    assert hours == 3  # 95 an hour: four windows, never a 45009 from WeCom
    changes = sum(len(stack.sim.state.chats[c]["changes"]) for c in chats)
    assert changes == 300
