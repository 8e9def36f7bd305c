"""Group governance end to end through the simulator, with a fake clock: a group asked for and
approved by card, one rejected with a reason, a join request approved by the owner, someone
added outside the app removed with the posted reason (or held for the owner), a warning then a
removal with the reason posted and a rejoin blocked, and requests that time out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.world import World, make_world
from wecom_app.cli import main
from wecom_app.clock import BEIJING, FakeClock
from wecom_app.groups import requests, service
from wecom_app.groups.daily import check_all
from wecom_app.groups.rules import GroupRules
from wecom_app.groups.service import GroupSpec
from wecom_app.models import GroupBlock, GroupRequest, GroupViolation, ManagedGroup

REQUESTER, LEADER = "huangyao", "zhangyao"  # 平台研发部: an engineer and the department's leader
HR = "zhenglinwei"


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 1, day, hh, mm, tzinfo=BEIJING).astimezone(UTC)  # 5 Jan is a Monday


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with make_world(database_url, clock=FakeClock(at(5, 9, 30)), mirror=True,
                    console_admins=HR) as running:  # fmt: skip
        yield running


def post(world: World, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    with world.api as http:
        resp = http.post(path, json=body)
    assert resp.status_code == status, resp.text
    return dict(resp.json())


def cards_to(world: World, userid: str) -> list[dict[str, Any]]:
    with world.sim.state.lock:
        return [
            m["content"]
            for m in world.sim.state.messages
            if m["msgtype"] == "template_card" and userid in m["delivered"]
        ]


def posts_in(world: World, chatid: str) -> list[str]:
    return [m["content"]["content"] for m in world.chat(chatid)["messages"]]


def follow(world: World) -> None:
    """Let the worker's jobs run (the group follow-up runs every few seconds)."""
    world.settle()
    world.clock.advance(6)
    world.settle()


def ask_for_group(world: World, **extra: Any) -> dict[str, Any]:
    body = {"kind": "create", "requester": REQUESTER, "name": "支付重构项目群",
            "group_kind": "项目群", "purpose": "支付系统重构的日常沟通", "owner": REQUESTER,
            "rules": {"users": [REQUESTER, "luoxinlei", "sunqiangjie"]}, **extra}  # fmt: skip
    made = post(world, "/api/v1/group-requests", body, 201)["request"]
    world.settle()
    return made


def make_group(world: World, chatid: str = "platform", **rules: Any) -> None:
    spec = GroupSpec(name="平台研发部工作群", owner=LEADER, chatid=chatid,
                     rules=GroupRules.from_dict(rules or {"departments": [4]}))  # fmt: skip
    group, _ = service.create_now(world.services, world.outbox, spec, actor="test")
    assert group.status == "active"
    world.settle()


