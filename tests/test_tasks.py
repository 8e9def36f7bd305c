"""Leaders' tasks through the simulator with a fake clock: given to a department's leader and a
person, answered 收到, then a response, then 已解决 (by text, by the card, from 我的); the
leader hears each answer; a task not resolved by its time is a violation with its fine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from tests.test_console import csrf, signed_in
from tests.world import World, make_world
from wecom_app.clock import BEIJING, FakeClock
from wecom_app.models import Receipt
from wecom_app.notices import delivery
from wecom_app.notices.service import NoticeError, draft_from, resolve_at
from wecom_app.sla.policy import PolicyBook

LEADER, HEAD, ENGINEER = "zhaoming", "wangxuanqiang", "huangyao"  # 研发中心, 移动研发部's leader


def at(hh: int, mm: int) -> datetime:
    return datetime(2026, 1, 5, hh, mm, tzinfo=BEIJING).astimezone(UTC)  # a Monday


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with make_world(database_url, clock=FakeClock(at(9, 30)), mirror=True,
                    console_admins="zhenglinwei", serve=True) as running:  # fmt: skip
        yield running


def give(world: World, **extra: Any) -> dict[str, Any]:
    body = {"title": "修复移动端登录故障", "body": "今天之内解决，先回个方案", "type": "task",
            "sender": LEADER, "author": "研发中心", **extra}  # fmt: skip
    with world.api as http:
        resp = http.post("/api/v1/notices", json=body)
    assert resp.status_code == 201, resp.text
    world.settle()
    return dict(resp.json())


def card_of(world: World, userid: str) -> dict[str, Any]:
    with world.sim.state.lock:
        cards = [m for m in world.sim.state.messages if m["msgtype"] == "template_card"]
        return [m for m in cards if userid in m["delivered"]][-1]


def report(world: World, hh: int, mm: int) -> list[dict[str, Any]]:
    stamp = at(hh, mm).isoformat().replace("+00:00", "Z")
    with world.api as http:
        return list(http.get(f"/api/v1/reports/overdue?as_of={stamp}").json()["violations"])


def test_a_task_answered_then_resolved_and_the_leader_hears_each_answer(world: World) -> None:
    made = give(world, audience={"leaders_of": [5], "users": [ENGINEER]}, resolve_by="18:00")
    code = made["notice"]["code"]
    assert made["recipients"] == 2 and made["notice"]["resolve_by"] == at(18, 0).isoformat()
    card = card_of(world, HEAD)["content"]
    assert [b["text"] for b in card["button_list"]] == ["收到", "已解决"]
    assert "01-05 18:00 前解决" in card["main_title"]["desc"]

    world.clock.set(at(9, 36))
    assert world.sim.events.deliver_card_click(HEAD, card["task_id"], delivery.ACK_KEY).ok
    world.clock.set(at(9, 40))
    assert world.sim.events.deliver_text(HEAD, f"#{code} 下午两点前给出修复方案").ok
    world.clock.set(at(10, 45))  # past the 30 minutes: the card's 已解决 answers it, late
    task = card_of(world, ENGINEER)["content"]["task_id"]
    assert world.sim.events.deliver_card_click(ENGINEER, task, delivery.RESOLVE_KEY).ok
    world.clock.set(at(15, 20))
    assert world.sim.events.deliver_text(HEAD, f"#{code} 已解决").ok
    world.settle()

    told = world.texts_to(LEADER)
    assert any(
        f"任务 #{code}「修复移动端登录故障」：移动研发部-王轩强 收到（09:36）" in t for t in told
    )
    assert any("下午两点前给出修复方案" in t for t in told)  # the response, passed on
    assert any("王轩强 已解决（15:20）" in t for t in told)
    assert any("黄瑶 已解决（10:45）" in t for t in told)
    assert "已解决，并已告知布置人" in world.texts_to(HEAD)[-1]
    assert world.sim.events.deliver_text(HEAD, f"#{code} 已解决").ok  # again: nothing new
    world.settle()
    assert "无需重复" in world.texts_to(HEAD)[-1]
    assert sum("王轩强 已解决" in t for t in world.texts_to(LEADER)) == 1
    with world.db.read() as session:
        resolved = dict(session.execute(select(Receipt.employee_id, Receipt.resolved_at)).all())
    assert all(resolved.values())

    ledger = report(world, 19, 0)
    assert [(v["userid"], v["status"]) for v in ledger] == [(ENGINEER, "late")]  # 10:45 > 10:00


def test_a_task_not_resolved_in_time_is_a_violation_and_my_page_resolves(world: World) -> None:
    made = give(world, audience={"users": [ENGINEER, "luoxinlei"]}, resolve_by="12:00")
    code = made["notice"]["code"]
    employee = signed_in(world, ENGINEER)
    token = csrf(employee, "/console/me")
    page = employee.get("/console/me").get_data(as_text=True)
    assert "01-05 12:00 前解决" in page and 'value="resolve"' in page
    world.clock.set(at(9, 40))
    employee.post(f"/console/me/{code}", data={"csrf_token": token, "action": "ack"})
    page = employee.get("/console/me").get_data(as_text=True)
    assert f'id="unresolved-{code}"' in page  # answered, not yet resolved
    world.clock.set(at(12, 30))
    done = employee.post(f"/console/me/{code}", data={"csrf_token": token, "action": "resolve"})
    assert done.status_code == 303
    assert f'id="unresolved-{code}"' not in employee.get("/console/me").get_data(as_text=True)
    world.settle()

    ledger = {(v["userid"], v["status"]): v for v in report(world, 13, 0)}
    assert set(ledger) == {(ENGINEER, "resolved_late"), ("luoxinlei", "overdue"),
                           ("luoxinlei", "unresolved")}  # fmt: skip
    assert all(v["penalty"] == "100" for v in ledger.values())  # the task's fine, each
    assert ledger[(ENGINEER, "resolved_late")]["due_at"] == at(12, 0).isoformat()
    plain = give(world, type="notice", audience={"users": [ENGINEER]})
    assert plain["notice"]["resolve_by"] is None  # only tasks need resolving
    assert len(card_of(world, ENGINEER)["content"]["button_list"]) == 1


def test_resolve_by_and_leaders_of_are_checked() -> None:
    book = PolicyBook()
    base = {"title": "t", "audience": {"users": ["a"]}}
    assert draft_from({**base, "type": "task"}, book).resolve_by == "24:00"
    assert draft_from({**base, "type": "notice"}, book).resolve_by is None
    nine = datetime(2026, 1, 5, 9, 0, tzinfo=BEIJING)
    assert resolve_at("24:00", nine) == datetime(2026, 1, 6, 0, 0, tzinfo=BEIJING)
    assert resolve_at("2026-01-05T18:00:00+08:00", nine) == datetime(2026, 1, 5, 18, tzinfo=BEIJING)
    for bad, message in (("25:00", "时刻无效"), ("2026-01-05T18:00:00", "时区"), ("明天", "无法识别"),
                         (18, "HH:MM")):  # fmt: skip
        with pytest.raises(NoticeError, match=message):
            draft_from({**base, "type": "task", "resolve_by": bad}, book)
    with pytest.raises(NoticeError, match="leaders_of"):
        draft_from({**base, "audience": {"leaders_of": ["五"]}}, book)


def test_a_department_without_a_leader_is_named(world: World) -> None:
    with world.services.db.begin() as session:
        from wecom_app.models import Department

        session.get(Department, 6).leaders = []  # 测试部 without a leader
    with world.api as http:
        resp = http.post("/api/v1/notices", json={"title": "x", "type": "task",
                                                  "audience": {"leaders_of": [6, 99]}})  # fmt: skip
    assert resp.status_code == 400
    assert "leader:6" in resp.json()["error"] and "department:99" in resp.json()["error"]


def test_a_task_passed_on_twice_one_hand_over_counted_as_shirking(world: World) -> None:
    code = give(world, audience={"leaders_of": [5]}, resolve_by="18:00")["notice"]["code"]
    world.clock.set(at(9, 40))  # to someone in his own department: not 推诿
    assert world.sim.events.deliver_text(HEAD, f"#{code} 转交 tanglintao 他负责登录模块").ok
    world.settle()
    assert "已转交给 移动研发部-唐琳涛，布置人已收到通知。" in world.texts_to(HEAD)[-1]
    assert card_of(world, "tanglintao")["content"]["task_id"]  # the new owner's card
    world.clock.set(at(10, 0))  # passed on again in time, outside 移动研发部: 推诿 by two rules
    assert world.sim.events.deliver_text(
        "tanglintao", f"#{code} 转交给 平台研发部-黄瑶，后端接口的问题"
    ).ok
    world.settle()
    assert "记为推诿" in world.texts_to("tanglintao")[-1]
    told = [t for t in world.texts_to(LEADER) if "转交给" in t]
    assert len(told) == 2 and "推诿：转给本部门以外的人、同一任务再次转交" in told[1]
    assert world.sim.events.deliver_text(HEAD, f"#{code} 转交 huangyao 再转").ok  # not his now
    world.settle()
    assert "现在不由您负责" in world.texts_to(HEAD)[-1]
    old_card = card_of(world, HEAD)["content"]["task_id"]
    assert world.sim.events.deliver_card_click(HEAD, old_card, delivery.RESOLVE_KEY).ok
    world.settle()  # his old card's 已解决 after passing it on: nothing resolved, nobody told
    assert not any("王轩强 已解决" in t for t in world.texts_to(LEADER))

    with world.db.read() as session:
        rows = {r.employee_id: r for r in session.scalars(select(Receipt))}
    assert len(rows) == 3 and sum(r.handed_over_at is not None for r in rows.values()) == 2
    assert all(r.ack_channel == "handover" for r in rows.values() if r.handed_over_at)
    engineer = next(r for r in rows.values() if r.handed_over_at is None)
    assert engineer.state == "sent" and engineer.due_at == at(10, 30)  # their clock starts anew

    with world.api as http:
        listed = http.get(f"/api/v1/handovers?notice={code}").json()["handovers"]
        assert [(h["from"], h["to"], h["shirking"]) for h in listed] == [
            ("tanglintao", ENGINEER, True), (HEAD, "tanglintao", False)]  # fmt: skip
        ledger = http.get(
            f"/api/v1/reports/overdue?as_of={at(10, 20).isoformat()}".replace("+00:00", "Z")
        ).json()
        assert [(v["userid"], v["status"], v["penalty"]) for v in ledger["violations"]] == [
            ("tanglintao", "shirking", "50")]  # fmt: skip
        assert {p["userid"]: (p["handovers"], p["shirking"]) for p in ledger["handovers"]} == {
            "tanglintao": (1, 1), HEAD: (1, 0)}  # fmt: skip
        unmarked = http.post(f"/api/v1/handovers/{listed[0]['id']}/mark",
                             json={"shirking": False, "by": LEADER, "note": "接口确属平台组"})  # fmt: skip
        assert unmarked.status_code == 200 and unmarked.json()["handover"]["history"][0]["shirking"]
        again = http.get(
            f"/api/v1/reports/overdue?as_of={at(10, 20).isoformat()}".replace("+00:00", "Z")
        ).json()
        assert again["violations"] == []
        refused = http.post(
            f"/api/v1/handovers/{listed[0]['id']}/mark", json={"shirking": "no", "by": LEADER}
        )
        assert refused.status_code == 400
        by_api = http.post(f"/api/v1/notices/{code}/handover",
                           json={"from": ENGINEER, "to": LEADER, "reason": "需要领导协调资源"})  # fmt: skip
        assert by_api.status_code == 201, by_api.text
        assert set(by_api.json()["handover"]["rules"]) == {
            "outside_department",
            "back_to_leader",
            "repeat",
        }
        no_reason = http.post(f"/api/v1/notices/{code}/handover", json={"from": LEADER, "to": HEAD})
        assert no_reason.status_code == 409 and "原因" in no_reason.json()["error"]


def test_the_handover_cli_and_the_policy_keys(world: World) -> None:
    from click.testing import CliRunner

    from wecom_app.cli import main
    from wecom_app.errors import ConfigError
    from wecom_app.sla.policy import load_policy

    code = give(world, audience={"users": [ENGINEER]})["notice"]["code"]

    def run(*args: str, exit_code: int = 0) -> str:
        result = CliRunner().invoke(main, list(args), env=world.worker_env())
        assert result.exit_code == exit_code, result.output
        return (
            result.stdout if result.exit_code == 0 else result.output
        )  # JSON on stdout; logs on stderr

    out = run(
        "notice", "handover", code, "--from", ENGINEER, "--to", "luoxinlei", "--reason", "他熟悉"
    )
    assert "黄瑶 → 平台研发部-罗鑫磊" in out and "推诿" not in out  # same department, first
    ident = run("notice", "handovers", "--json").split('"id": ')[1].split(",")[0]
    assert "推诿（zhaoming：复核" in run("notice", "handover-mark", ident, "--shirking", "--by",
                                          LEADER, "--note", "复核后认定")  # fmt: skip
    assert "没有找到在职成员：nobody" in run("notice", "handover", code, "--from", "luoxinlei", "--to",
                                         "nobody", "--reason", "x", exit_code=1)  # fmt: skip

    book = load_policy(None, "types:\n  task:\n    handover:\n      shirking: [repeat]\n"
                             "      penalty: 20\n")  # fmt: skip
    assert (
        book.for_type("task").shirking == {"repeat"}
        and book.for_type("task").shirking_penalty == 20
    )
    with pytest.raises(ConfigError, match="outside_department"):
        load_policy(None, "types:\n  task:\n    handover:\n      shirking: [blame]\n")


def test_hr_reports_carry_tasks_hand_overs_and_fines(world: World) -> None:
    import io

    from openpyxl import load_workbook

    code = give(world, audience={"leaders_of": [5], "users": [ENGINEER]}, resolve_by="12:00")[
        "notice"
    ]["code"]
    world.clock.set(at(9, 40))
    assert world.sim.events.deliver_text(HEAD, f"#{code} 先排查网关，十一点前给结论").ok
    world.clock.set(at(9, 50))
    assert world.sim.events.deliver_text(ENGINEER, f"#{code} 转交 hanyang 他负责网关").ok
    world.clock.set(at(11, 0))
    assert world.sim.events.deliver_text(HEAD, f"#{code} 已解决").ok
    world.settle()
    stamp = at(13, 0).isoformat().replace("+00:00", "Z")
    with world.api as http:
        data = http.get(f"/api/v1/reports/overdue?as_of={stamp}").json()
        xlsx = http.get(f"/api/v1/reports/overdue?as_of={stamp}&format=xlsx").content
    tasks = {t["userid"]: t for t in data["tasks"]}
    assert {k: tasks[HEAD][k] for k in ("tasks", "answered", "on_time", "responded", "resolved",
                                         "resolved_on_time")} == dict.fromkeys(
        ("tasks", "answered", "on_time", "responded", "resolved", "resolved_on_time"), 1)  # fmt: skip
    assert tasks[ENGINEER]["answered"] == 1 and tasks[ENGINEER]["resolved"] == 0  # passed on
    assert tasks["hanyang"]["answered"] == 0  # the new owner is silent: overdue and unresolved
    statuses = sorted((v["userid"], v["status"]) for v in data["violations"])
    assert statuses == [("hanyang", "overdue"), ("hanyang", "unresolved"), (ENGINEER, "shirking")]
    fines = {name: (amount, count) for name, amount, count in data["fines"]["people"]}
    assert fines["移动研发部-韩洋"] == ("200", 2) and fines["平台研发部-黄瑶"] == ("50", 1)
    assert data["penalty_total"] == "250"
    with world.api as http:
        later = http.get(f"/api/v1/reports/overdue?as_of={stamp}&from=2026-01-05T12:30").json()
        after = http.get(f"/api/v1/reports/overdue?as_of={stamp}&from=2026-01-06")
        wrong = http.get(f"/api/v1/reports/overdue?as_of={stamp}&from=2026-02-30")
    assert later["since"] == "2026-01-05T04:30:00+00:00"  # 12:30 in Beijing
    assert later["violations"] == [] and later["tasks"] == []  # the period starts after it
    assert after.status_code == 400 and "晚于" in after.json()["error"]
    assert wrong.status_code == 400 and "from" in wrong.json()["error"]
    book = load_workbook(io.BytesIO(xlsx))
    assert {"任务", "转交与推诿", "罚款按人员", "罚款按部门"} <= set(book.sheetnames)
    assert [c.value for c in book["任务"][1]][3:] == ["任务数", "已回复", "按时回复", "给出回应",
                                                       "已解决", "按时解决"]  # fmt: skip
    assert book["罚款按人员"]["B2"].value == 200


def test_a_leader_gives_a_task_to_department_heads_from_the_console(world: World) -> None:
    leader = signed_in(world, LEADER)  # leads 研发中心 and everything below it
    token = csrf(leader, "/console/notices/new")
    form = {"csrf_token": token, "title": "排查移动端崩溃", "type": "task", "departments": ["5", "6"],
            "leaders_only": "1", "resolve_by": "17:30"}  # fmt: skip
    preview = leader.post("/console/notices/preview", data=form).get_data(as_text=True)
    assert "将发送给 2 人" in preview  # the two departments' leaders, not their people
    sent = leader.post("/console/notices", data=form)
    assert sent.status_code == 303, sent.get_data(as_text=True)[:500]
    with world.api as http:
        made = http.get("/api/v1/notices?limit=1").json()["notices"][0]
        receipts = http.get(f"/api/v1/notices/{made['code']}").json()["receipts"]
    assert made["resolve_by"] == at(17, 30).isoformat() and made["sender"] == LEADER
    assert {r["userid"] for r in receipts} == {HEAD, "zhaochen"}
