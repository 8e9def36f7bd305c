"""Demo step: both callback URLs verified like the admin console, encrypted events stored."""

from __future__ import annotations

from sqlalchemy import select

from wecom_app.demo.context import Demo
from wecom_app.models import InboxEvent


def run(demo: Demo) -> None:
    """Verify the URLs, deliver a few encrypted events, show the inbox before and after."""
    demo.section("回调 URL 校验 / callback URL verification")
    with demo.sim as sim:
        for channel in ("app", "contacts"):
            result = sim.post("/_sim/deliver/verify", json={"channel": channel}).json()
            verdict = "通过 ok" if result["ok"] else f"失败 FAILED: {result.get('error')}"
            demo.say(f"{channel:8} {result['url']}: {verdict}")

        demo.section("加密事件投递 / encrypted events delivered by the simulator")
        deliveries = [
            ("text", {"userid": "zhaoming", "content": "你好"}),
            ("enter_agent", {"userid": "zhangyao"}),
            ("update_party", {"dept_id": 4, "name": "平台研发部"}),
        ]
        for event, body in deliveries:
            result = sim.post(f"/_sim/deliver/{event}", json=body).json()
            demo.say(
                f"{event:12} → HTTP {result['status']} in {result['latency_ms']:.1f} ms "
                f"({result['attempts']} attempt)"
            )
        repeat = sim.post(
            "/_sim/deliver/text",
            json={"userid": "zhaoming", "content": "重复投递", "msg_id": 424242},
        ).json()
        again = sim.post(
            "/_sim/deliver/text",
            json={"userid": "zhaoming", "content": "重复投递", "msg_id": 424242},
        ).json()
        demo.say(f"same MsgId twice → HTTP {repeat['status']} and {again['status']}, stored once")

    demo.section("收件箱 / what the app stored (inbox)")
    with demo.services.db.begin() as session:
        rows = session.scalars(select(InboxEvent).order_by(InboxEvent.id)).all()
        for row in rows:
            demo.say(
                f"#{row.id} {row.channel:8} {row.msg_type}/{row.event or '-'}/"
                f"{row.change_type or '-'} from {row.from_user} key={row.dedupe_key} "
                f"[{row.status}]"
            )
    handled = demo.settle()
    demo.say(f"worker processed {handled} item(s):")
    demo.cli("inbox stats")