def test_a_group_request_approved_by_card_is_created_announced_and_registered(
    world: World,
) -> None:
    made = ask_for_group(world)
    assert made["approver"] == LEADER and made["state"] == "pending"
    card = cards_to(world, LEADER)[-1]
    assert card["main_title"]["title"] == "建群申请"
    assert [b["text"] for b in card["button_list"]] == ["同意", "驳回"]
    assert any(h.get("url", "").endswith(f"/console/requests/{made['id']}")
               for h in card["horizontal_content_list"])  # fmt: skip
    assert "等待 平台研发部-张瑶 审批" in world.texts_to(REQUESTER)[-1]

    # someone else's click decides nothing
    assert world.sim.events.deliver_card_click(
        "luoxinlei", card["task_id"], requests.APPROVE_KEY
    ).ok
    world.settle()
    assert "不由您审批" in world.texts_to("luoxinlei")[-1]

    world.clock.advance(60)
    assert world.sim.events.deliver_card_click(LEADER, card["task_id"], requests.APPROVE_KEY).ok
    world.settle()
    with world.db.begin() as session:
        group = session.scalars(
            select(ManagedGroup).where(ManagedGroup.name == "支付重构项目群")
        ).one()
        chatid, approved_at = group.chatid, group.approved_at
    chat = world.chat(chatid)
    assert sorted(chat["userlist"]) == sorted([REQUESTER, "luoxinlei", "sunqiangjie"])
    assert chat["owner"] == REQUESTER
    announced = posts_in(world, chatid)[0]
    assert "由 平台研发部-黄瑶 申请，经 平台研发部-张瑶 审批建立" in announced
    assert "支付系统重构的日常沟通" in announced
    told = world.texts_to(REQUESTER)
    assert any("已由 平台研发部-张瑶 同意" in t for t in told)
    assert any("已建好" in t for t in told)
    with world.sim.state.lock:
        updates = [u for u in world.sim.state.card_updates if u["userids"] == [LEADER]]
    assert updates and updates[-1]["replace_name"] == "已同意"

    with world.api as http:
        entry = next(g for g in http.get("/api/v1/groups/register").json()["groups"]
                     if g["chatid"] == chatid)  # fmt: skip
    assert entry["approval_label"] == "申请审批" and entry["approved_by"] == "平台研发部-张瑶"
    assert (
        entry["requested_by"] == "平台研发部-黄瑶" and entry["purpose"] == "支付系统重构的日常沟通"
    )
    assert entry["members"] == 3 and entry["approved_at"] == approved_at.isoformat()

    # a second click (a double tap, a second later) changes nothing
    world.clock.advance(1)
    assert world.sim.events.deliver_card_click(LEADER, card["task_id"], requests.APPROVE_KEY).ok
    world.settle()
    assert "已同意，无需再审批" in world.texts_to(LEADER)[-1]


def test_a_rejection_asks_for_the_reason_and_tells_the_requester(world: World) -> None:
    made = ask_for_group(world)
    card = cards_to(world, LEADER)[-1]
    assert world.sim.events.deliver_card_click(LEADER, card["task_id"], requests.REJECT_KEY).ok
    world.settle()
    assert f"申请{made['id']} 驳回" in world.texts_to(LEADER)[-1]
    with world.db.begin() as session:
        assert session.get(GroupRequest, made["id"]).state == "pending"  # not yet: no reason

    assert world.sim.events.deliver_text(LEADER, f"申请{made['id']} 驳回").ok  # still none
    world.settle()
    assert "请写明驳回理由" in world.texts_to(LEADER)[-1]
    assert world.sim.events.deliver_text(LEADER, f"申请{made['id']} 驳回：与现有部门群重复").ok
    world.settle()
    assert world.texts_to(REQUESTER)[-1].endswith("未获同意。理由：与现有部门群重复")
    assert "已驳回" in world.texts_to(LEADER)[-1]
    with world.db.begin() as session:
        request = session.get(GroupRequest, made["id"])
        assert (request.state, request.decided_by) == ("rejected", LEADER)
        assert session.scalars(select(ManagedGroup)).all() == []
    assert world.calls("appchat/create") == 0


def test_a_request_names_its_approver_and_refuses_what_cannot_be_built(world: World) -> None:
    # a department leader asking goes to the leader above them (研发中心's 赵明)
    made = ask_for_group(world, requester=LEADER, owner=LEADER,
                         rules={"users": [LEADER, "luoxinlei"]})  # fmt: skip
    assert made["approver"] == "zhaoming"
    bad = post(world, "/api/v1/group-requests", {"kind": "create", "requester": REQUESTER,
               "name": "x", "purpose": "p", "owner": REQUESTER, "rules": {"users": [REQUESTER]}},
               409)  # fmt: skip
    assert "至少需要 2 名成员" in bad["error"]
    no_purpose = post(world, "/api/v1/group-requests", {"kind": "create", "requester": REQUESTER,
                      "name": "x", "owner": REQUESTER,
                      "rules": {"users": [REQUESTER, "luoxinlei"]}}, 409)  # fmt: skip
    assert "用途" in no_purpose["error"]


