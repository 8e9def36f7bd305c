"""Demo step: a morning check-in on a schedule, answered by a location, by the card's button,
and not at all; the day's check-in report."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path

from wecom_app.clock import BEIJING
from wecom_app.demo.context import Demo
from wecom_app.demo.notices import _card_task, _catch_up, _deliver, _replies
from wecom_app.notices.delivery import ACK_KEY

DEPARTMENT = 10  # 华东销售组 in config/sample-org.yaml
CHECK_IN = {
    "title": "早九点位置报告",
    "body": "在外的同事请发送位置（＋ → 位置），在公司的点“收到”。",
    "type": "checkin",
    "author": "销售部",
    "audience": {"departments": [{"id": DEPARTMENT, "subtree": False}]},
}


def run(demo: Demo) -> None:
    """Schedule the check-in, send today's at once, answer it three ways, print the report."""
    demo.section("每日位置报到 / a morning check-in, every working day at 09:00")
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "checkin.json"
        spec.write_text(json.dumps(CHECK_IN, ensure_ascii=False), encoding="utf-8")
        demo.cli(f"schedule add --notice {spec} --kind daily --at 09:00 --name 早九点位置报告")
    demo.say("节假日不发，调休上班的周六照发；worker 每 20 秒检查一次到点的定时通知")
    demo.cli("schedule list")

    demo.section("今天的报到（演示不等到 09:00，同样的内容立即发一次）")
    with demo.api as api:
        sent = api.post("/api/v1/notices", json=CHECK_IN).json()
    code = sent["notice"]["code"]
    demo.say(f"通知 #{code} 发给华东销售组 {sent['recipients']} 人")
    _catch_up(demo)
    demo.settle()
    place = {"userid": "caojingfang", "latitude": 31.23039, "longitude": 121.4737,
             "label": "上海市黄浦区人民广场 客户现场", "scale": 16}  # fmt: skip
    _deliver(demo, "location", place)
    demo.say("caojingfang 在应用里发送了位置（企业微信的 location 消息）")
    task = _card_task(demo, "yangxiaming")
    _deliver(demo, "card_click", {"userid": "yangxiaming", "task_id": task, "event_key": ACK_KEY})
    demo.say("yangxiaming 在公司，点了卡片上的“收到”")
    demo.say("dengping 没有报到")
    _catch_up(demo)
    demo.settle()
    demo.say(f"应用回复 caojingfang：{_replies(demo, 'caojingfang')[-1]}")

    demo.section("报到情况 / the day's check-ins, per person, with where")
    today = datetime.now(BEIJING).date().isoformat()
    demo.cli(f"report checkins --from {today} --to {today}")
