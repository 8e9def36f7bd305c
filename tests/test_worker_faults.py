"""The worker under the faults production sees: killed mid-call, stopped with a backlog, WeCom
away while acks arrive, a slow job beside the minute sweep, two full syncs at once, and a
callback arriving while the worker waits for WeCom."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tests.world import World, make_world, until
from wecom_app.clock import FakeClock, SystemClock
from wecom_app.directory.naming import NamingPolicy
from wecom_app.directory.sync import SyncRunning, sync_services
from wecom_app.groups import service
from wecom_app.groups.rules import GroupRules
from wecom_app.groups.service import GroupSpec
from wecom_app.models import Employee, InboxEvent, JobRun, OutboxMessage, Receipt
from wecom_app.notices import delivery
from wecom_app.notices import service as notices
from wecom_app.outbox import enqueue
from wecom_app.sla.policy import PolicyBook
from wecom_app.worker import Worker


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with make_world(database_url, mirror=True) as w:
        yield w


def start_worker(world: World, log: Path) -> subprocess.Popen[bytes]:
    """A real `wecom-app worker` process on the world's database and simulator."""
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "wecom_app.cli", "worker"],
            env=world.worker_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def queue_posts(world: World, chatid: str, count: int) -> None:
    with world.db.begin() as s:
        for i in range(count):
            msg = {"msgtype": "text", "text": {"content": f"post {i}"}}
            enqueue(s, "appchat_send", {"chatid": chatid, "msg": msg}, f"post-{i}",
                    now=world.clock.now(), lane="appchat")  # fmt: skip


def statuses(world: World) -> list[tuple[str, bool]]:
    with world.db.read() as s:
        rows = s.execute(
            select(OutboxMessage.status, OutboxMessage.lease_token).order_by(OutboxMessage.id)
        )
        return [(status, token is not None) for status, token in rows]


def posts(world: World, chatid: str) -> list[str]:
    return [m["content"]["content"] for m in world.chat(chatid)["messages"]]


def a_later_worker(world: World) -> Worker:
    """An in-process worker whose clock is past every lease the real worker took."""
    clock = FakeClock(SystemClock().now() + timedelta(minutes=5))
    return Worker(world.compose_another(clock=clock))


def test_a_worker_killed_mid_call_leaves_at_most_that_call_in_doubt(
    world: World, tmp_path: Path
) -> None:
    chatid = world.services.client.appchat_create("群", "zhaoming", ["zhaoming", "zhangyao"])
    queue_posts(world, chatid, 3)
    world.fault("appchat/send", "delay", delay=3.0)  # the first call hangs: in flight
    proc = start_worker(world, tmp_path / "worker.log")
    try:
        until(lambda: [s for s, _ in statuses(world)].count("done") == 2, timeout=30)
        assert world.calls("appchat/send") == 3
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    until(lambda: len(posts(world, chatid)) == 3)  # the hung call lands after the kill
    later = a_later_worker(world)
    try:
        later.outbox.drain()
    finally:
        later.outbox.services.close()
    assert sorted(s for s, _ in statuses(world)) == ["done", "done", "unknown"]
    assert sorted(posts(world, chatid)) == ["post 0", "post 1", "post 2"]  # none twice
    assert world.calls("appchat/send") == 3


def test_sigterm_with_a_backlog_and_wecom_gone_stops_within_ten_seconds(
    world: World, tmp_path: Path
) -> None:
    chatid = world.services.client.appchat_create("群", "zhaoming", ["zhaoming", "zhangyao"])
    queue_posts(world, chatid, 30)
    world.fault("appchat/send", "delay", delay=30.0, count=1000)  # WeCom swallows them
    log = tmp_path / "worker.log"
    proc = start_worker(world, log)
    try:
        until(lambda: world.calls("appchat/send") >= 4, timeout=30)  # four calls in flight
        asked = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        took = time.monotonic() - asked
        output = log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert took < 10, f"stopped after {took:.1f} s"
    left = statuses(world)
    assert left.count(("pending", True)) == 4  # the calls in flight keep their leases
    assert left.count(("pending", False)) == 26  # the rest were never taken, nothing lost
    world.clear_faults()
    later = a_later_worker(world)
    try:
        later.outbox.drain()
    finally:
        later.outbox.services.close()
    final = [s for s, _ in statuses(world)]
    assert final.count("done") == 26 and final.count("unknown") == 4
    sent = posts(world, chatid)
    assert len(sent) == len(set(sent))  # whatever landed landed once