def test_a_join_request_by_text_approved_by_the_owner(world: World) -> None:
    make_group(world)
    outsider = "liuxuanmin"  # 研发中心, not in 平台研发部
    assert world.sim.events.deliver_text(outsider, "入群 平台研发部工作群 负责整理平台周会纪要").ok
    world.settle()
    assert "等待 平台研发部-张瑶 审批" in world.texts_to(outsider)[-1]
    card = cards_to(world, LEADER)[-1]
    assert card["main_title"]["title"] == "入群申请"
    assert "负责整理平台周会纪要" in card["sub_title_text"]
    assert world.sim.events.deliver_card_click(LEADER, card["task_id"], requests.APPROVE_KEY).ok
    follow(world)
    assert outsider in world.chat("platform")["userlist"]
    assert "稍后即被拉入群" in world.texts_to(outsider)[-1]
    with world.db.begin() as session:
        group = session.scalars(select(ManagedGroup).where(ManagedGroup.chatid == "platform")).one()
        assert outsider in group.rules["users"]
        assert group.rules["approved"][outsider]["by"] == LEADER
    # the daily check keeps an approved member
    check_all(world.services)
    world.settle()
    assert outsider in world.chat("platform")["userlist"]
    # asking again says they are in already
    assert world.sim.events.deliver_text(outsider, "入群 platform").ok
    world.settle()
    assert "已是群「平台研发部工作群」的成员" in world.texts_to(outsider)[-1]


def test_someone_added_outside_the_app_is_removed_with_the_reason_posted(world: World) -> None:
    make_group(world)
    world.sim_post("/_sim/appchats/platform/invite", {"by": "luoxinlei", "userids": ["chenjiayue"]})
    assert "chenjiayue" in world.chat("platform")["userlist"]
    summary = check_all(world.services)
    world.settle()
    assert summary["drifted"][0]["joined_outside"] == ["chenjiayue"]
    assert "chenjiayue" not in world.chat("platform")["userlist"]
    assert posts_in(world, "platform")[-1] == "总经办-陈佳悦：未经审批加入，已移出本群"


def test_under_hold_an_outside_join_waits_for_the_owner_who_may_adopt_it(
    database_url: str, tmp_path: Path
) -> None:
    policy = tmp_path / "group-policy.yaml"
    policy.write_text("member_check:\n  every: 1h\n  outside_joins: hold\n", encoding="utf-8")
    with make_world(database_url, clock=FakeClock(at(5, 9, 30)), mirror=True,
                    group_policy_file=str(policy)) as world:  # fmt: skip
        make_group(world)
        world.sim_post("/_sim/appchats/platform/invite",
                       {"by": "luoxinlei", "userids": ["chenjiayue", "guolimin"]})  # fmt: skip
        check_all(world.services)
        world.settle()
        assert {"chenjiayue", "guolimin"} <= set(world.chat("platform")["userlist"])  # held
        held = [c for c in cards_to(world, LEADER) if c["main_title"]["title"] == "群外加入待确认"]
        assert len(held) == 2
        by_name = {c["horizontal_content_list"][1]["value"]: c["task_id"] for c in held}
        keep, drop = by_name["总经办-陈佳悦"], by_name["总经办-郭丽敏"]
        assert world.sim.events.deliver_card_click(LEADER, keep, requests.APPROVE_KEY).ok
        assert world.sim.events.deliver_card_click(LEADER, drop, requests.REJECT_KEY).ok
        follow(world)
        members = world.chat("platform")["userlist"]
        assert "chenjiayue" in members and "guolimin" not in members
        assert posts_in(world, "platform")[-1] == "总经办-郭丽敏：未经审批加入，已移出本群"
        check_all(world.services)  # the next check keeps the adopted member
        world.settle()
        assert "chenjiayue" in world.chat("platform")["userlist"]


