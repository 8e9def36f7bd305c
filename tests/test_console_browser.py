"""The console in real headless Chromium against the app and the simulator: HR, a leader and an
employee sign in through the simulator's web login and OAuth pages; the leader sends a notice
from the form, the employee confirms it on 我的, the leader sees it counted; a leader who edits
a URL gets 403; a POST without the page's CSRF token is refused; the dashboard's charts draw; the
browser console stays clean. Screenshots of each page at phone and desktop width are kept in
artifacts/screenshots/console-*.png (WECOM_APP_ARTIFACTS overrides)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tests.browser import ARTIFACTS, CHROMIUM, needs_browser, sync_playwright
from tests.test_console import mobile_group
from tests.world import World, make_world
from wecom_app.bench.mirror import load_mirror
from wecom_app.models import ConsoleAction, Notice

pytestmark = needs_browser
PHONE = {"width": 390, "height": 800}
DESKTOP = {"width": 1280, "height": 900}


class Browser:
    """One Chromium; each person gets a context (their own cookies) and a page."""

    def __init__(self, pw: Any) -> None:
        assert CHROMIUM is not None
        self.browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        self.errors: list[str] = []

    def person(self, viewport: dict[str, int] = PHONE) -> Any:
        context = self.browser.new_context(viewport=viewport, locale="zh-CN")
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        return page


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert CHROMIUM is not None and sync_playwright is not None, "chromium and playwright needed"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        holder = Browser(pw)
        try:
            yield holder
        finally:
            holder.browser.close()


@pytest.fixture
def world(sqlite_url: str) -> Iterator[World]:
    with make_world(sqlite_url, console_admins="zhenglinwei") as running:
        load_mirror(running.services.db, running.sim.state.org, running.clock.now())
        yield running


def sign_in(page: Any, world: World, path: str, who: str, *, web: bool) -> None:
    """Open a console page, go through the simulator's login, land back on the page."""
    page.goto(f"{world.app_url}{path}")
    assert "/console/login" in page.url
    page.get_by_role(
        "link", name="企业微信扫码登录" if web else "已在企业微信内？点此授权登录"
    ).click()
    page.get_by_text(f"（{who}）").click()  # the simulator's stand-in for the scan / the client
    page.wait_for_load_state("networkidle")
    assert path.split("?")[0] in page.url, page.url


def shots(page: Any, name: str) -> None:
    """Keep the page at phone and desktop width, and check it fits the phone."""
    before = page.viewport_size
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)
        if label == "phone":
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"] + 1, f"{name} scrolls sideways on a phone ({width}px)"
        page.screenshot(path=str(ARTIFACTS / f"console-{name}-{label}.png"), full_page=True)
    page.set_viewport_size(before)


