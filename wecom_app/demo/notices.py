"""Demo step: a notice to a department, acknowledged by card button and by text, and its ledger."""

from __future__ import annotations

from typing import Any

from wecom_app.clock import FakeClock, SystemClock
from wecom_app.demo.context import Demo
from wecom_app.notices.delivery import ACK_KEY

DEPARTMENT = 4  # 平台研发部 in config/sample-org.yaml


def _card_task(demo: Demo, userid: str) -> str:
    """The task_id of the latest notice card the simulator delivered to a member."""
    with demo.sim as sim:
        messages = sim.get("/_sim/messages", params={"userid": userid}).json()["messages"]
    cards = [m for m in messages if m["msgtype"] == "template_card"]
    return str(cards[-1]["task_id"])


def _replies(demo: Demo, userid: str) -> list[str]:
    with demo.sim as sim:
        messages = sim.get("/_sim/messages", params={"userid": userid}).json()["messages"]
    return [m["content"]["content"] for m in messages if m["msgtype"] == "text"]


def _catch_up(demo: Demo) -> None:
    """Move the demo's fake clock up to the web app's (real) time before running the worker."""
    clock = demo.services.clock
    if isinstance(clock, FakeClock):
        clock.set(max(clock.now(), SystemClock().now()))


def _deliver(demo: Demo, event: str, body: dict[str, Any]) -> None:
    with demo.sim as sim:
        sim.post(f"/_sim/deliver/{event}", json=body).raise_for_status()


def run(demo: Demo) -> None:
    """Preview, send, acknowledge three ways, then print who has and has not confirmed."""
    demo.section("确认通知 / notices that must be acknowledged: preview")
    demo.cli(f'notice send --title "周五 14:00 消防演练" --department {DEPARTMENT} --dry-run')

    demo.section("发送：每批 ≤1000 人一张“收到”卡片 / send through the outbox")
    with demo.api as api:
        answer = api.post(
            "/api/v1/notices",
            json={
                "title": "周五 14:00 消防演练",
                "body": "请全体成员 14:00 前到一楼大厅集合，听从安全员指挥，演练约 30 分钟。",
                "author": "行政部",
                "audience": {"departments": [DEPARTMENT]},
                "sla_minutes": 30,
                "second_button": "有疑问",
            },
        ).json()
    notice = answer["notice"]
    demo.say(f"POST /api/v1/notices → 通知 #{notice['code']}，{answer['recipients']} 位收件人")
    _catch_up(demo)
    demo.settle()
    task = _card_task(demo, "zhangyao")
    demo.say(f"模拟器已向成员投递卡片 task_id={task}")

    demo.section("员工确认 / employees acknowledge (encrypted callbacks from the simulator)")
    _deliver(demo, "card_click", {"userid": "zhangyao", "task_id": task, "event_key": ACK_KEY})
    demo.say("zhangyao 点击卡片上的“收到”按钮")
    _deliver(demo, "text", {"userid": "luoxinlei", "content": "收到"})
    demo.say("luoxinlei 给应用回复“收到”")
    _deliver(demo, "text", {"userid": "sunqiangjie", "content": f"ＯＫ！#{notice['code']}"})
    demo.say(f"sunqiangjie 回复“ＯＫ！#{notice['code']}”（全角、带编号）")
    _deliver(demo, "text", {"userid": "huangyao", "content": "演练要带什么吗？"})
    demo.say("huangyao 发了一句不是确认的话")
    _catch_up(demo)
    demo.settle()
    for userid in ("luoxinlei", "huangyao"):
        for reply in _replies(demo, userid)[-1:]:
            demo.say(f"应用回复 {userid}：" + reply.replace("\n", " / "))
    with demo.sim as sim:
        updates = sim.get("/_sim/messages").json()["card_updates"]
    for update in updates[-1:]:
        demo.say(f"zhangyao 的卡片按钮已更新为“{update['replace_name']}”")

    demo.section("台账 / the ledger")
    demo.cli(f"notice status {notice['code']}")