def test_a_warning_then_a_removal_with_the_reason_and_a_rejoin_blocked(world: World) -> None:
    make_group(world)
    offender = "luoxinlei"
    body = {"userid": offender, "rule": "广告", "note": "发布贷款广告", "by": LEADER}
    first = post(world, "/api/v1/groups/platform/violations", body, 201)["violation"]
    world.settle()
    assert (first["action"], first["count"]) == ("warning", 1)
    assert posts_in(world, "platform")[-1] == (
        "警告：平台研发部-罗鑫磊 违反群规「广告」（发布贷款广告），第 1 次。90 天内再次违反将被移出本群。"
    )
    assert "已被警告（第 1 次）" in world.texts_to(offender)[-1]
    assert offender in world.chat("platform")["userlist"]

    world.clock.set(at(12, 10))
    second = post(world, "/api/v1/groups/platform/violations", {**body, "note": "再次发布广告"},
                  201)["violation"]  # fmt: skip
    world.settle()
    assert (second["action"], second["count"]) == ("removal", 2)
    assert offender not in world.chat("platform")["userlist"]
    assert posts_in(world, "platform")[-1] == (
        "平台研发部-罗鑫磊：第 2 次违反群规「广告」（再次发布广告），"
        "2026-02-11 10:00 前不得再入群，已移出本群"
    )

    # the rules (all of 平台研发部) would add them back: the block keeps them out
    check_all(world.services)
    follow(world)
    assert offender not in world.chat("platform")["userlist"]
    assert world.sim.events.deliver_text(offender, "入群 平台研发部工作群 我会注意").ok
    world.settle()
    assert world.texts_to(offender)[-1] == (
        "您已被移出群「平台研发部工作群」，2026-02-11 10:00 前不能再申请加入。"
        "原因：第 2 次违反群规「广告」（再次发布广告）"
    )

    # the ledger and HR's report carry both; withdrawing the second lifts the block
    with world.api as http:
        ledger = http.get("/api/v1/groups/violations?chatid=platform").json()["violations"]
        assert [v["action"] for v in ledger] == ["removal", "warning"]
        report = http.get("/api/v1/reports/overdue?from=2026-01-01").json()
        assert [v["rule"] for v in report["group_violations"]] == ["广告", "广告"]
    done = post(world, f"/api/v1/groups/violations/{second['id']}/withdraw",
                {"by": HR, "note": "误判：系同名账号所发"})["violation"]  # fmt: skip
    assert done["withdrawn_by"] == HR
    follow(world)
    assert offender in world.chat("platform")["userlist"]
    with world.db.begin() as session:
        assert session.scalars(select(GroupBlock)).one().lifted_at is not None
        assert len(session.scalars(select(GroupViolation)).all()) == 2  # kept, marked


def test_after_the_window_a_breach_is_a_first_again_and_a_block_ends(world: World) -> None:
    make_group(world)
    body = {"userid": "sunqiangjie", "rule": "刷屏", "note": "", "by": LEADER}
    post(world, "/api/v1/groups/platform/violations", body, 201)
    world.clock.set(at(5, 9, 30) + timedelta(days=91))
    again = post(world, "/api/v1/groups/platform/violations", body, 201)["violation"]
    assert (again["action"], again["count"]) == ("warning", 1)
    removed = post(world, "/api/v1/groups/platform/remove",
                   {"userid": "sunqiangjie", "reason": "多次在群内发布无关内容", "by": HR},
                   201)["violation"]  # fmt: skip
    world.settle()
    assert removed["action"] == "removal"
    assert posts_in(world, "platform")[-1].startswith("平台研发部-孙强杰：多次在群内发布无关内容，")
    world.clock.advance(31 * 86400)  # the direct removal's 30 days are over
    check_all(world.services)
    world.settle()
    assert "sunqiangjie" in world.chat("platform")["userlist"]