def test_hr_leader_and_employee_use_the_console(world: World, browser: Browser) -> None:
    hr = browser.person(DESKTOP)
    sign_in(hr, world, "/console/", "zhenglinwei", web=True)
    assert hr.get_by_text("管理员/人事").is_visible()
    shots(hr, "dashboard-empty")

    leader = browser.person()
    sign_in(leader, world, "/console/notices/new", "zhangyao", web=False)
    shots(leader, "new-notice")
    leader.fill("input[name=title]", "周五消防演练")
    leader.fill("textarea[name=body]", "14:00 全员到一楼集合，请带好工牌。")
    leader.get_by_label("平台研发部").check()
    with world.sim.state.lock:
        platform = sum(4 in m.department and m.status == 1 for m in world.org.members.values())
    leader.wait_for_selector(f"text=将发送给 {platform} 人")
    assert leader.get_by_label("移动研发部").count() == 0  # not theirs to address
    leader.get_by_role("button", name="发送").click()
    leader.wait_for_selector("text=按部门")
    code = leader.url.rsplit("/", 1)[1]
    world.drain()  # the cards go out
    shots(leader, "notice-sent")

    employee = browser.person()
    sign_in(employee, world, "/console/me", "huangyao", web=False)
    assert employee.get_by_role("heading", name="周五消防演练").is_visible()
    shots(employee, "me-pending")
    employee.locator(f"#pending-{code}").get_by_role("button", name="确认收到").click()
    employee.wait_for_selector("text=没有需要您确认的通知")
    assert employee.locator("table.list").get_by_text("已确认").first.is_visible()
    shots(employee, "me-done")
    assert employee.get_by_role("link", name="总览").count() == 0  # an employee sees only 我的

    leader.reload()
    row = leader.locator("#receipts tr[data-userid=huangyao]")
    assert "已确认" in row.inner_text() and "控制台" in row.inner_text()
    assert leader.locator("#progress").inner_text().split()[0] == "1"

    hr.goto(f"{world.app_url}/console/notices")
    assert hr.get_by_text(f"#{code} 周五消防演练").is_visible()
    shots(hr, "notices")
    world.clock.advance(5)  # the worker counts the weekly figures the first visit asked for
    world.settle()
    hr.goto(f"{world.app_url}/console/")
    hr.wait_for_function(
        "() => [...document.querySelectorAll('.chart canvas')].length >= 2"
        " && [...document.querySelectorAll('.chart canvas')].every(c => c.width > 0)"
    )
    assert _drawn(hr, "#chart-weeks canvas") and _drawn(hr, "#chart-overdue canvas")
    shots(hr, "dashboard")
    with world.db.read() as session:
        actions = set(session.execute(select(ConsoleAction.userid, ConsoleAction.action)).all())
    assert {("zhangyao", "send"), ("huangyao", "ack"), ("zhenglinwei", "sign_in")} <= actions
    chatid = mobile_group(world)
    world.clock.advance(3 * 3600)  # the others are overdue now: the reports have fines
    hr.goto(f"{world.app_url}/console/reports")  # asks the worker for the month's report
    hr.goto(f"{world.app_url}/console/people?department=4")  # and the naming check
    world.clock.advance(5)
    world.settle()
    for path, name in (("/console/groups", "groups"), (f"/console/groups/{chatid}", "group"),
                       ("/console/people?department=4", "people"), ("/console/reports", "reports"),
                       ("/console/audit", "audit")):  # fmt: skip
        hr.goto(f"{world.app_url}{path}")
        hr.wait_for_load_state("networkidle")
        shots(hr, name)
    hr.goto(f"{world.app_url}/console/groups/{chatid}")
    hr.get_by_role("button", name="预览对账").click()
    hr.wait_for_selector("#plan")
    shots(hr, "group-plan")
    hr.goto(f"{world.app_url}/console/reports")
    hr.wait_for_function("() => document.querySelector('#chart-fines canvas')")
    assert _drawn(hr, "#chart-fines canvas")
    assert "超时未确认" in hr.locator("#violations").inner_text()
    assert browser.errors == [], browser.errors


def test_a_leader_editing_a_url_gets_403_and_a_post_without_csrf_is_refused(
    world: World, browser: Browser
) -> None:
    body = {"title": "移动端发版", "body": "今晚发版", "audience": {"departments": [5]}}
    with world.api as http:
        assert http.post("/api/v1/notices", json=body).status_code == 201
    with world.db.read() as session:
        code = session.scalar(select(Notice.code))
    leader = browser.person()
    sign_in(leader, world, "/console/me", "zhangyao", web=False)  # leads 平台研发部, not 移动
    response = leader.goto(f"{world.app_url}/console/notices/{code}")
    assert response.status == 403 and leader.get_by_text("没有查看这里的权限").is_visible()
    shots(leader, "forbidden")
    assert [e for e in browser.errors if "403" not in e] == []  # the 403 itself is logged
    browser.errors.clear()
    refused = leader.request.post(f"{world.app_url}/console/notices/{code}/cancel")
    assert refused.status == 400
    hr = browser.person()
    sign_in(hr, world, "/console/notices", "zhenglinwei", web=True)
    forged = hr.request.post(f"{world.app_url}/console/notices/{code}/cancel", form={"x": "1"})
    assert forged.status == 400
    with world.db.read() as session:
        assert session.scalar(select(Notice.status)) == "active"
    hr.goto(f"{world.app_url}/console/notices/{code}")
    hr.get_by_role("button", name="取消通知").click()
    hr.wait_for_selector("text=已取消")
    with world.db.read() as session:
        assert session.scalar(select(Notice.status)) == "cancelled"
    hr.get_by_role("button", name="退出").click()
    hr.wait_for_selector("text=您已退出控制台")
    hr.goto(f"{world.app_url}/console/notices")
    assert "/console/login" in hr.url  # the session ended on the server too
    assert browser.errors == [], browser.errors


