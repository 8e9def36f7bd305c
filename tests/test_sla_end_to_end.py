"""The SLA through the whole product: a notice sent via the API, the worker's sweep job,
reminders and a leader's digest delivered by the simulator, an ack by button stopping them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.world import World, make_world
from wecom_app.bench.mirror import load_mirror
from wecom_app.clock import FakeClock
from wecom_app.notices import delivery

DEPARTMENT = 4  # 平台研发部 in config/sample-org.yaml, led by zhangyao


@pytest.fixture
def stack(database_url: str) -> Iterator[World]:
    with make_world(database_url, clock=FakeClock()) as st:
        load_mirror(st.services.db, st.sim.state.org, st.clock.now())
        yield st


def settle(stack: World) -> None:
    """Run the worker until idle twice: the sweep job queues messages the next pass sends."""
    stack.settle()
    stack.settle()


def test_reminders_escalation_and_ack_through_the_simulator(stack: World) -> None:
    # The fake clock starts Monday 2026-01-05 17:00 in Shanghai: working time.
    with stack.api as http:
        resp = http.post(
            "/api/v1/notices",
            json={
                "title": "提交周报",
                "audience": {"departments": [DEPARTMENT]},
                "sla_minutes": 30,
            },
        )
    assert resp.status_code == 201, resp.text
    settle(stack)
    with stack.sim.state.lock:
        task = next(
            m["task_id"] for m in stack.sim.state.messages if m["msgtype"] == "template_card"
        )

    stack.clock.advance(timedelta(minutes=15, seconds=5))
    settle(stack)
    assert any("确认提醒" in t for t in stack.texts_to("huangyao"))
    assert any("确认提醒" in t for t in stack.texts_to("luoxinlei"))

    assert stack.sim.events.deliver_card_click("luoxinlei", task, delivery.ACK_KEY).ok
    settle(stack)
    stack.clock.advance(timedelta(minutes=15))
    settle(stack)
    assert any("逾期提醒" in t for t in stack.texts_to("huangyao"))
    assert not any("逾期提醒" in t for t in stack.texts_to("luoxinlei"))

    stack.clock.advance(timedelta(minutes=15))
    settle(stack)
    digests = [t for t in stack.texts_to("zhangyao") if t.startswith("【超时未确认】")]
    assert len(digests) == 1
    assert "黄瑶" in digests[0] and "罗鑫磊" not in digests[0]
    stack.clock.advance(timedelta(minutes=15))
    settle(stack)
    assert len([t for t in stack.texts_to("huangyao") if t.startswith("【")]) == 2