def test_an_unanswered_request_reminds_its_approver_then_expires(world: World) -> None:
    made = ask_for_group(world)
    world.clock.advance(24 * 3600 + 60)
    world.settle()
    assert f"申请{made['id']} 仍在等待您审批" in world.texts_to(LEADER)[-1]
    world.clock.advance(48 * 3600)
    world.settle()
    assert "超时未获审批，已自动关闭" in world.texts_to(REQUESTER)[-1]
    card = cards_to(world, LEADER)[-1]
    assert world.sim.events.deliver_card_click(LEADER, card["task_id"], requests.APPROVE_KEY).ok
    world.settle()
    assert "已超时，无需再审批" in world.texts_to(LEADER)[-1]
    assert world.calls("appchat/create") == 0


def test_archiving_stops_managing_a_group_and_says_why(world: World) -> None:
    make_group(world)
    done = post(world, "/api/v1/groups/platform/archive", {"by": HR, "reason": "项目结束"})
    assert "不支持解散群聊" in done["note"]
    world.settle()
    assert posts_in(world, "platform")[-1] == "本群已归档，不再由应用管理成员。原因：项目结束"
    world.sim_post("/_sim/appchats/platform/invite", {"by": LEADER, "userids": ["chenjiayue"]})
    summary = check_all(world.services)
    world.settle()
    assert summary["groups"] == 0 and "chenjiayue" in world.chat("platform")["userlist"]
    with world.api as http:
        entry = http.get("/api/v1/groups/register").json()["groups"][0]
        assert (entry["status_label"], entry["archive_reason"]) == ("已归档", "项目结束")
        csv = http.get("/api/v1/groups/register?format=csv")
        assert csv.headers["content-type"].startswith("text/csv")
        assert "项目结束" in csv.text and "群台账" not in csv.text


def cli(world: World, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), env=world.worker_env(), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return (
        result.stdout if result.exit_code == 0 else result.output
    )  # JSON on stdout; logs on stderr


def test_the_cli_asks_decides_records_and_exports(world: World, tmp_path: Path) -> None:
    world.clock.set(datetime.now(UTC))  # the CLI runs on the real clock
    made = json.loads(cli(world, "groups", "request", "--requester", REQUESTER, "--name",
                          "支付重构项目群", "--kind", "项目群", "--purpose", "支付系统重构",
                          "--owner", REQUESTER, "--user", "luoxinlei", "--json"))  # fmt: skip
    assert made["approver"] == LEADER
    assert f"申请{made['id']}" in cli(world, "groups", "requests", "--state", "pending")
    refused = cli(world, "groups", "reject", str(made["id"]), "--by", HR, "--reason", "", code=1)
    assert "请写明驳回理由" in refused
    assert "正在创建" in cli(world, "groups", "approve", str(made["id"]), "--by", HR)
    world.clock.set(datetime.now(UTC))
    world.settle()
    with world.db.begin() as session:
        chatid = session.scalars(select(ManagedGroup.chatid)).one()
    assert "第 1 次" in cli(world, "groups", "violation", chatid, "luoxinlei", "--rule", "广告",
                             "--by", HR)  # fmt: skip
    assert "广告" in cli(world, "groups", "violations", "--chatid", chatid)
    target = tmp_path / "register.xlsx"
    assert "1 个群" in cli(world, "groups", "register", "--format", "xlsx", "--output", str(target))
    assert target.read_bytes()[:2] == b"PK"
    assert "不支持解散群聊" in cli(
        world, "groups", "archive", chatid, "--by", HR, "--reason", "结束"
    )
    survey = json.loads(cli(world, "survey", "create", "--title", "满意度", "--question", "满意吗",
                            "--option", "满意", "--option", "不满意", "--department", "4",
                            "--by", HR, "--json"))  # fmt: skip
    assert survey["recipients"] > 20
    assert "问卷进行中" in cli(world, "survey", "results", str(survey["id"]))
    assert "已结束" in cli(world, "survey", "close", str(survey["id"]))
    assert "不显示结果" in cli(world, "survey", "results", str(survey["id"]))
    assert "暂无反馈" in cli(world, "survey", "feedback")


