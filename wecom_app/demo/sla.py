"""Demo step: time runs past the latest notice's deadline: reminders, escalation, overdue report."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from wecom_app.clock import FakeClock
from wecom_app.demo.context import Demo
from wecom_app.models import Employee, Notice, Receipt, ReceiptState
from wecom_app.sla.config import SlaConfig
from wecom_app.sla.schedule import ReceiptClock, due_at, escalation_times, reminder_times
from wecom_app.sla.sweeper import sweep_all

LEADERS = {"direct_leaders": "直属上级", "department_leaders": "部门负责人"}


def _latest_open(demo: Demo) -> tuple[Notice | None, list[tuple[str, str, datetime]]]:
    """The latest notice and its recipients who have not acknowledged (userid, name, sent)."""
    with demo.services.db.begin() as session:
        notice = session.scalars(select(Notice).order_by(Notice.id.desc()).limit(1)).first()
        if notice is None:
            return None, []
        rows = session.execute(
            select(Employee.userid, Employee.display_name, Receipt.sent_at)
            .join(Employee, Employee.id == Receipt.employee_id)
            .where(
                Receipt.notice_id == notice.id,
                Receipt.state == ReceiptState.SENT,
                Receipt.excluded.is_(False),
            )
            .order_by(Receipt.id)
        ).all()
        return notice, [(u, n, s) for u, n, s in rows if s is not None]


def _texts(demo: Demo, userid: str, prefix: str = "【") -> list[str]:
    """Text messages the simulator delivered to a member that start with `prefix`."""
    with demo.sim as sim:
        messages = sim.get("/_sim/messages", params={"userid": userid}).json()["messages"]
    texts = [m["content"]["content"] for m in messages if m.get("msgtype") == "text"]
    return [t for t in texts if t.startswith(prefix)]


def _timeline(notice: Notice, sent: datetime, config: SlaConfig) -> list[tuple[datetime, str]]:
    """Every reminder and escalation point of a receipt sent at `sent`, labelled."""
    policy = config.policies.for_type(None)  # notices have no type yet
    state = ReceiptClock(sent, timedelta(minutes=notice.sla_minutes))
    points = [
        (at, f"第 {i} 次提醒")
        for i, at in enumerate(reminder_times(state, policy, config.calendar), 1)
    ]
    points += [
        (at, f"第 {i} 级升级（{LEADERS.get(level.to, level.to)}）")
        for i, (at, level) in enumerate(
            zip(escalation_times(state, policy, config.calendar), policy.escalation, strict=True),
            1,
        )
    ]
    return sorted(points)


def run(demo: Demo) -> None:
    """Advance the clock through reminders and escalations, then print the overdue report."""
    demo.section("响应时效 / response SLA: reminders, escalation, overdue report")
    services = demo.services
    config = SlaConfig.from_settings(services.settings)
    tz = config.calendar.tz
    notice, silent = _latest_open(demo)
    if notice is None or not silent:
        demo.say("没有尚未确认的通知，跳过此步骤")
        return
    sent = min(s for _, _, s in silent)
    due = due_at(sent, timedelta(minutes=notice.sla_minutes), config.calendar)
    local = lambda t: t.astimezone(tz).strftime("%m-%d %H:%M")  # noqa: E731
    demo.say(f"通知 #{notice.code}《{notice.title}》送达 {local(sent)}，时限 {notice.sla_minutes}")
    demo.say(f"分钟按工作时间计算（22:00–07:30 免打扰、周末和法定节假日不计）→ 截止 {local(due)}")
    names = "、".join(name for _, name, _ in silent[:5])
    demo.say(f"尚未确认：{names}" + (f" 等 {len(silent)} 人" if len(silent) > 5 else ""))
    demo.cli(f"sla due-at --sent {sent.astimezone(tz).isoformat()} --minutes {notice.sla_minutes}")

    clock = services.clock
    now = clock.now()
    for at, label in _timeline(notice, sent, config):
        now = max(now, at + timedelta(seconds=5))
        if isinstance(clock, FakeClock):
            clock.set(max(clock.now(), now))  # the worker's clock: the outbox sends what is due
        result = sweep_all(services.db, now, config)
        demo.settle()
        demo.say(
            f"{local(now)} {label}：提醒 {result.reminded} 人，升级 {result.escalated} 人，"
            f"发出 {result.messages} 条消息"
        )
    _show_messages(demo, silent)

    demo.section("超时报表 / overdue report for HR (as of now)")
    as_of = now.astimezone(tz).isoformat(timespec="seconds")
    demo.cli(f"report overdue --as-of {as_of}")
    _api_report(demo, as_of)


def _show_messages(demo: Demo, silent: list[tuple[str, str, datetime]]) -> None:
    """What the simulator shows the silent person and the leaders received."""
    userid, name, _ = silent[0]
    for text in _texts(demo, userid):
        demo.say(f"{name} 收到：{text}")
    with demo.sim as sim:
        everyone = sim.get("/_sim/messages").json()["messages"]
    digests = [
        (m["delivered"], m["content"]["content"])
        for m in everyone
        if m.get("msgtype") == "text" and m["content"]["content"].startswith("【超时未确认】")
    ]
    for leaders, text in digests:
        demo.say(f"发给 {'、'.join(leaders)}：" + text.replace("\n", " / "))
    if not digests:
        demo.say("（没有升级消息）")
    demo.say(f"在模拟器里查看：{demo.sim_url}/_sim/messages?userid={userid}")


def _api_report(demo: Demo, as_of: str) -> None:
    """The same report through the JSON API, and as an XLSX download."""
    with demo.api as api:
        data = api.get("/api/v1/reports/overdue", params={"as_of": as_of}).json()
        xlsx = api.get("/api/v1/reports/overdue", params={"as_of": as_of, "format": "xlsx"})
    t = data["totals"]
    demo.say(
        f"GET /api/v1/reports/overdue → 按时 {t['on_time']}，逾期确认 {t['late']}，"
        f"超时未确认 {t['overdue']}，违规台账 {len(data['violations'])} 条，"
        f"罚款合计 {data['penalty_total']} 元"
    )
    for v in data["violations"]:
        if v["penalty"] not in ("0", "0.00"):
            demo.say(
                f"  {v['name']}：{v['notice_type']}《{v['notice_title']}》罚款 {v['penalty']} 元"
            )
    sheets = "汇总/按通知/按部门/按人员/违规台账"
    demo.say(f"?format=xlsx → {len(xlsx.content):,} 字节的 Excel 文件（{sheets}）")
