"""The ledger tells the truth: answers count from when they arrived, one deadline per receipt."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from tests.world import World, make_world
from wecom_app.bench.mirror import load_mirror
from wecom_app.clock import FakeClock
from wecom_app.models import Employee, Notice, Receipt
from wecom_app.notices import delivery

SH = ZoneInfo("Asia/Shanghai")


def beijing(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH).astimezone(UTC)


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with make_world(database_url, clock=FakeClock(beijing(2026, 1, 6, 16, 58))) as w:
        load_mirror(w.services.db, w.sim.state.org, w.clock.now())
        yield w


def send(world: World, **fields: Any) -> dict[str, Any]:
    body = {"title": "周五消防演练", "body": "14:00 全员到一楼集合。", "author": "行政部"}
    body.update(fields)
    body.setdefault("audience", {"departments": [3]})
    with world.api as http:
        resp = http.post("/api/v1/notices", json=body)
    assert resp.status_code == 201, resp.text
    world.drain()  # the cards go out now; the minute sweep has not run
    return resp.json()["notice"]


def task_of(world: World) -> str:
    with world.sim.state.lock:
        return world.sim.state.messages[-1]["task_id"]


def recipients(world: World) -> list[str]:
    with world.sim.state.lock:
        return sorted(world.sim.state.messages[-1]["delivered"])


def receipts(world: World) -> dict[str, tuple[datetime | None, str, bool]]:
    with world.db.read() as s:
        rows = s.execute(
            select(Employee.userid, Receipt.due_at, Receipt.state, Receipt.late).join(
                Employee, Employee.id == Receipt.employee_id
            )
        ).all()
    return {u: (due, state, late) for u, due, state, late in rows}


def test_a_click_counts_from_when_it_arrived_not_when_it_was_processed(world: World) -> None:
    send(world, sla_minutes=30)
    first, second, *_ = recipients(world)
    world.clock.advance(timedelta(minutes=29))
    assert world.sim.events.deliver_card_click(first, task_of(world), delivery.ACK_KEY).ok
    assert world.sim.events.deliver_text(second, "收到").ok
    world.clock.advance(timedelta(minutes=20))  # a backlog, or a worker restart
    world.settle()
    found = receipts(world)
    assert found[first][1:] == ("acknowledged", False)
    assert found[second][1:] == ("acknowledged", False)
    assert world.sim.state.card_updates[-1]["replace_name"] == "已收到"
    assert "逾期" not in world.texts_to(second)[-1]


@pytest.mark.parametrize(
    ("sent", "minutes", "due"),
    [
        # 16 working hours from Tuesday 16:58: 5 h 2 min on Tuesday, the rest on Wednesday
        (beijing(2026, 1, 6, 16, 58), 16 * 60, beijing(2026, 1, 7, 18, 28)),
        # one minute from Friday 21:59 ends as working time ends: Monday 07:30, nothing between
        (beijing(2026, 1, 9, 21, 59), 1, beijing(2026, 1, 12, 7, 30)),
    ],
)
def test_every_receipt_has_one_working_time_deadline(
    world: World, sent: datetime, minutes: int, due: datetime
) -> None:
    world.clock.set(sent)
    send(world, sla_minutes=minutes)
    quick = recipients(world)[0]
    assert world.sim.events.deliver_card_click(quick, task_of(world), delivery.ACK_KEY).ok
    world.settle()  # the click, then the minute sweep
    world.clock.advance(timedelta(minutes=5))
    world.settle()
    found = receipts(world)
    assert {d for d, _, _ in found.values()} == {due}  # the quick clicker's too
    assert found[quick][1:] == ("acknowledged", False)


def test_an_answer_in_the_quiet_hours_after_the_deadline_is_on_time(world: World) -> None:
    world.clock.set(beijing(2026, 1, 9, 21, 59))
    send(world, sla_minutes=1)
    late_night = recipients(world)[0]
    world.clock.set(beijing(2026, 1, 10, 9, 0))  # Saturday: no working time since 22:00
    assert world.sim.events.deliver_text(late_night, "收到").ok
    world.settle()
    assert receipts(world)[late_night][1:] == ("acknowledged", False)


def overdue_report(world: World) -> dict[str, Any]:
    with world.api as http:
        resp = http.get("/api/v1/reports/overdue")
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_a_task_is_answered_in_thirty_minutes_or_costs_a_hundred(world: World) -> None:
    task = send(world, type="task", audience={"users": ["zhaoming", "zhangyao"]})
    plain = send(world, type="notice", sla_minutes=10, audience={"users": ["zhaoming"]})
    assert (task["type"], task["sla_minutes"], plain["type"]) == ("task", 30, "notice")
    world.clock.advance(timedelta(minutes=45))
    world.settle()
    report = overdue_report(world)
    fines = {(v["notice_code"], v["userid"]): v["penalty"] for v in report["violations"]}
    assert fines == {
        (task["code"], "zhaoming"): "100",
        (task["code"], "zhangyao"): "100",
        (plain["code"], "zhaoming"): "0",
    }
    assert {v["notice_type"] for v in report["violations"]} == {"任务", "通知"}
    assert report["penalty_total"] == "200"


def test_a_cancelled_notice_charges_nobody(world: World) -> None:
    task = send(world, type="task", audience={"users": ["zhaoming"]})
    world.clock.advance(timedelta(minutes=45))
    world.settle()
    assert overdue_report(world)["penalty_total"] == "100"
    with world.api as http:
        assert http.post(f"/api/v1/notices/{task['code']}/cancel").status_code == 200
    report = overdue_report(world)
    assert report["violations"] == [] and report["penalty_total"] == "0"


def test_an_unknown_type_is_refused_by_name(world: World) -> None:
    with world.api as http:
        resp = http.post(
            "/api/v1/notices", json={"title": "x", "type": "chore", "audience": {"users": ["a"]}}
        )
    assert resp.status_code == 400
    assert "chore" in resp.json()["error"] and "task（任务）" in resp.json()["error"]


def test_a_text_naming_a_notice_is_a_response_shown_to_the_sender(world: World) -> None:
    notice = send(world, audience={"users": ["zhangyao", "huangyao"]}, sender="zhaoming")
    code = notice["code"]
    assert world.sim.events.deliver_text("huangyao", f"#{code} 明天上午处理完").ok
    assert world.sim.events.deliver_text("zhangyao", f"没收到 #{code}").ok  # a negation
    world.settle()
    with world.api as http:
        found = {r["userid"]: r for r in http.get(f"/api/v1/notices/{code}").json()["receipts"]}
    assert (found["huangyao"]["state"], found["huangyao"]["response"]) == (
        "acknowledged",
        "明天上午处理完",
    )
    assert found["zhangyao"]["response"] == "没收到"  # said, and passed on: never an ack text
    told = [t for t in world.texts_to("zhaoming") if f"#{code}" in t]
    assert any("明天上午处理完" in t for t in told) and any("没收到" in t for t in told)
    assert "回应" in world.texts_to("huangyao")[-1]


@pytest.mark.parametrize("text", ["收到，谢谢", "好的收到", "收到了", "已阅", "收到收到！"])
def test_acks_are_read_tolerantly(world: World, text: str) -> None:
    send(world, audience={"users": ["huangyao"]})
    assert world.sim.events.deliver_text("huangyao", text).ok
    world.settle()
    assert receipts(world)["huangyao"][1] == "acknowledged"


@pytest.mark.parametrize("text", ["没收到", "未收到", "收不到", "谢谢", "收到，但是几点开始？"])
def test_a_negation_or_a_question_is_never_an_ack(world: World, text: str) -> None:
    send(world, audience={"users": ["huangyao"]})
    assert world.sim.events.deliver_text("huangyao", text).ok
    world.settle()
    assert receipts(world)["huangyao"][1] == "sent"
    assert "待确认" in world.texts_to("huangyao")[-1]  # they get help instead


def test_a_sender_must_be_an_active_member(world: World) -> None:
    with world.api as http:
        resp = http.post(
            "/api/v1/notices",
            json={"title": "x", "sender": "nobody", "audience": {"users": ["huangyao"]}},
        )
    assert resp.status_code == 400 and "sender" in resp.json()["error"]


# -- the confirm page ------------------------------------------------------------------------


def browser() -> httpx.Client:
    return httpx.Client(follow_redirects=True, timeout=10)


def open_page(world: World, browser: httpx.Client, token: str, userid: str) -> httpx.Response:
    """Open a notice's confirm page as a member would: through WeCom's OAuth and back."""
    start = browser.get(f"{world.app_url}/n/{token}", follow_redirects=False)
    assert start.status_code == 302
    target = urlsplit(start.headers["location"])
    query = parse_qs(target.query)
    assert target.geturl().startswith(f"{world.sim.url}/connect/oauth2/authorize")
    assert query["redirect_uri"] == [f"{world.app_url}/n/auth"]  # the public URL, never Host
    assert query["state"][0] != token and len(query["state"][0]) >= 16
    return browser.get(as_member(start.headers["location"], userid))


def as_member(authorize: str, userid: str) -> str:
    """The simulator's authorize URL, answered for one member (the WeCom client's part)."""
    return urlsplit(authorize)._replace(fragment="").geturl() + f"&as={userid}"


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def link_token(world: World, notice: dict[str, Any]) -> str:
    with world.db.read() as s:
        return str(s.scalar(select(Notice.link_token).where(Notice.id == notice["id"])))


def test_the_confirm_page_confirms_only_on_purpose(world: World) -> None:
    notice = send(world, sla_minutes=30, body="14:00 全员到一楼集合。")
    token = link_token(world, notice)
    member = recipients(world)[0]
    with browser() as http:
        page = open_page(world, http, token, member)
        assert page.status_code == 200 and notice["title"] in page.text and "14:00" in page.text
        assert receipts(world)[member][1] == "sent"  # opening the page confirms nothing
        forged = http.post(f"{world.app_url}/n/{token}", data={"action": "ack"})
        assert forged.status_code == 400 and receipts(world)[member][1] == "sent"
        world.clock.advance(timedelta(minutes=29))
        done = http.post(
            f"{world.app_url}/n/{token}", data={"action": "ack", "csrf_token": csrf_of(page)}
        )
        assert done.status_code == 200 and "已确认收到" in done.text and "逾期" not in done.text
    assert receipts(world)[member][1:] == ("acknowledged", False)
    world.clock.advance(timedelta(minutes=30))
    world.settle()  # processed long after: still on time, stamped at the request
    assert receipts(world)[member][1:] == ("acknowledged", False)


def test_the_confirm_page_takes_a_response(world: World) -> None:
    notice = send(world, audience={"users": ["huangyao"]}, sender="zhaoming")
    with browser() as http:
        page = open_page(world, http, link_token(world, notice), "huangyao")
        done = http.post(
            f"{world.app_url}/n/{link_token(world, notice)}",
            data={"action": "respond", "response": "下午三点前处理完", "csrf_token": csrf_of(page)},
        )
    assert done.status_code == 200 and "下午三点前处理完" in done.text
    world.settle()
    assert any("下午三点前处理完" in t for t in world.texts_to("zhaoming"))


def test_a_stranger_learns_nothing_and_old_links_lead_nowhere(world: World) -> None:
    notice = send(world, title="裁员名单", audience={"users": ["huangyao"]})
    with browser() as http:
        page = open_page(world, http, link_token(world, notice), "zhaoming")
        assert page.status_code == 403 and "裁员名单" not in page.text
        for guess in (f"/n/{notice['code']}", f"/n/{notice['code']}/ack", "/n/x" * 20, "/n/a%00b"):
            found = http.get(f"{world.app_url}{guess}", follow_redirects=False)
            assert found.status_code == 404 and "裁员名单" not in found.text


def test_the_state_must_come_back_to_the_browser_that_left(world: World) -> None:
    notice = send(world, audience={"users": ["huangyao"]})
    token = link_token(world, notice)
    with httpx.Client(follow_redirects=False) as mine, httpx.Client() as other:
        start = mine.get(f"{world.app_url}/n/{token}")
        back = httpx.get(as_member(start.headers["location"], "huangyao")).headers["location"]
        stolen = other.get(back)  # another browser replays the redirect
        assert stolen.status_code == 400 and "授权校验失败" in stolen.text
        tampered = mine.get(re.sub(r"state=[^&]+", "state=forged", back))
        assert tampered.status_code == 400
        mine.get(f"{world.app_url}/n/{token}")  # a fresh state, then a non-ASCII forgery
        odd = mine.get(re.sub(r"state=[^&]+", "state=%E6%94%B6%E5%88%B0", back))
        assert odd.status_code == 400


def test_without_a_public_url_the_link_channel_is_off(database_url: str) -> None:
    with make_world(database_url, public_url=None) as world:
        load_mirror(world.services.db, world.sim.state.org, world.clock.now())
        notice = send(world, audience={"users": ["huangyao"]})
        page = httpx.get(
            f"{world.app_url}/n/{link_token(world, notice)}", headers={"Host": "evil.example"}
        )
        assert page.status_code == 404 and "WECOM_APP_PUBLIC_URL" in page.text
        assert "evil.example" not in page.headers.get("location", "")


def test_an_invalid_mixed_case_recipient_is_marked_invalid(world: World) -> None:
    with world.db.begin() as s:  # mirrored, but gone from WeCom: its answer is lower-cased
        s.add(Employee(userid="GhostUser", name="幽灵", display_name="研发部-幽灵", status="active",
                       main_department=4, departments=[4], leader_in=[],
                       joined_at=world.clock.now(), updated_at=world.clock.now()))  # fmt: skip
    send(world, audience={"users": ["GhostUser", "huangyao"]})
    world.clock.advance(timedelta(minutes=45))
    world.settle()
    found = receipts(world)
    assert found["GhostUser"][1] == "invalid" and found["huangyao"][1] == "sent"
    overdue = {v["userid"] for v in overdue_report(world)["violations"]}
    assert overdue == {"huangyao"}  # nobody is fined for a card WeCom never delivered