def test_hr_picks_an_audience_from_the_tree_and_the_people_search(
    world: World, browser: Browser
) -> None:
    hr = browser.person(DESKTOP)
    sign_in(hr, world, "/console/notices/new", "zhenglinwei", web=True)
    tree = hr.locator(".tree")
    assert tree.get_by_label("研发中心").count() == 0  # below the top: not loaded yet
    tree.locator("summary", has_text="杭州云栖数智科技有限公司").locator(".sub").click()
    tree.locator("summary", has_text="研发中心").locator(".sub").click()
    tree.get_by_label("移动研发部").check()  # each branch came from the server on opening
    with world.sim.state.lock:
        mobile = sum(5 in m.department and m.status == 1 for m in world.org.members.values())
    hr.wait_for_selector(f"text=将发送给 {mobile} 人")

    search = hr.get_by_label("查找成员")
    search.fill("黄")
    hr.locator("#found-people").get_by_role("button", name="平台研发部-黄瑶").click()
    hr.wait_for_selector(f"text=将发送给 {mobile + 1} 人")  # the chip counts at once
    search.press("Enter")  # searches; the notice is not sent
    hr.wait_for_load_state("networkidle")
    assert hr.url.endswith("/console/notices/new")
    shots(hr, "new-notice-picked")

    hr.get_by_role("button", name="发送").click()  # no title: the form comes back as it was
    hr.wait_for_selector("text=标题")
    assert hr.locator(".tree").get_by_label("移动研发部").is_checked()  # opened to it again
    assert hr.locator("#chosen").get_by_label("平台研发部-黄瑶").is_checked()
    hr.fill("input[name=title]", "移动端发版复盘")
    hr.get_by_role("button", name="发送").click()
    hr.wait_for_selector("text=按部门")
    with world.db.read() as session:
        found = session.scalars(select(Notice)).one()
    assert found.title == "移动端发版复盘" and found.recipients == mobile + 1

    hr.goto(f"{world.app_url}/console/people?department=5")
    current = hr.locator(".tree-nav a.on")
    assert current.inner_text().startswith("移动研发部")  # its branch opened on the way
    hr.get_by_label("查找成员").fill("zhangyao")
    hr.locator("#found").get_by_role("link", name="平台研发部-张瑶").click()
    hr.wait_for_selector(".tree-nav a.on >> text=平台研发部")
    shots(hr, "people-tree")
    assert browser.errors == [], browser.errors


def _drawn(page: Any, selector: str) -> bool:
    """Whether a canvas holds anything but transparent pixels."""
    return bool(
        page.evaluate(
            """(sel) => { const c = document.querySelector(sel);
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true;
                 return false; }""",
            selector,
        )
    )


def test_a_group_is_asked_for_approved_registered_and_policed(
    world: World, browser: Browser
) -> None:
    """Governance: an employee asks for a group from 申请 on a phone, the approver opens the
    request from the card's link and approves it, HR finds the group in 群台账, records a
    warning from the group's page, and sends a survey whose results stay hidden below five
    answers (screenshots console-governance-*)."""
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
    hr.wait_for_selector("text=问卷进行中")
    hr.get_by_role("button", name="结束问卷并查看结果").click()
    hr.wait_for_selector("text=为保护匿名，不显示结果")
    shots(hr, "governance-survey")
    assert browser.errors == [], browser.errors


def _chat_named(world: World, name: str) -> dict[str, Any]:
    with world.sim.state.lock:
        return next(dict(c) for c in world.sim.state.chats.values() if c["name"] == name)
