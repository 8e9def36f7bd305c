"""The outbox under the faults production sees: slow WeCom and two workers, answers that never
come, result handlers that raise, frequency limits, a rotated secret, 86215 and 86216."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from tests.world import World, make_world, until
from wecom_app.clock import SystemClock
from wecom_app.domain_events import EmployeeDeparted
from wecom_app.groups import service
from wecom_app.groups.rules import GroupRules
from wecom_app.groups.service import GroupSpec
from wecom_app.models import GroupAudit, Hold, ManagedGroup, OutboxMessage
from wecom_app.outbox import MAX_ATTEMPTS, enqueue
from wecom_app.registry import Registry
from wecom_app.services import Tuning
from wecom_app.wecom.session import BREAKER_SECONDS
from wecom_app.worker import Worker

TEXT = {"msgtype": "text", "text": {"content": "群公告"}}


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with make_world(database_url, mirror=True) as w:
        yield w


def chat_with_members(world: World, chatid: str = "faults01") -> str:
    """A group chat the app created (set up straight through the client)."""
    world.services.client.appchat_create(
        "测试群", "zhaoming", ["zhaoming", "zhangyao", "luoxinlei"], chatid
    )
    return chatid


def queue_posts(world: World, chatid: str, count: int, prefix: str = "post") -> None:
    with world.db.begin() as s:
        for i in range(count):
            msg = {"msgtype": "text", "text": {"content": f"{prefix} {i}"}}
            enqueue(s, "appchat_send", {"chatid": chatid, "msg": msg}, f"{prefix}-{i}",
                    now=world.clock.now(), lane="appchat")  # fmt: skip


def rows(world: World) -> list[OutboxMessage]:
    with world.db.read() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def posts(world: World, chatid: str) -> list[str]:
    return [m["content"]["content"] for m in world.chat(chatid)["messages"]]


def test_two_workers_and_a_slow_wecom_send_each_group_post_once(database_url: str) -> None:
    """Leases cover only writes in flight and are renewed: a second worker never re-sends.

    With 12 posts, WeCom taking 0.4 s a call and a 1 s lease, a worker that leased a batch up
    front would see its lease run out under the rows still waiting, and the other worker would
    send them again.
    """
    tuning = Tuning(strict_transactions=True, outbox_lease=timedelta(seconds=1),
                    lease_renew_seconds=0.2, idle_seconds=0.02, outbox_concurrency=2)  # fmt: skip
    with make_world(database_url, clock=SystemClock(), tuning=tuning) as world:
        chatid = chat_with_members(world)
        queue_posts(world, chatid, 12)
        world.fault("appchat/send", "delay", delay=0.4, count=100)
        second = world.compose_another()
        workers = [Worker(world.composition), Worker(second)]
        threads = [threading.Thread(target=w.run) for w in workers]
        for t in threads:
            t.start()
        try:
            until(lambda: all(r.status == "done" for r in rows(world)), timeout=30)
        finally:
            for w in workers:
                w.stop()
            for t in threads:
                t.join(15)
            second.close()
        sent = posts(world, chatid)
        assert sorted(sent) == sorted(f"post {i}" for i in range(12))  # 12 posts, none twice
        assert world.calls("appchat/send") == 12


def test_an_answer_that_never_comes_is_recorded_unknown_not_repeated(database_url: str) -> None:
    with make_world(database_url, mirror=True, client_options={"timeout": 0.3}) as world:
        chatid = chat_with_members(world)
        queue_posts(world, chatid, 1)
        world.fault("appchat/send", "delay", delay=0.8)
        world.drain()
        (row,) = rows(world)
        assert (row.status, row.attempts, row.unanswered) == ("unknown", 1, 1)
        assert "ReadTimeout" in row.last_error and row.payload["msg"] == {
            "msgtype": "text", "text": {"content": "post 0"}}  # fmt: skip
        until(lambda: posts(world, chatid))  # WeCom did act on it, late
        world.clock.advance(timedelta(hours=1))
        assert world.drain() == 0
        assert posts(world, chatid) == ["post 0"] and world.calls("appchat/send") == 1
        listed = CliRunner().invoke(_cli(), ["outbox", "list", "--status", "unknown"],
                                    env=world.worker_env())  # fmt: skip
        assert listed.exit_code == 0, listed.output
        assert "appchat_send" in listed.output and "post 0" in listed.output


def test_a_result_handler_that_raises_fails_the_row_once(database_url: str) -> None:
    def explode(session: Any, msg: OutboxMessage, outcome: Any) -> None:
        raise RuntimeError("handler bug")

    def customize(registry: Registry) -> None:
        registry.outbox.on_result("appchat_send", explode)

    with make_world(database_url, mirror=True, customize=customize) as world:
        chatid = chat_with_members(world)
        queue_posts(world, chatid, 1)
        for _ in range(MAX_ATTEMPTS + 2):
            world.drain()
            world.clock.advance(timedelta(minutes=20))
        (row,) = rows(world)
        assert (row.status, row.attempts) == ("failed", 1)
        assert "结果处理失败" in row.last_error and "handler bug" in row.last_error
        assert world.calls("appchat/send") == 1 and len(posts(world, chatid)) == 1


def test_a_frequency_limit_holds_the_lane_for_its_window_and_loses_nothing(world: World) -> None:
    """WeCom enforces an older 100-an-hour rule here (shrunk to 2) while we pace for 1000."""
    chatid = chat_with_members(world)
    world.clock.advance(timedelta(hours=1, seconds=1))  # the create's hour is over
    world.sim.state.config.limits.appchat_changes_per_hour = 2
    with world.db.begin() as s:
        for i in range(5):
            enqueue(s, "appchat_update", {"chatid": chatid, "name": f"测试群{i}"}, f"rename-{i}",
                    now=world.clock.now(), lane="appchat")  # fmt: skip
    assert world.drain() == 3  # two accepted, the third answered 45009
    calls = world.calls("appchat/update")
    hold = _hold(world, "lane:appchat")
    assert hold.errcode == 45009 and hold.until == world.clock.now() + timedelta(minutes=1)
    world.clock.advance(30)
    assert world.drain() == 0 and world.calls("appchat/update") == calls  # nobody knocks
    world.clock.advance(31)
    assert world.drain() == 1  # one try after the minute: still blocked, so the hour one
    hold = _hold(world, "lane:appchat")
    assert hold.strikes == 2 and hold.until >= hold.since + timedelta(hours=1)
    assert all(r.status in ("done", "pending") for r in rows(world))
    assert max(r.attempts for r in rows(world)) == 1  # waiting is not an attempt
    for _ in range(4):
        world.clock.advance(timedelta(hours=1, seconds=1))
        world.drain()
    assert [r.status for r in rows(world)] == ["done"] * 5
    assert world.chat(chatid)["name"] == "测试群4"
    with world.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Hold)) == 0  # cleared by a success


def test_a_rotated_secret_holds_writes_without_a_gettoken_storm(world: World) -> None:
    with world.db.begin() as s:
        for i in range(10):
            enqueue(s, "message_send", {"msg": TEXT, "touser": ["zhaoming"]}, f"m{i}",
                    now=world.clock.now())  # fmt: skip
    world.sim_post("/_sim/config", {"app_secret": "reset-in-the-admin-console"})
    tokens_before = world.calls("gettoken")
    assert world.drain() == 1  # the first write learns of it; the other nine wait
    assert world.calls("gettoken") - tokens_before == 1
    assert all(r.status == "pending" and r.attempts == 0 for r in rows(world))
    health = world.app.test_client().get("/healthz")
    assert health.status_code == 200  # still taking callbacks
    body = health.get_json()
    assert body["status"] == "degraded"
    assert "WECOM_APP_SECRET" in body["credentials"]["app"]["reason"]
    for _ in range(5):  # a worker looping meanwhile asks nothing of WeCom
        world.drain()
    assert world.calls("gettoken") - tokens_before == 1
    # The administrator puts the old secret back: after the next probe everything goes.
    world.sim_post("/_sim/config", {"app_secret": "app-secret"})
    world.clock.advance(BREAKER_SECONDS + 1)
    world.drain()
    assert [r.status for r in rows(world)] == ["done"] * 10
    assert world.app.test_client().get("/healthz").get_json()["status"] == "ok"


def test_a_worker_started_with_the_new_secret_ignores_the_old_hold(world: World) -> None:
    with world.db.begin() as s:
        enqueue(
            s, "message_send", {"msg": TEXT, "touser": ["zhaoming"]}, "m", now=world.clock.now()
        )
        enqueue(
            s, "message_send", {"msg": TEXT, "touser": ["zhangyao"]}, "n", now=world.clock.now()
        )
    world.sim_post("/_sim/config", {"app_secret": "the-new-secret"})
    assert world.drain() == 1
    assert _hold(world, "credential:app").errcode == 40001
    fixed = world.compose_another(app_secret="the-new-secret")  # the deployment is updated
    try:
        Worker(fixed).outbox.drain()
    finally:
        fixed.close()
    assert [r.status for r in rows(world)] == ["done", "done"]


def test_a_create_whose_answer_was_lost_adopts_the_chat_on_86215(world: World) -> None:
    spec = GroupSpec(name="移动研发部工作群", owner="wangxuanqiang", chatid="lost01",
                     rules=GroupRules.from_dict({"departments": [5]}))  # fmt: skip
    world.fault("appchat/create", "lose_answer")  # WeCom creates the chat, the answer is lost
    group, outcome = service.create_now(world.services, world.outbox, spec, actor="test")
    assert outcome is not None and outcome.status == "retry" and group.status == "creating"
    world.clock.advance(timedelta(minutes=1))
    world.drain()
    with world.db.read() as s:
        group = s.scalars(select(ManagedGroup).where(ManagedGroup.chatid == "lost01")).one()
        create = s.scalars(select(GroupAudit).where(GroupAudit.action == "create")).one()
    assert group.status == "active" and group.actual_owner == "wangxuanqiang"
    assert create.outcome == "applied" and "已接管" in create.detail
    assert world.calls("appchat/create") == 2 and len(world.sim.state.chats) == 1


@pytest.mark.parametrize("strict", [True, False], ids=["wecom-86216", "lenient"])
def test_a_removal_of_someone_already_gone_does_not_block_the_rest(
    world: World, strict: bool
) -> None:
    world.sim.state.config.strict_removals = strict
    spec = GroupSpec(name="移动研发部工作群", owner="wangxuanqiang", chatid="mobile01",
                     rules=GroupRules.from_dict({"departments": [5]}))  # fmt: skip
    service.create_now(world.services, world.outbox, spec, actor="test")
    with world.sim.state.lock:  # litao leaves the chat himself; the app has not seen it
        chat = world.sim.state.chats["mobile01"]
        chat["userlist"].remove("litao")
    with world.db.begin() as s:
        for userid in ("litao", "hanyang"):
            event = EmployeeDeparted(userid, world.clock.now(), "delete_user")
            world.services.events.publish(s, world.clock, event)
    world.clock.advance(5)
    world.drain()
    assert world.calls("appchat/update") == (2 if strict else 1)
    assert "hanyang" not in world.chat("mobile01")["userlist"]
    with world.db.read() as s:
        removals = {r.userid: r for r in s.scalars(
            select(GroupAudit).where(GroupAudit.action == "remove"))}  # fmt: skip
    assert {u: r.outcome for u, r in removals.items()} == {"litao": "applied", "hanyang": "applied"}
    if strict:
        assert removals["litao"].detail == "移出时已不在群中"
        notice = posts(world, "mobile01")[-1]
        assert "韩洋" in notice and "李涛" not in notice  # only who was really removed


def _hold(world: World, scope: str) -> Hold:
    with world.db.read() as s:
        found = s.get(Hold, scope)
        assert found is not None, scope
        return found


def _cli() -> Any:
    from wecom_app.cli import main

    return main