def test_groups_declared_in_the_file_are_registered_as_such(world: World) -> None:
    from wecom_app.groups.config import apply_config

    example = Path(__file__).resolve().parent.parent / "config" / "groups.example.yaml"
    done = apply_config(world.services, world.outbox, example)
    world.settle()
    with world.api as http:
        rows = http.get("/api/v1/groups/register").json()["groups"]
    assert len(rows) == len(done) and {r["approval_label"] for r in rows} == {
        "配置文件声明（未经申请）"
    }
    apply_config(world.services, world.outbox, example)  # applying again keeps that
    with world.api as http:
        again = http.get("/api/v1/groups/register").json()["groups"]
    assert [r["approval"] for r in again] == ["config"] * len(rows)


def test_hr_s_report_file_has_a_sheet_for_group_violations(world: World) -> None:
    from io import BytesIO

    from openpyxl import load_workbook

    make_group(world)
    post(world, "/api/v1/groups/platform/violations",
         {"userid": "luoxinlei", "rule": "刷屏", "note": "", "by": LEADER}, 201)  # fmt: skip
    with world.api as http:
        sheet = http.get("/api/v1/reports/overdue?from=2026-01-01&format=xlsx")
    book = load_workbook(BytesIO(sheet.content), read_only=True)
    rows = list(book["群内违规"].iter_rows(values_only=True))
    assert rows[0][:5] == ("时间", "群", "成员", "部门", "违反群规")
    assert rows[1][1:5] == ("平台研发部工作群", "平台研发部-罗鑫磊", "平台研发部", "刷屏")


def test_withdrawing_a_removal_brings_an_approved_member_back(world: World) -> None:
    make_group(world)
    outsider = "liuxuanmin"
    assert world.sim.events.deliver_text(outsider, "入群 platform 周会纪要").ok
    world.settle()
    card = cards_to(world, LEADER)[-1]
    assert world.sim.events.deliver_card_click(LEADER, card["task_id"], requests.APPROVE_KEY).ok
    follow(world)
    assert outsider in world.chat("platform")["userlist"]
    removed = post(world, "/api/v1/groups/platform/remove",
                   {"userid": outsider, "reason": "泄露会议内容", "by": HR}, 201)["violation"]  # fmt: skip
    follow(world)
    assert outsider not in world.chat("platform")["userlist"]
    post(world, f"/api/v1/groups/violations/{removed['id']}/withdraw", {"by": HR, "note": "误会"})
    follow(world)
    assert outsider in world.chat("platform")["userlist"]
    with world.db.begin() as session:
        group = session.scalars(select(ManagedGroup).where(ManagedGroup.chatid == "platform")).one()
        assert group.rules["approved"][outsider]["by"] == LEADER


def test_a_named_approver_never_approves_their_own_request(
    database_url: str, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "requests:\n  approvers:\n    项目群: [huangyao, zhaoming]\n", encoding="utf-8"
    )
    with make_world(database_url, clock=FakeClock(at(5, 9, 30)), mirror=True,
                    group_policy_file=str(policy)) as world:  # fmt: skip
        assert ask_for_group(world)["approver"] == "zhaoming"  # huangyao asks: the next one


def test_a_held_newcomer_who_leaves_is_not_added_back(database_url: str, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("member_check:\n  outside_joins: hold\n", encoding="utf-8")
    with make_world(database_url, clock=FakeClock(at(5, 9, 30)), mirror=True,
                    group_policy_file=str(policy)) as world:  # fmt: skip
        make_group(world)
        world.sim_post("/_sim/appchats/platform/invite", {"by": LEADER, "userids": ["guolimin"]})
        check_all(world.services)
        world.settle()
        with world.sim.state.lock:  # they leave in the client while the owner has not decided
            world.sim.state.chats["platform"]["userlist"].remove("guolimin")
        check_all(world.services)
        follow(world)
        assert "guolimin" not in world.chat("platform")["userlist"]
