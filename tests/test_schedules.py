"""Scheduled and recurring notices: the rules on the working calendar (holidays, 调休), and the
worker sending them through the simulator with a fake clock, over the JSON API and the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from tests.world import World, make_world
from wecom_app.cli import main
from wecom_app.clock import BEIJING, FakeClock
from wecom_app.models import Notice
from wecom_app.notices.schedules import Rule, ScheduleError
from wecom_app.sla.calendar import WorkingCalendar

CAL = WorkingCalendar()  # chinese-calendar's 2025-2026: 元旦 1-2 January, 4 January 调休 worked
CHECK_IN = {"title": "早九点位置报告", "body": "请报告您现在的位置", "type": "notice",
            "audience": {"departments": [{"id": 10, "subtree": False}]}, "sla_minutes": 30}  # fmt: skip


def beijing(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=BEIJING)


def slots(rule: dict[str, Any], start: datetime, count: int) -> list[str]:
    parsed, out, at = Rule.parse(rule), [], start
    for _ in range(count):
        found = parsed.next_after(at, CAL)
        if found is None:
            break
        out.append(found.astimezone(BEIJING).strftime("%m-%d %a %H:%M"))
        at = found
    return out


def test_every_working_day_skips_the_holiday_and_keeps_the_worked_sunday() -> None:
    week = slots({"kind": "daily", "at": "09:00"}, beijing(2025, 12, 29), 5)
    assert week == ["12-29 Mon 09:00", "12-30 Tue 09:00", "12-31 Wed 09:00",
                    "01-04 Sun 09:00", "01-05 Mon 09:00"]  # fmt: skip
    every_day = slots(
        {"kind": "daily", "at": "09:00", "holidays": "send"}, beijing(2025, 12, 31), 3
    )
    assert every_day == ["12-31 Wed 09:00", "01-01 Thu 09:00", "01-02 Fri 09:00"]


def test_weekly_and_monthly_slots_on_the_calendar() -> None:
    mondays = slots({"kind": "weekly", "weekdays": [1], "at": "08:30"}, beijing(2026, 2, 9), 3)
    assert mondays == ["02-09 Mon 08:30", "03-02 Mon 08:30", "03-09 Mon 08:30"]  # 春节 skipped
    firsts = slots({"kind": "monthly", "day": 1, "at": "10:00"}, beijing(2025, 12, 31, 12), 3)
    assert firsts == ["01-04 Sun 10:00", "02-02 Mon 10:00", "03-02 Mon 10:00"]  # moved on
    ends = slots({"kind": "monthly", "day": 31, "at": "17:00", "holidays": "send"},
                 beijing(2026, 2, 1), 2)  # fmt: skip
    assert ends == ["02-28 Sat 17:00", "03-31 Tue 17:00"]  # a short month's last day
    once = Rule.parse({"kind": "once", "date": "2026-03-02", "at": "09:15"})
    assert once.next_after(beijing(2026, 3, 2, 9, 15), CAL) is None  # it has passed
    assert (
        Rule.parse({"kind": "weekly", "weekdays": [1, 5]}).describe()
        == "每周一、周五 09:00，节假日不发"
    )
    assert Rule.parse({"kind": "daily", "at": "09:00"}).describe() == "每个工作日 09:00"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"kind": "hourly"}, "kind"),
        ({"kind": "daily", "at": "9点"}, "北京时间的时刻"),
        ({"kind": "daily", "every": 2}, "未知字段：every"),
        ({"kind": "weekly"}, "weekdays"),
        ({"kind": "weekly", "weekdays": [8]}, "weekdays"),
        ({"kind": "monthly", "day": 0}, "day"),
        ({"kind": "once"}, "日期"),
        ({"kind": "daily", "holidays": "maybe"}, "holidays"),
    ],
)
def test_a_bad_rule_is_refused_with_the_field_named(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message) as caught:
        Rule.parse(rule)
    assert isinstance(caught.value, ScheduleError) or "schedule" in str(caught.value)


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    clock = FakeClock(beijing(2025, 12, 29, 8, 0).astimezone(UTC))  # Monday before 元旦
    with make_world(database_url, clock=clock, mirror=True) as running:
        yield running


def api(world: World, method: str, path: str, body: Any = None) -> Any:
    with world.api as http:
        resp = http.request(method, f"/api/v1{path}", json=body)
    return resp


def runs(world: World) -> list[tuple[int | None, datetime]]:
    with world.db.read() as session:
        return list(
            session.execute(select(Notice.schedule_id, Notice.created_at).order_by(Notice.id))
        )


def test_a_daily_check_in_runs_on_working_days_and_reaches_people(world: World) -> None:
    made = api(world, "POST", "/schedules", {"name": "早九点位置报告", "notice": CHECK_IN,
                                             "schedule": {"kind": "daily", "at": "09:00"}})  # fmt: skip
    assert made.status_code == 201, made.text
    schedule = made.json()["schedule"]
    assert schedule["next_run"] == "2025-12-29 09:00" and schedule["describe"] == "每个工作日 09:00"
    sent_on = []
    for day in range(7):  # Monday 29 December to Sunday 4 January, each morning at 09:01
        world.clock.set(beijing(2025, 12, 29, 9, 1).astimezone(UTC) + timedelta(days=day))
        world.settle()
        sent_on += [at.astimezone(BEIJING).date() for _, at in runs(world)[len(sent_on) :]]
    assert sent_on == [date(2025, 12, 29), date(2025, 12, 30), date(2025, 12, 31), date(2026, 1, 4)]
    assert {sid for sid, _ in runs(world)} == {schedule["id"]}
    cards = [m for m in world.sim.state.messages if m.get("msgtype") == "template_card"]
    assert len(cards) >= 4 and all(m["delivered"] for m in cards)
    shown = api(world, "GET", f"/schedules/{schedule['id']}").json()
    assert shown["schedule"]["runs"] == 4 and len(shown["runs"]) == 4
    assert shown["schedule"]["next_run"] == "2026-01-05 09:00"


def test_a_schedule_due_while_the_worker_was_stopped_runs_once(world: World) -> None:
    body = {"notice": CHECK_IN, "schedule": {"kind": "daily", "at": "09:00", "holidays": "send"}}
    ident = api(world, "POST", "/schedules", body).json()["schedule"]["id"]
    world.clock.set(beijing(2026, 1, 2, 15, 0).astimezone(UTC))  # four slots passed, no worker
    world.settle()
    world.settle()
    assert len(runs(world)) == 1
    after = api(world, "GET", f"/schedules/{ident}").json()["schedule"]
    assert after["next_run"] == "2026-01-03 09:00" and after["runs"] == 1


def test_pause_resume_edit_and_delete(world: World) -> None:
    body = {"notice": CHECK_IN, "schedule": {"kind": "weekly", "weekdays": [1], "at": "09:00"}}
    ident = api(world, "POST", "/schedules", body).json()["schedule"]["id"]
    paused = api(world, "POST", f"/schedules/{ident}/pause").json()["schedule"]
    assert paused["status"] == "paused" and paused["next_run"] is None
    world.clock.set(beijing(2025, 12, 29, 9, 30).astimezone(UTC))
    world.settle()
    assert runs(world) == []  # paused through Monday's slot
    resumed = api(world, "POST", f"/schedules/{ident}/resume").json()["schedule"]
    assert resumed["next_run"] == "2026-01-05 09:00"  # the passed slot is not sent late
    edited = api(
        world, "PATCH", f"/schedules/{ident}", {"schedule": {"kind": "daily", "at": "10:00"}}
    )
    assert edited.json()["schedule"]["next_run"] == "2025-12-29 10:00", edited.text
    assert edited.json()["schedule"]["notice"]["title"] == CHECK_IN["title"]  # kept
    bad = api(world, "PATCH", f"/schedules/{ident}", {"notice": {**CHECK_IN, "type": "nope"}})
    assert bad.status_code == 400 and "未知的通知类型" in bad.json()["error"]
    world.clock.set(beijing(2025, 12, 29, 10, 0).astimezone(UTC))
    world.settle()
    assert len(runs(world)) == 1
    assert api(world, "DELETE", f"/schedules/{ident}").status_code == 200
    assert api(world, "GET", f"/schedules/{ident}").status_code == 404
    assert api(world, "GET", "/schedules").json()["schedules"] == []
    assert len(runs(world)) == 1  # its run stays in the ledger
    past = {"notice": CHECK_IN, "schedule": {"kind": "once", "date": "2025-12-01"}}
    refused = api(world, "POST", "/schedules", past)
    assert refused.status_code == 400 and "已经过去" in refused.json()["error"]
    assert api(world, "POST", "/schedules", {"notice": CHECK_IN}).status_code == 400


def test_the_schedule_cli(world: World, tmp_path: Any) -> None:
    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(main, list(args), env=world.worker_env())
        assert result.exit_code == code, result.output
        return (
            result.stdout if result.exit_code == 0 else result.output
        )  # JSON on stdout; logs on stderr

    notice = tmp_path / "notice.json"
    notice.write_text(json.dumps(CHECK_IN, ensure_ascii=False), encoding="utf-8")
    later = (datetime.now(BEIJING) + timedelta(days=3)).date().isoformat()
    out = run("schedule", "add", "--notice", str(notice), "--kind", "once", "--date", later,
              "--at", "09:00", "--name", "月度盘点")  # fmt: skip
    assert "月度盘点" in out and f"{later} 09:00" in out
    listed = json.loads(run("schedule", "list", "--json"))["schedules"]
    ident = str(listed[0]["id"])
    assert "已暂停" in run("schedule", "pause", ident)
    assert "下次发送" in run("schedule", "resume", ident)
    assert "已删除" in run("schedule", "delete", ident)
    assert "没有编号为" in run("schedule", "pause", ident, code=1)
    assert "weekdays" in run("schedule", "add", "--notice", str(notice), "--kind", "weekly", code=1)
    with world.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Notice)) == 0