def test_acks_are_recorded_while_wecom_is_away(world: World) -> None:
    draft = notices.draft_from(
        {"title": "停电通知", "audience": {"users": ["zhaoming"]}}, PolicyBook()
    )
    with world.db.begin() as s:
        notice, _ = notices.create(s, draft, world.clock.now())
        task = f"{notice.task_prefix}-1"
    world.settle()  # the card goes out
    chatid = world.services.client.appchat_create("群", "zhaoming", ["zhaoming", "zhangyao"])
    queue_posts(world, chatid, 8)  # writes queued behind a WeCom that stops answering
    world.fault("*", "delay", delay=10.0, count=1000)
    runner = threading.Thread(target=world.worker.run)
    runner.start()
    try:
        until(lambda: world.calls("appchat/send") >= 4)  # every outbox thread is stuck
        assert world.sim.events.deliver_card_click("zhaoming", task, delivery.ACK_KEY).ok

        def acknowledged() -> bool:
            with world.db.read() as s:
                return s.scalar(select(Receipt.state)) == "acknowledged"

        until(acknowledged, timeout=5)
        assert statuses(world).count(("pending", True)) == 4  # still waiting for WeCom
    finally:
        world.worker.stop()
        runner.join(20)


def test_the_minute_sweep_keeps_its_minute_while_the_group_check_is_slow(database_url) -> None:
    clock = FakeClock(FakeClock().now().replace(hour=1, minute=0, second=5))  # 09:00 Beijing
    with make_world(database_url, mirror=True, clock=clock) as world:
        for i in range(3):
            spec = GroupSpec(name=f"测试部{i}群", owner="zhaochen", chatid=f"qa{i}",
                             rules=GroupRules.from_dict({"departments": [6]}))  # fmt: skip
            service.create_now(world.services, world.outbox, spec, actor="test")
        world.fault("appchat/get", "delay", delay=1.5, count=10)
        runner = threading.Thread(target=world.worker.run)
        runner.start()
        try:
            until(lambda: world.calls("appchat/get") >= 1)  # the 09:00 check is under way
            for _ in range(2):
                clock.advance(60)
                slot = str(int(clock.now().timestamp()) // 60 * 60)
                until(lambda s=slot: _ran(world, "sla_sweep", s), timeout=3)
            assert not _ran(world, "groups_daily_check", clock.now().date().isoformat())
            until(lambda: _ran(world, "groups_daily_check", "2026-01-05"), timeout=20)
        finally:
            world.worker.stop()
            runner.join(20)


def _ran(world: World, name: str, slot: str) -> bool:
    with world.db.read() as s:
        status = s.scalar(select(JobRun.status).where(JobRun.name == name, JobRun.slot == slot))
        return status == "done"


def test_two_full_syncs_at_once_run_one_after_the_other(database_url: str) -> None:
    with make_world(database_url) as world:
        world.fault("user/list", "delay", delay=0.2, count=1000)
        results: list[Any] = []

        def sync() -> None:
            try:
                results.append(sync_services(world.services, NamingPolicy()).counts["added"])
            except Exception as exc:  # pragma: no cover - reported below
                results.append(exc)

        threads = [threading.Thread(target=sync) for _ in range(2)]
        for t in threads:
            t.start()
        until(lambda: world.calls("user/list") >= 1)
        with pytest.raises(SyncRunning):  # a third, told not to wait, says so at once
            sync_services(world.services, NamingPolicy(), wait=False)
        for t in threads:
            t.join(60)
        assert sorted(results) == [0, len(world.org.members)]  # the second found it done
        with world.db.read() as s:
            assert s.scalar(select(func.count()).select_from(Employee)) == len(world.org.members)


def test_a_callback_does_not_wait_for_a_worker_that_waits_for_wecom(sqlite_url: str) -> None:
    """On SQLite no transaction is open while the worker asks WeCom, so the file is free."""
    with make_world(sqlite_url, mirror=True) as world:
        world.fault("user/get", "delay", delay=3.0)
        world.deliver("update_user", userid="songfang", position="首席架构师")
        processing = threading.Thread(target=world.process)
        processing.start()
        try:
            until(lambda: world.calls("user/get") >= 1)  # the worker is waiting for WeCom
            path = make_url(sqlite_url).database
            raw = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                raw.execute("BEGIN IMMEDIATE")  # the write lock is free at once
                raw.execute("ROLLBACK")
            finally:
                raw.close()
            world.deliver("text", userid="zhaoming", content="你好")  # stored meanwhile
            assert world.calls("user/get") == 1 and processing.is_alive()
        finally:
            processing.join(20)
        with world.db.read() as s:
            assert s.scalar(select(func.count()).select_from(InboxEvent)) == 2
