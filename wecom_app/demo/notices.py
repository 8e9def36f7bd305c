"""Demo step: a notice to a department, acknowledged by card button and by text, and its ledger."""

from __future__ import annotations

from typing import Any

from wecom_app.clock import FakeClock, SystemClock
from wecom_app.demo.context import Demo
from wecom_app.notices.delivery import ACK_KEY, FEEDBACK_KEY

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
                "sender": "zhangyao",
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
    second = {"userid": "liangbobo", "task_id": task, "event_key": FEEDBACK_KEY}
    _deliver(demo, "card_click", second)
    demo.say("liangbobo 点击卡片上的第二个按钮“有疑问”：这也是回应，不再被催办")
    _catch_up(demo)
    demo.settle()
    for userid in ("luoxinlei", "huangyao"):
        for reply in _replies(demo, userid)[-1:]:
            demo.say(f"应用回复 {userid}：" + reply.replace("\n", " / "))
    with demo.sim as sim:
        updates = sim.get("/_sim/messages").json()["card_updates"]
    for update in updates[-2:]:
        who = "、".join(update.get("userids") or [])
        demo.say(f"{who} 的卡片按钮已更新为“{update['replace_name']}”")
    for reply in _replies(demo, "zhangyao")[-1:]:
        demo.say("发布人 zhangyao 收到：" + reply.replace("\n", " / "))

    demo.section("台账 / the ledger")
    demo.cli(f"notice status {notice['code']}")
    run_more(demo)


def run_more(demo: Demo) -> None:
    """A notice to a tag, then a leader's task with a response (the SLA step chases the rest)."""
    demo.section("按标签发送 / a notice to a tag (tags are mirrored from WeCom)")
    demo.cli('notice send --title "本月消防器材检查" --tag 3 --dry-run')

    demo.section("领导任务 / a leader's task: answered within 30 minutes, or 100元")
    demo.cli(
        'notice send --type task --title "今天下班前修复三楼打印机" --user zhunan '
        "--user zhengchao --sender zhangyao"
    )
    _catch_up(demo)
    demo.settle()
    with demo.api as api:
        task = api.get("/api/v1/notices", params={"limit": 1}).json()["notices"][0]
    _deliver(demo, "text", {"userid": "zhengchao", "content": f"#{task['code']} 下午三点前修好"})
    demo.say(f"zhengchao 回复“#{task['code']} 下午三点前修好”：记为回应，并转告发布人")
    _catch_up(demo)
    demo.settle()
    for reply in _replies(demo, "zhangyao")[-1:]:
        demo.say("发布人 zhangyao 收到：" + reply.replace("\n", " / "))
    demo.say("zhunan 没有回应：下一步按工作时间催办、升级，超时记入违规台账（任务罚款 100 元）")

    demo.section("转交与已解决 / passing a task on, then 已解决")
    code = task["code"]
    handover = f"#{code} 转交 平台研发部-罗鑫磊 打印机驱动一直由他维护"
    _deliver(demo, "text", {"userid": "zhengchao", "content": handover})
    demo.say(f"zhengchao 回复“{handover}”")
    _catch_up(demo)
    demo.settle()
    demo.say("应用回复 zhengchao：" + _replies(demo, "zhengchao")[-1])
    _deliver(demo, "text", {"userid": "luoxinlei", "content": f"#{code} 已解决"})
    demo.say(f"luoxinlei 修好后回复“#{code} 已解决”")
    _catch_up(demo)
    demo.settle()
    for reply in _replies(demo, "zhangyao")[-2:]:
        demo.say("发布人 zhangyao 收到：" + reply)
    demo.cli(f"notice handovers --notice {code}")
    demo.say(
        "同部门的第一次转交不算推诿；转给部门以外的人、转回领导或再次转交，按公司规定每次罚款 50 元"
    )
