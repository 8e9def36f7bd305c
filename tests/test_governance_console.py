"""The console's governance pages over HTTP: an employee asks for a group and to join one, the
approver decides from the request's page, the owner records a breach, HR reads and exports the
register, archives a group, sends a survey and reads the feedback; and every page refuses
those it is not for."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests.test_console import csrf, signed_in
from tests.world import World, make_world
from wecom_app.clock import BEIJING, FakeClock
from wecom_app.groups import service
from wecom_app.groups.rules import GroupRules
from wecom_app.groups.service import GroupSpec
from wecom_app.models import GroupRequest, ManagedGroup

HR, LEADER, ENGINEER = "zhenglinwei", "zhangyao", "huangyao"


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    start = datetime(2026, 1, 5, 9, 30, tzinfo=BEIJING).astimezone(UTC)
    with make_world(database_url, clock=FakeClock(start), mirror=True, console_admins=HR,
                    session_secret="s" * 40) as running:  # fmt: skip
        yield running


def platform(world: World) -> None:
    spec = GroupSpec(name="平台研发部工作群", owner=LEADER, chatid="platform",
                     rules=GroupRules.from_dict({"departments": [4]}))  # fmt: skip
    service.create_now(world.services, world.outbox, spec, actor="test")
    world.settle()


def test_an_employee_asks_and_the_approver_decides_in_the_console(world: World) -> None:
    me = signed_in(world, ENGINEER)
    page = me.get("/console/requests").get_data(as_text=True)
    assert "申请建群" in page and "申请入群" in page
    token = csrf(me, "/console/requests")
    form = {"csrf_token": token, "kind": "create", "name": "支付重构项目群", "group_kind": "项目群",
            "purpose": "", "users": "luoxinlei, 平台研发部-孙强杰"}  # fmt: skip
    refused = me.post("/console/requests", data=form)
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert "请写明建群用途" in body and "支付重构项目群" in body  # the form keeps what was typed
    resp = me.post("/console/requests", data={**form, "purpose": "支付系统重构"})
    assert resp.status_code == 303
    ident = int(resp.headers["Location"].split("/")[-1].split("?")[0])
    detail = me.get(resp.headers["Location"]).get_data(as_text=True)
    assert "审批人 平台研发部-张瑶" in detail and "同意" not in detail.split("</dl>")[1]
    assert (
        me.post(f"/console/requests/{ident}/approve", data={"csrf_token": token}).status_code == 409
    )

    stranger = signed_in(world, "liuxuanmin")
    assert stranger.get(f"/console/requests/{ident}").status_code == 403
    boss = signed_in(world, LEADER)
    assert "待我审批" in boss.get("/console/requests").get_data(as_text=True)
    token = csrf(boss, f"/console/requests/{ident}")
    nothing = boss.post(f"/console/requests/{ident}/reject", data={"csrf_token": token})
    assert nothing.status_code == 409 and "请写明驳回理由" in nothing.get_data(as_text=True)
    done = boss.post(f"/console/requests/{ident}/approve", data={"csrf_token": token})
    assert done.status_code == 200 and "正在创建" in done.get_data(as_text=True)
    world.settle()
    with world.db.begin() as session:
        assert session.get(GroupRequest, ident).state == "approved"
        group = session.scalars(
            select(ManagedGroup).where(ManagedGroup.name == "支付重构项目群")
        ).one()
        assert group.status == "active" and group.approved_by == LEADER


def test_a_join_request_from_the_console(world: World) -> None:
    platform(world)
    asker = signed_in(world, "liuxuanmin")
    token = csrf(asker, "/console/requests")
    resp = asker.post("/console/requests", data={"csrf_token": token, "kind": "join",
                      "chatid": "platform", "reason": "周会纪要"})  # fmt: skip
    assert resp.status_code == 303
    again = asker.post("/console/requests", data={"csrf_token": token, "kind": "join",
                       "chatid": "platform", "reason": "周会纪要"})  # fmt: skip
    assert again.status_code == 422 and "正在等待审批" in again.get_data(as_text=True)


def test_the_owner_records_a_breach_and_hr_withdraws_it(world: World) -> None:
    platform(world)
    owner = signed_in(world, LEADER)
    page = owner.get("/console/groups/platform").get_data(as_text=True)
    assert "记录违规" in page and "广告" in page and "归档本群" not in page
    token = csrf(owner, "/console/groups/platform")
    resp = owner.post("/console/groups/platform/violations", data={"csrf_token": token,
                      "userid": "luoxinlei", "rule": "广告", "note": "贷款广告",
                      "action": "violation"})  # fmt: skip
    assert resp.status_code == 303
    world.settle()
    assert world.chat("platform")["messages"][-1]["content"]["content"].startswith("警告：")
    member = signed_in(world, "luoxinlei")
    assert member.get("/console/groups/platform").status_code == 403
    blocked = member.post("/console/groups/platform/violations",
                          data={"csrf_token": csrf(member, "/console/me"), "userid": LEADER,
                                "rule": "广告"})  # fmt: skip
    assert blocked.status_code == 403
    hr = signed_in(world, HR)
    page = hr.get("/console/groups/platform").get_data(as_text=True)
    assert "贷款广告" in page and "确认撤销" in page and "归档本群" in page
    ident = page.split("/console/violations/", 1)[1].split("/", 1)[0]
    token = csrf(hr, "/console/groups/platform")
    resp = hr.post(f"/console/violations/{ident}/withdraw", data={"csrf_token": token,
                   "note": "记错了人"})  # fmt: skip
    assert resp.status_code == 303
    assert 'class="struck"' in hr.get("/console/groups/platform").get_data(as_text=True)


def test_hr_reads_exports_the_register_and_archives(world: World) -> None:
    platform(world)
    hr = signed_in(world, HR)
    page = hr.get("/console/register").get_data(as_text=True)
    assert "平台研发部工作群" in page and "命令行创建" not in page
    sheet = hr.get("/console/register?format=xlsx")
    assert sheet.status_code == 200 and sheet.data[:2] == b"PK"
    assert signed_in(world, LEADER).get("/console/register").status_code == 403
    token = csrf(hr, "/console/groups/platform")
    done = hr.post("/console/groups/platform/archive", data={"csrf_token": token, "reason": "改组"})
    assert done.status_code == 200 and "不支持解散群聊" in done.get_data(as_text=True)
    assert "已归档" in hr.get("/console/register").get_data(as_text=True)


def test_hr_sends_a_survey_and_reads_feedback(world: World) -> None:
    hr = signed_in(world, HR)
    token = csrf(hr, "/console/surveys")
    bad = hr.post("/console/surveys", data={"csrf_token": token, "title": "满意度",
                  "question": "满意吗", "options": "只有一个", "departments": "4"})  # fmt: skip
    assert bad.status_code == 422 and "至少要有 2 个选项" in bad.get_data(as_text=True)
    resp = hr.post("/console/surveys", data={"csrf_token": token, "title": "满意度",
                   "question": "满意吗", "options": "满意\n一般\n不满意", "departments": "平台研发部"})  # fmt: skip
    assert resp.status_code == 303
    results = hr.get(resp.headers["Location"]).get_data(as_text=True)
    assert "问卷进行中" in results
    ident = resp.headers["Location"].rsplit("/", 1)[1]
    closed = hr.post(f"/console/surveys/{ident}/close", data={"csrf_token": token})
    assert closed.status_code == 303
    assert "为保护匿名，不显示结果" in hr.get(f"/console/surveys/{ident}").get_data(as_text=True)
    assert world.sim.events.deliver_text("huangyao", "匿名反馈：会议太多").ok
    world.settle()
    listing = hr.get("/console/surveys").get_data(as_text=True)
    assert "会议太多" in listing and "满意度" in listing
    assert "会议太多" in hr.get("/console/feedback?format=csv").get_data(as_text=True)
    assert signed_in(world, LEADER).get("/console/surveys").status_code == 403


def test_an_owner_cannot_police_the_owners_or_themselves(world: World) -> None:
    spec = GroupSpec(name="平台研发部工作群", owner=LEADER, backup_owner="luoxinlei",
                     chatid="platform", rules=GroupRules.from_dict({"departments": [4]}))  # fmt: skip
    service.create_now(world.services, world.outbox, spec, actor="test")
    world.settle()
    backup = signed_in(world, "luoxinlei")
    token = csrf(backup, "/console/groups/platform")
    for target in (LEADER, "luoxinlei"):
        resp = backup.post("/console/groups/platform/violations", data={"csrf_token": token,
                           "userid": target, "rule": "广告", "action": "remove",
                           "note": "x"})  # fmt: skip
        assert resp.status_code == 403 and "由管理员或人事记录" in resp.get_data(as_text=True)
    assert LEADER in world.chat("platform")["userlist"]
