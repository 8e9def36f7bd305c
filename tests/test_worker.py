"""The worker: one-shot settling, and the real `wecom-app worker` process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.world import make_world, until
from wecom_app.clock import FakeClock
from wecom_app.jobs import Job, JobContext
from wecom_app.models import InboxEvent, OutboxMessage
from wecom_app.outbox import enqueue
from wecom_app.registry import Registry


def queue_a_message(ctx: JobContext) -> dict[str, int]:
    with ctx.services.db.begin() as s:
        enqueue(
            s,
            "message_send",
            {"msg": {"msgtype": "text", "text": {"content": "定时"}}, "touser": ["zhaoming"]},
            "job-msg",
            now=ctx.services.clock.now(),
        )
    return {"queued": 1}


def test_settle_sends_what_a_job_queued_in_the_same_call(sqlite_url) -> None:
    def add_job(registry: Registry) -> None:
        registry.jobs.add(Job("test_job", queue_a_message, every=timedelta(minutes=1)))

    with make_world(sqlite_url, clock=FakeClock(), customize=add_job) as world:
        world.settle()
        with world.db.begin() as s:
            assert s.scalars(select(OutboxMessage.status)).all() == ["done"]
        assert any("zhaoming" in m["delivered"] for m in world.sim.state.messages)


@pytest.fixture
def world(sqlite_url):
    with make_world(sqlite_url, clock=FakeClock()) as w:
        yield w


def test_worker_process_handles_callbacks_and_stops_on_sigterm(world, tmp_path) -> None:
    world.sim.events.deliver_text("zhaoming", "你好")
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wecom_app.cli", "worker"],
            env=world.worker_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def handled() -> bool:
            with world.db.read() as s:
                return s.scalars(select(InboxEvent.status)).one() != "pending"

        until(handled, timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # every thread's stack into the log
            time.sleep(1)
            proc.kill()
            raise AssertionError(
                "no exit 30 s after SIGTERM:\n" + log.read_text()[-4000:]
            ) from None
    output = log.read_text()
    assert proc.returncode == 0, output
    assert "worker stopping on signal" in output
