"""Daily location check-ins through the simulator with a fake clock: a 09:00 schedule over the
week of 元旦 (a public holiday, and Sunday 4 January worked as 调休), answered by location by
some, by the card's button by others, late by one and missed by one; the report per day and
person, as JSON, CSV, XLSX and from the CLI."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import select

from callbacks.events import LocationMessage, parse_event
from tests.world import World, make_world
from wecom_app.cli import main
from wecom_app.clock import BEIJING, FakeClock
from wecom_app.errors import CallbackRejected
from wecom_app.models import CheckIn, Notice
from wecom_app.notices import delivery

OFFICE = (30.27415, 120.15515, "杭州市西湖区文三路 云栖数智大厦")
ON_THE_ROAD = (31.23039, 121.47370, "上海市黄浦区人民广场")
BY_LOCATION, BY_BUTTON, LATE, MISSING = "caojingfang", "yangxiaming", "heleiyu", "dengping"
WORKED = [date(2025, 12, 29), date(2025, 12, 30), date(2025, 12, 31), date(2026, 1, 4)]


def at(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=BEIJING).astimezone(UTC)


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    clock = FakeClock(at(date(2025, 12, 29), 8, 0))
    with make_world(database_url, clock=clock, mirror=True) as running:
        yield running


def api(world: World, path: str, method: str = "GET", body: Any = None) -> Any:
    with world.api as http:
        return http.request(method, f"/api/v1{path}", json=body)


def card_task(world: World, userid: str) -> str:
    with world.sim.state.lock:
        return [m for m in world.sim.state.messages if userid in m.get("delivered", ())][-1][
            "task_id"
        ]


def test_a_week_of_morning_check_ins(world: World) -> None:
    notice = {"title": "早九点位置报告", "type": "checkin", "sla_minutes": 30,
              "body": "在外的同事请发送位置（＋ → 位置），在公司的点“收到”",
              "audience": {"departments": [{"id": 10, "subtree": False}]}}  # fmt: skip
    made = api(world, "/schedules", "POST", {"notice": notice, "schedule": {"kind": "daily"}})
    assert made.status_code == 201, made.text
    lost = world.sim.events.deliver_location(BY_LOCATION, *OFFICE)  # nothing to answer yet
    assert lost.ok
    world.settle()
    assert "没有需要报告位置" in world.texts_to(BY_LOCATION)[-1]

    for day in (date(2025, 12, 29) + timedelta(days=n) for n in range(7)):
        world.clock.set(at(day, 9, 0))
        world.settle()  # the schedule's run goes out (or not, on 元旦 and the weekend)
        if day not in WORKED:
            continue
        world.clock.set(at(day, 9, 5))
        place = ON_THE_ROAD if day == date(2025, 12, 30) else OFFICE
        assert world.sim.events.deliver_location(BY_LOCATION, *place).ok
        world.clock.set(at(day, 9, 8))
        assert world.sim.events.deliver_card_click(BY_BUTTON, card_task(world, BY_BUTTON),
                                                   delivery.ACK_KEY).ok  # fmt: skip
        world.clock.set(at(day, 9, 45 if day == WORKED[1] else 9))
        assert world.sim.events.deliver_location(LATE, *OFFICE).ok
        world.settle()
        world.clock.set(at(day, 10, 0))
        world.settle()

    assert (
        "已报到「早九点位置报告」：杭州市西湖区文三路 云栖数智大厦，09:05"
        in world.texts_to(BY_LOCATION)[-1]
    )
    assert sum("记为迟到" in t for t in world.texts_to(LATE)) == 1  # the second day's, at 09:45
    with world.db.read() as session:
        sent = session.scalars(select(Notice).order_by(Notice.id)).all()
        assert [n.created_at.astimezone(BEIJING).date() for n in sent] == WORKED
        assert all(n.type == "checkin" and n.schedule_id for n in sent)
        assert len(session.scalars(select(CheckIn)).all()) == 2 * len(WORKED)

    world.clock.set(at(date(2026, 1, 5), 8, 0))  # the next morning, before its check-in
    for userid in (BY_BUTTON, MISSING):  # not Sunday's answer, nor Sunday's missed check-in
        assert world.sim.events.deliver_location(userid, *OFFICE).ok
    world.settle()
    assert all("没有需要报告位置" in world.texts_to(u)[-1] for u in (BY_BUTTON, MISSING))

    data = api(world, "/reports/checkins?from=2025-12-29&to=2026-01-04").json()
    rows = {(r["date"], r["userid"]): r for r in data["rows"]}
    assert {d for d, _ in rows} == {d.isoformat() for d in WORKED}
    road = rows[("2025-12-30", BY_LOCATION)]
    assert (road["status"], road["channel"], road["label"]) == ("按时", "发送位置", ON_THE_ROAD[2])
    assert road["map"].startswith(
        "https://apis.map.qq.com/uri/v1/marker?marker=coord:31.230390,121.473700;"
    )
    button = rows[("2026-01-04", BY_BUTTON)]
    assert (button["status"], button["channel"], button["label"]) == ("按时", "卡片按钮", "")
    assert rows[("2025-12-30", LATE)]["status"] == "迟到"
    assert rows[("2025-12-31", LATE)]["status"] == "按时"
    assert all(rows[(d.isoformat(), MISSING)]["status"] == "未报到" for d in WORKED)
    people = {p["userid"]: p for p in data["people"]}
    assert people[LATE]["迟到"] == 1 and people[LATE]["按时"] == 3
    assert people[MISSING]["未报到"] == 4

    xlsx = api(world, "/reports/checkins?from=2025-12-29&to=2026-01-04&format=xlsx")
    book = load_workbook(io.BytesIO(xlsx.content))
    sheet = book["报到明细"]
    assert [c.value for c in sheet[1]][:6] == ["日期", "姓名", "账号", "部门", "通知编号", "情况"]
    assert isinstance(sheet["A2"].value, datetime) and sheet.auto_filter.ref.startswith("A1:")
    assert book["按人员"]["A1"].value == "姓名"
    csv_text = api(world, "/reports/checkins?from=2025-12-29&to=2026-01-04&format=csv").text
    assert csv_text.startswith("\ufeff日期,姓名") and ON_THE_ROAD[2] in csv_text
    bad = api(world, "/reports/checkins?from=2026-01-04&to=2025-12-29")
    assert bad.status_code == 400 and "早于" in bad.json()["error"]

    runner = CliRunner()
    out = runner.invoke(main, ["report", "checkins", "--from", "2025-12-29", "--to", "2026-01-04",
                               "--json"], env=world.worker_env())  # fmt: skip
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.stdout)["rows"]) == len(data["rows"])


def test_a_location_message_is_parsed_and_checked() -> None:
    fields = {"MsgType": "location", "FromUserName": "zhangsan", "CreateTime": "1735434000",
              "Location_X": "30.274150", "Location_Y": "120.155150", "Scale": "15",
              "Label": "文三路", "MsgId": "1234567890123456", "AgentID": "1000002"}  # fmt: skip
    event = parse_event("app", fields)
    assert isinstance(event, LocationMessage)
    assert (event.latitude, event.longitude, event.scale, event.label) == (
        30.27415,
        120.15515,
        15,
        "文三路",
    )
    assert event.dedupe_key == "msg:1234567890123456"
    for broken in ({"Location_X": "北纬30"}, {"Location_X": "95"}, {"MsgId": ""}):
        with pytest.raises(CallbackRejected):
            parse_event("app", {**fields, **broken})
