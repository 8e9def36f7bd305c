"""The worker: one-shot settling, and the real `wecom-app worker` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import API_TOKEN, APP_AES_KEY, APP_TOKEN, CONTACTS_AES_KEY, CONTACTS_TOKEN
from tests.stack import running_stack
from wecom_app import jobs
from wecom_app.models import InboxEvent, OutboxMessage
from wecom_app.outbox import enqueue


@pytest.fixture
def stack(sqlite_url, clock):
    with running_stack(sqlite_url, clock) as s:
        yield s


def test_settle_sends_what_a_job_queued_in_the_same_call(stack, monkeypatch) -> None:
    def queue_a_message(services):
        with services.db.begin() as s:
            enqueue(
                s,
                "message_send",
                {"msg": {"msgtype": "text", "text": {"content": "定时"}}, "touser": ["zhaoming"]},
                "job-msg",
                now=services.clock.now(),
            )
        return {"queued": 1}

    monkeypatch.setitem(
        jobs.JOBS, "test_job", jobs.Job("test_job", queue_a_message, every=timedelta(minutes=1))
    )
    stack.settle()
    with stack.services.db.begin() as s:
        assert s.scalars(select(OutboxMessage.status)).all() == ["done"]
    assert any("zhaoming" in m["delivered"] for m in stack.sim.state.messages)


def test_worker_process_handles_callbacks_and_stops_on_sigterm(stack) -> None:
    stack.sim.events.deliver_text("zhaoming", "你好")
    settings = stack.services.settings
    env = {
        **os.environ,
        "WECOM_CORP_ID": settings.corp_id,
        "WECOM_AGENT_ID": str(settings.agent_id),
        "WECOM_APP_SECRET": "app-secret",
        "WECOM_CALLBACK_TOKEN": APP_TOKEN,
        "WECOM_CALLBACK_AES_KEY": APP_AES_KEY,
        "WECOM_CONTACTS_SECRET": "contacts-secret",
        "WECOM_CONTACTS_TOKEN": CONTACTS_TOKEN,
        "WECOM_CONTACTS_AES_KEY": CONTACTS_AES_KEY,
        "WECOM_API_BASE": stack.sim.url,
        "DATABASE_URL": settings.database_url,
        "WECOM_APP_API_TOKEN": API_TOKEN,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "wecom_app.cli", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        status = "pending"
        while status == "pending" and time.monotonic() < deadline:
            time.sleep(0.2)
            with stack.services.db.begin() as s:
                status = s.scalars(select(InboxEvent.status)).one()
        assert status != "pending", "the worker did not process the inbox"
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output
    assert "worker stopping on signal" in output
