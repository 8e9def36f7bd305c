"""Group governance in real headless Chromium: an employee asks for a group from 申请 on a
phone, the approver opens the request from the card's link and approves it, HR finds the group
in 群台账, records a warning from the group's page, and sends a survey whose results stay
hidden below five answers. Screenshots at phone and desktop width are kept in
artifacts/screenshots/console-governance-*.png."""

from __future__ import annotations

from typing import Any

from tests.browser import needs_browser
from tests.test_console_browser import DESKTOP, Browser, browser, shots, sign_in, world  # noqa: F401
from tests.world import World

pytestmark = needs_browser


def test_a_group_is_asked_for_approved_registered_and_policed(world: World, browser: Browser) -> None:  # noqa: F811
    asker = browser.person()
    sign_in(asker, world, "/console/requests", "huangyao", web=False)
    form = asker.locator("#create-form")
    form.get_by_label("群名称").fill("支付重构项目群")
    form.get_by_label("类型").select_option("项目群")
    form.get_by_label("用途").fill("支付系统重构的日常沟通与发布协调")
    form.get_by_label("指定成员（账号或“部门-姓名”，逗号分隔）").fill("luoxinlei, sunqiangjie")
    shots(asker, "governance-request-form")
    form.get_by_role("button", name="提交申请").click()
    asker.wait_for_selector("text=已提交，审批人")
    shots(asker, "governance-request-filed")
    world.drain()  # the approver's card goes out

    with world.sim.state.lock:
        card = [m["content"] for m in world.sim.state.messages
                if m["msgtype"] == "template_card" and "zhangyao" in m["delivered"]][-1]  # fmt: skip
    link = next(h["url"] for h in card["horizontal_content_list"] if h.get("url"))
    approver = browser.person()
    sign_in(approver, world, link.removeprefix(world.app_url), "zhangyao", web=False)
    assert approver.get_by_text("支付系统重构的日常沟通与发布协调").is_visible()
    shots(approver, "governance-request-decide")
    approver.get_by_role("button", name="同意").click()
    approver.wait_for_selector("text=正在创建")
    world.settle()

    hr = browser.person(DESKTOP)
    sign_in(hr, world, "/console/register", "zhenglinwei", web=True)
    row = hr.locator("table.list tr", has_text="支付重构项目群")
    assert "申请审批" in row.inner_text() and "平台研发部-张瑶" in row.inner_text()
    shots(hr, "governance-register")
    row.get_by_role("link", name="支付重构项目群").click()
    hr.wait_for_selector("#conduct")
    conduct = hr.locator("#conduct")
    conduct.get_by_label("成员").select_option("luoxinlei")
    conduct.get_by_label("违反的群规").select_option("广告")
    conduct.get_by_label("说明（会在群内公布）").fill("发布贷款广告")
    conduct.get_by_role("button", name="记录违规").click()
    hr.wait_for_selector("text=已记录，并按群规处理")
    assert "警告（第 1 次）" in hr.locator("#ledger").inner_text()
    shots(hr, "governance-group-conduct")
    world.settle()
    posts = [m["content"]["content"] for m in _chat_named(world, "支付重构项目群")["messages"]]
    assert posts[-1].startswith("警告：平台研发部-罗鑫磊 违反群规「广告」")

    hr.goto(f"{world.app_url}/console/surveys")
    survey = hr.locator("#survey-form")
    survey.get_by_label("标题").fill("第一季度群管理反馈")
    survey.get_by_label("问题").fill("您对工作群的通知方式是否满意？")
    survey.get_by_label("选项（每行一个，2 至 20 个）").fill("满意\n一般\n不满意")
    survey.get_by_label("或发给部门（部门 ID 或名称，含下级；逗号分隔）").fill("平台研发部")
    survey.get_by_role("button", name="发出问卷").click()
    hr.wait_for_selector("text=为保护匿名，暂不显示结果")
    shots(hr, "governance-survey")
    assert browser.errors == [], browser.errors


def _chat_named(world: World, name: str) -> dict[str, Any]:
    with world.sim.state.lock:
        return next(dict(c) for c in world.sim.state.chats.values() if c["name"] == name)
