"""The confirm page in a real browser: a phone-sized Chromium signs in through the simulator's
OAuth page, reads the notice in Chinese, and confirms it. Screenshots are kept in
artifacts/screenshots/ (WECOM_APP_ARTIFACTS overrides) to look at."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tests.browser import ARTIFACTS, CHROMIUM, needs_browser, sync_playwright
from tests.world import World, make_world
from wecom_app.bench.mirror import load_mirror
from wecom_app.models import Employee, Notice, Receipt

pytestmark = needs_browser


@pytest.fixture
def page() -> Iterator[Any]:
    assert CHROMIUM is not None and sync_playwright is not None, "chromium and playwright needed"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(
            viewport={"width": 390, "height": 760}, device_scale_factor=2, locale="zh-CN"
        )
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def test_a_member_confirms_a_notice_on_the_page(sqlite_url: str, page: Any) -> None:
    with make_world(sqlite_url) as world:
        load_mirror(world.services.db, world.sim.state.org, world.clock.now())
        token = _send(world)
        page.goto(f"{world.app_url}/n/{token}")
        page.get_by_text("黄瑶（huangyao）").click()  # the simulator's sign-in page
        page.wait_for_selector("text=请在")
        page.screenshot(path=str(ARTIFACTS / "confirm-page.png"), full_page=True)
        assert page.title() == "周五消防演练"
        assert page.get_by_text("14:00 全员到一楼集合，请带好工牌。").is_visible()
        assert _state(world) == "sent"  # reading is not confirming
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, "the page must fit a phone without scrolling sideways"
        page.get_by_role("button", name="确认收到").click()
        page.wait_for_selector("text=已确认收到")
        page.screenshot(path=str(ARTIFACTS / "confirm-page-done.png"), full_page=True)
        assert _state(world) == "acknowledged"
        page.goto(f"{world.app_url}/n/{token}")  # back later: says when, offers a response
        assert page.get_by_text("您已于").is_visible()
        assert page.get_by_role("button", name="确认收到").count() == 0


def _send(world: World) -> str:
    body = {
        "title": "周五消防演练",
        "body": "14:00 全员到一楼集合，请带好工牌。",
        "author": "行政部",
        "audience": {"users": ["huangyao"]},
    }
    with world.api as http:
        resp = http.post("/api/v1/notices", json=body)
    assert resp.status_code == 201, resp.text
    world.drain()
    with world.db.read() as s:
        return str(s.scalar(select(Notice.link_token)))


def _state(world: World) -> str:
    with world.db.read() as s:
        query = select(Receipt.state).join(Employee, Employee.id == Receipt.employee_id)
        return str(s.scalar(query.where(Employee.userid == "huangyao")))
