"""The console's sign-in, sessions and roles over HTTP (Flask's client for the app, the simulator
for WeCom's login pages), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from tests.world import World, make_world
from wecom_app.bench.mirror import load_mirror
from wecom_app.models import ConsoleAction, ConsoleSession, ConsoleSnapshot, Notice

HR, LEADER, EMPLOYEE = "zhenglinwei", "zhangyao", "huangyao"  # 人力资源部, leads 平台研发部, in it


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with make_world(database_url, console_admins=HR, serve=True) as running:
        load_mirror(running.services.db, running.sim.state.org, running.clock.now())
        yield running


def wecom_redirect(world: World, client: Any, via: str, next_path: str = "/console/") -> str:
    """Start a sign-in and return where the app sends the browser (WeCom's page)."""
    resp = client.get(f"/console/login/{via}?next={next_path}")
    assert resp.status_code == 302
    return str(resp.headers["Location"])


def come_back(world: World, wecom_url: str, userid: str) -> str:
    """What WeCom does once the member is known: the app's /console/auth URL with a code."""
    url = wecom_url.split("#", 1)[0]  # OAuth links end in #wechat_redirect
    resp = httpx.get(f"{url}&as={userid}", follow_redirects=False)
    assert resp.status_code == 302, resp.text[:300]
    location = resp.headers["location"]
    assert location.startswith(f"{world.app_url}/console/auth?")
    return location.removeprefix(world.app_url)


def signed_in(world: World, userid: str, via: str = "web") -> Any:
    client = world.app.test_client()
    back = come_back(world, wecom_redirect(world, client, via), userid)
    resp = client.get(back)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    return client


def computed(world: World) -> None:
    """The worker's next few-second pass, which computes the snapshots pages asked for."""
    world.clock.advance(5)
    world.settle()


def csrf(client: Any, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def send_as_api(world: World, departments: list[int], **extra: Any) -> str:
    body = {"title": "周五消防演练", "body": "14:00 集合", "audience": {"departments": departments}}
    with world.api as http:
        resp = http.post("/api/v1/notices", json={**body, **extra})
    assert resp.status_code == 201, resp.text
    world.drain()
    return str(resp.json()["notice"]["code"])


def test_the_web_login_and_oauth_urls_are_built_from_the_public_url_only(world: World) -> None:
    client = world.app.test_client()
    for via, path in (("web", "/wwlogin/sso/login"), ("oauth", "/connect/oauth2/authorize")):
        url = wecom_redirect(world, client, via)
        query = parse_qs(urlsplit(url).query)
        assert urlsplit(url).path == path
        assert query["redirect_uri"] == [f"{world.app_url}/console/auth"]
        assert len(query["state"][0]) >= 20
    resp = client.get("/console/login/web", headers={"Host": "evil.example"})
    assert "evil.example" not in resp.headers["Location"]
    inside = client.get("/console/login", headers={"User-Agent": "Mozilla/5.0 wxwork/4.1"})
    assert "/connect/oauth2/authorize" in inside.headers["Location"]  # silent inside WeCom


def test_a_sign_in_needs_its_own_state_and_a_fresh_code(world: World) -> None:
    alice, mallory = world.app.test_client(), world.app.test_client()
    back = come_back(world, wecom_redirect(world, alice, "web"), EMPLOYEE)
    wecom_redirect(world, mallory, "web")  # mallory's own state, not alice's
    assert mallory.get(back).status_code == 400  # a state made for another browser
    assert alice.get(back).status_code == 302
    again = world.app.test_client()
    url = wecom_redirect(world, again, "web")
    state = parse_qs(urlsplit(url).query)["state"][0]
    used_code = parse_qs(urlsplit(back).query)["code"][0]
    assert again.get(f"/console/auth?code={used_code}&state={state}").status_code == 403


def test_only_active_employees_get_in_and_a_session_can_be_ended(world: World) -> None:
    client = world.app.test_client()
    back = come_back(world, wecom_redirect(world, client, "oauth"), "nobody-here")
    assert client.get(back).status_code == 403
    client = signed_in(world, EMPLOYEE)
    assert client.get("/console/me").status_code == 200
    cookie = client.get_cookie("wecom_app_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    token = csrf(client, "/console/me")
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 200
    copy = world.app.test_client()
    copy.set_cookie("wecom_app_session", cookie.value)  # the old cookie, replayed
    assert copy.get("/console/me").status_code == 302
    client = signed_in(world, EMPLOYEE)
    with world.db.begin() as session:  # eight hours later
        session.execute(update(ConsoleSession).values(expires_at=world.clock.now()))
    assert client.get("/console/me").headers["Location"].startswith("/console/login")


def test_where_to_after_sign_in_stays_inside_the_console(world: World) -> None:
    client = world.app.test_client()
    asked = client.get("/console/reports?month=2026-01&format=csv")  # kept whole, query and all
    assert (
        asked.headers["Location"]
        == "/console/login?next=/console/reports%3Fmonth%3D2026-01%26format%3Dcsv"
    )
    for evil in ("https://evil.example/", "//evil.example/console/", "/console/\\\\evil"):
        url = wecom_redirect(world, client, "web", evil)
        resp = client.get(come_back(world, url, EMPLOYEE))
        assert resp.headers["Location"] == f"{world.app_url}/console/"


def test_roles_decide_what_each_person_sees(world: World) -> None:
    theirs = send_as_api(world, [4])  # 平台研发部
    other = send_as_api(world, [5])  # 移动研发部
    leader, employee, hr = (
        signed_in(world, LEADER),
        signed_in(world, EMPLOYEE),
        signed_in(world, HR),
    )
    assert leader.get(f"/console/notices/{theirs}").status_code == 200
    page = leader.get(f"/console/notices/{other}")
    assert page.status_code == 403 and "没有查看这里的权限" in page.get_data(as_text=True)
    assert leader.get(f"/console/notices/{other}/export.csv").status_code == 403
    listed = leader.get("/console/notices").get_data(as_text=True)
    assert f"#{theirs} " in listed and f"#{other} " not in listed
    assert hr.get(f"/console/notices/{other}").status_code == 200
    assert employee.get(f"/console/notices/{theirs}").status_code == 403
    assert employee.get("/console/").headers["Location"] == "/console/me"
    assert employee.get("/console/notices/new").status_code == 403
    token = csrf(leader, "/console/notices/new")
    chase = leader.post(f"/console/notices/{theirs}/chase", data={"csrf_token": token})
    assert chase.status_code == 403  # HR sent it: only HR (or its sender) chases it
    csv = hr.get(f"/console/notices/{theirs}/export.csv")
    text = csv.get_data(as_text=True)
    assert csv.status_code == 200 and text.startswith("\ufeff部门,姓名,账号,状态")
    assert "平台研发部-黄瑶" in text or "黄瑶" in text


def test_a_leader_sends_only_within_their_departments_and_it_is_recorded(world: World) -> None:
    leader = signed_in(world, LEADER)
    token = csrf(leader, "/console/notices/new")
    form = {"csrf_token": token, "title": "周会", "body": "周五10点", "type": "task"}
    outside = leader.post("/console/notices", data={**form, "departments": ["5"]})
    assert outside.status_code == 400 and "不在您负责的部门内" in outside.get_data(as_text=True)
    preview = leader.post("/console/notices/preview", data={**form, "departments": ["4"]},
                          headers={"X-CSRFToken": token})  # fmt: skip
    assert "将发送给" in preview.get_data(as_text=True)
    sent = leader.post("/console/notices", data={**form, "departments": ["4"]})
    assert sent.status_code == 303
    with world.db.read() as session:
        notice = session.scalars(select(Notice)).one()
        assert (notice.sender, notice.type) == (LEADER, "task")
        actions = session.execute(select(ConsoleAction.userid, ConsoleAction.action)).all()
    assert (LEADER, "send") in actions
    assert leader.post("/console/notices", data={**form, "csrf_token": ""}).status_code == 400


def test_an_employee_confirms_and_responds_from_my_page(world: World) -> None:
    code = send_as_api(world, [4], second_button="有疑问")
    employee = signed_in(world, EMPLOYEE)
    page = employee.get("/console/me").get_data(as_text=True)
    assert f'id="pending-{code}"' in page
    token = csrf(employee, "/console/me")
    said = {"csrf_token": token, "action": "respond", "response": "明天上午处理完"}
    assert employee.post(f"/console/me/{code}", data=said).status_code == 303
    assert employee.post(f"/console/me/{code}", data={"csrf_token": token, "action": "ack"}
                         ).status_code == 303  # fmt: skip
    with world.api as http:
        receipts = http.get(f"/api/v1/notices/{code}").json()["receipts"]
    mine = next(r for r in receipts if r["userid"] == EMPLOYEE)
    assert mine["state"] == "acknowledged" and mine["response"] == "明天上午处理完"
    assert mine["channel"] == "console"
    stranger = signed_in(world, "wangxuanqiang")  # 移动研发部: not a recipient
    token = csrf(stranger, "/console/me")
    assert stranger.post(f"/console/me/{code}", data={"csrf_token": token, "action": "ack"}
                         ).status_code == 403  # fmt: skip


def test_without_a_public_url_the_console_is_off(database_url: str) -> None:
    with make_world(database_url, serve=False) as world:
        resp = world.app.test_client().get("/console/")
        assert resp.status_code == 404 and "WECOM_APP_PUBLIC_URL" in resp.get_data(as_text=True)


def test_every_console_page_keeps_a_strict_content_security_policy(world: World) -> None:
    hr = signed_in(world, HR)
    for path in ("/console/", "/console/notices", "/console/me", "/console/notices/new"):
        resp = hr.get(path)
        assert resp.status_code == 200, path
        policy = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "<script>" not in resp.get_data(as_text=True)  # no inline code to allow
    with hr.get("/console/static/vendor/echarts-5.6.0.simple.min.js") as asset:
        assert asset.status_code == 200 and len(asset.data) > 100_000


def mobile_group(world: World) -> str:
    from wecom_app.groups import service
    from wecom_app.groups.rules import GroupRules
    from wecom_app.groups.service import GroupSpec

    spec = GroupSpec(name="移动研发部工作群", owner="wangxuanqiang", backup_owner="tanglintao",
                     rules=GroupRules.from_dict({"departments": [5]}), chatid="mobile01")  # fmt: skip
    group, _ = service.create_now(world.services, world.outbox, spec, actor="test")
    assert group.status == "active"
    return group.chatid


def test_group_pages_for_owners_and_hr_with_a_previewed_then_applied_reconcile(
    world: World,
) -> None:
    chatid = mobile_group(world)
    owner, other, hr = (
        signed_in(world, "wangxuanqiang"),
        signed_in(world, LEADER),
        signed_in(world, HR),
    )
    assert chatid in owner.get("/console/groups").get_data(as_text=True)
    page = owner.get(f"/console/groups/{chatid}").get_data(as_text=True)
    assert "移动研发部-唐琳涛" in page and "变更记录" in page
    assert other.get(f"/console/groups/{chatid}").status_code == 403
    assert other.get("/console/groups").status_code == 403
    with world.sim.state.lock:  # someone added by hand in WeCom: the rules say otherwise
        world.sim.state.chats[chatid]["userlist"].append("huangyao")
    token = csrf(hr, "/console/groups")
    preview = hr.post(f"/console/groups/{chatid}/plan", data={"csrf_token": token})
    assert preview.status_code == 200 and "移出 huangyao" in preview.get_data(as_text=True)
    assert "huangyao" in world.chat(chatid)["userlist"]  # a preview changes nothing
    applied = hr.post(f"/console/groups/{chatid}/plan", data={"csrf_token": token, "apply": "1"})
    assert applied.status_code == 303
    world.drain()
    assert "huangyao" not in world.chat(chatid)["userlist"]
    with world.db.read() as session:
        actions = session.execute(select(ConsoleAction.userid, ConsoleAction.action)).all()
    assert (HR, "reconcile") in actions


def test_people_page_is_scoped_and_hr_can_fix_names(world: World) -> None:
    leader, hr = signed_in(world, LEADER), signed_in(world, HR)
    page = leader.get("/console/people").get_data(as_text=True)
    assert "平台研发部-黄瑶" in page and "命名不规范" not in page
    assert leader.get("/console/people?department=5").status_code == 403
    assert "正在检查" in hr.get("/console/people?department=4").get_data(as_text=True)
    computed(world)
    page = hr.get("/console/people?department=4").get_data(as_text=True)
    assert "命名不规范" in page and "离职记录" in page
    token = csrf(hr, "/console/people")
    fixed = hr.post("/console/people/naming", data={"csrf_token": token})
    assert fixed.status_code == 200 and "已排队" in fixed.get_data(as_text=True)
    with world.db.read() as session:
        from wecom_app.models import OutboxMessage

        kinds = set(session.scalars(select(OutboxMessage.kind)))
    assert "user_update" in kinds
    employee = signed_in(world, EMPLOYEE)
    assert employee.get("/console/people").status_code == 403


def test_the_tree_and_the_pickers_keep_to_the_viewers_departments(world: World) -> None:
    leader, hr = signed_in(world, LEADER), signed_in(world, HR)
    employee = signed_in(world, EMPLOYEE)
    top = hr.get("/console/notices/new").get_data(as_text=True)
    picks = 'name="departments" value="{}"'
    assert picks.format(1) in top and picks.format(3) not in top  # below the top: loaded on opening
    branch = hr.get("/console/departments/3?mode=pick").get_data(as_text=True)
    assert all(f'name="departments" value="{d}"' in branch for d in (4, 5, 6))
    assert leader.get("/console/departments/3").status_code == 403  # above their own
    assert leader.get("/console/departments/4").status_code == 200
    assert employee.get("/console/departments/4").status_code == 403
    assert picks.format(4) in leader.get("/console/notices/new").get_data(as_text=True)

    assert "移动研发部" in hr.get("/console/departments/find?q=移动").get_data(as_text=True)
    assert "移动研发部" not in leader.get("/console/departments/find?q=移动").get_data(as_text=True)
    assert "平台研发部-黄瑶" in leader.get("/console/people/find?q=黄瑶").get_data(as_text=True)
    theirs = leader.get("/console/people/find?q=wangxuanqiang").get_data(as_text=True)
    assert "没有姓名或账号" in theirs  # 移动研发部's leader is not theirs to address
    assert "没有姓名或账号含“%”" in hr.get("/console/people/find?q=%25").get_data(as_text=True)

    chip = leader.get("/console/pick?person=huangyao")
    assert chip.headers["HX-Trigger-After-Settle"] == "picked"
    assert 'name="people" value="huangyao" checked' in chip.get_data(as_text=True)
    assert leader.get("/console/pick?person=wangxuanqiang").status_code == 403
    assert leader.get("/console/pick?department=5").status_code == 403
    assert "（含下级）" in hr.get("/console/pick?department=5").get_data(as_text=True)

    token = csrf(hr, "/console/notices/new")
    form = {"csrf_token": token, "body": "x", "departments": ["5"], "people": ["huangyao"]}
    again = hr.post("/console/notices", data=form).get_data(as_text=True)  # no title
    assert 'value="5" checked' in again  # the tree opened to what was chosen
    assert 'name="people" value="huangyao" checked' in again
    sent = hr.post("/console/notices", data={**form, "title": "复盘"})
    assert sent.status_code == 303
    with world.db.read() as session:
        notice = session.scalars(select(Notice)).one()
    with world.sim.state.lock:
        mobile = sum(5 in m.department and m.status == 1 for m in world.org.members.values())
    assert notice.recipients == mobile + 1

    nav = hr.get("/console/people?department=5").get_data(as_text=True)
    assert 'class="on" aria-current="page">移动研发部' in nav


def test_reports_for_a_month_with_fines_and_downloads(world: World) -> None:
    send_as_api(world, [4], type="task")  # 30 working minutes or 100元
    send_as_api(world, [5], type="task")
    world.clock.advance(3 * 3600)  # everyone is past their deadline
    hr, leader = signed_in(world, HR), signed_in(world, LEADER)
    first = hr.get("/console/reports").get_data(as_text=True)
    assert "报表正在生成" in first and 'http-equiv="refresh"' in first  # the worker computes it
    assert hr.get("/console/reports?format=xlsx").status_code == 409
    leader.get("/console/reports")
    computed(world)
    page = hr.get("/console/reports").get_data(as_text=True)
    assert "统计于" in page
    with world.sim.state.lock:
        in_4 = sum(4 in m.department and m.status == 1 for m in world.org.members.values())
        in_5 = sum(5 in m.department and m.status == 1 for m in world.org.members.values())
    assert f"罚款合计：<b>{100 * (in_4 + in_5)} 元</b>" in page
    mine = leader.get("/console/reports").get_data(as_text=True)
    assert f"罚款合计：<b>{100 * in_4} 元</b>" in mine  # a leader's own departments only
    with hr.get("/console/reports?format=xlsx") as book:
        assert book.status_code == 200 and book.data[:2] == b"PK"
    with hr.get("/console/reports?format=csv") as ledger:
        assert ledger.get_data(as_text=True).startswith("\ufeff姓名")
    hr.get("/console/reports?month=2025-06")
    computed(world)
    empty = hr.get("/console/reports?month=2025-06").get_data(as_text=True)
    assert "本月没有违规" in empty
    with world.db.read() as session:  # a past month, computed after it ended, is not redone
        before = session.get(ConsoleSnapshot, "report:2025-06:all").computed_at
    world.clock.advance(3600)
    hr.get("/console/reports?month=2025-06")
    computed(world)
    with world.db.read() as session:
        assert session.get(ConsoleSnapshot, "report:2025-06:all").computed_at == before


def test_a_big_notice_is_counted_by_the_worker(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wecom_app.console import queries

    monkeypatch.setattr(queries, "BIG_NOTICE", 10)  # as a notice to the whole company would be
    code = send_as_api(world, [4])
    hr, leader = signed_in(world, HR), signed_in(world, LEADER)
    first = hr.get(f"/console/notices/{code}").get_data(as_text=True)
    assert "进度统计中" in first and 'data-userid="huangyao"' in first  # receipts stay live
    leader.get(f"/console/notices/{code}")
    computed(world)
    page = hr.get(f"/console/notices/{code}").get_data(as_text=True)
    assert "进度统计于" in page and "平台研发部" in page
    with world.sim.state.lock:
        in_4 = sum(4 in m.department and m.status == 1 for m in world.org.members.values())
    assert f"<div><b>0</b><span>已确认</span></div>\n    <div><b>{in_4}</b><span>未确认" in page
    assert "进度统计于" in leader.get(f"/console/notices/{code}").get_data(as_text=True)


def test_hr_sees_who_is_signed_in_and_ends_their_sessions(world: World) -> None:
    hr, leader = signed_in(world, HR), signed_in(world, LEADER)
    phone = signed_in(world, LEADER, via="oauth")
    assert leader.get("/console/audit").status_code == 403
    page = hr.get("/console/audit").get_data(as_text=True)
    assert page.count('data-userid="zhangyao"') == 2 and "企业微信内" in page
    with world.db.read() as session:
        sid = session.scalars(
            select(ConsoleSession.id).where(
                ConsoleSession.userid == LEADER, ConsoleSession.via == "oauth"
            )
        ).one()
    token = csrf(hr, "/console/audit")
    assert hr.post("/console/audit/sessions/end", data={"session": sid}).status_code == 400  # CSRF
    ended = hr.post("/console/audit/sessions/end", data={"csrf_token": token, "session": sid})
    assert ended.status_code == 303 and ended.headers["Location"].endswith("ended=1")
    assert phone.get("/console/me").status_code == 302  # that session is over
    assert leader.get("/console/me").status_code == 200  # the other one is not
    everyone = hr.post(
        "/console/audit/sessions/end", data={"csrf_token": token, "userid": "ZhangYao"}
    )
    assert everyone.headers["Location"].endswith("ended=1")
    assert leader.get("/console/me").status_code == 302
    nobody = hr.post("/console/audit/sessions/end", data={"csrf_token": token})
    assert nobody.status_code == 400 and "成员账号" in nobody.get_data(as_text=True)
    log = hr.get(f"/console/audit?who={LEADER}").get_data(as_text=True)
    assert "登录" in log and "结束会话" not in log  # the filter: what the leader did
    log = hr.get(f"/console/audit?who={HR}").get_data(as_text=True)
    assert log.count("结束会话") == 2 and "session:zhangyao" in log


def test_the_console_cli_lists_and_ends_sessions_and_prints_actions(sqlite_url: str) -> None:
    from click.testing import CliRunner

    from wecom_app.cli import main
    from wecom_app.clock import FakeClock

    now = FakeClock(datetime.now(UTC))  # the CLI reads the real time
    with make_world(sqlite_url, console_admins=HR, serve=True, clock=now) as world:
        load_mirror(world.services.db, world.sim.state.org, world.clock.now())
        leader = signed_in(world, LEADER)

        def run(*args: str) -> str:
            result = CliRunner().invoke(main, list(args), env=world.worker_env())
            assert result.exit_code == 0, result.output
            return (
                result.stdout if result.exit_code == 0 else result.output
            )  # JSON on stdout; logs on stderr

        listed = json.loads(run("console", "sessions", "--json"))["sessions"]
        assert [s["userid"] for s in listed] == [LEADER] and listed[0]["via"] == "web"
        assert "zhangyao" in run("console", "sessions", "--user", "ZHANGYAO")
        assert "已结束 zhangyao 的 1 个控制台会话" in run("console", "end-sessions", LEADER)
        assert leader.get("/console/me").status_code == 302
        assert "现在没有人登录控制台" in run("console", "sessions")
        actions = json.loads(run("console", "actions", "--json"))["actions"]
        assert [a["action"] for a in actions] == ["end_session", "sign_in"]
        assert actions[0]["userid"].startswith("cli:")
        assert "登录" in run("console", "actions", "--who", LEADER)


def test_hr_lists_pauses_resumes_and_deletes_schedules(world: World) -> None:
    notice = {"title": "周一例会", "audience": {"departments": [4]}}
    with world.api as http:
        made = http.post("/api/v1/schedules", json={"notice": notice,
                         "schedule": {"kind": "weekly", "weekdays": [1], "at": "09:00"}})  # fmt: skip
    assert made.status_code == 201, made.text
    ident = made.json()["schedule"]["id"]
    hr, leader = signed_in(world, HR), signed_in(world, LEADER)
    assert leader.get("/console/schedules").status_code == 403
    page = hr.get("/console/schedules").get_data(as_text=True)
    assert "每周一 09:00，节假日不发" in page and "启用" in page
    token = csrf(hr, "/console/schedules")
    assert hr.post(f"/console/schedules/{ident}/pause", data={}).status_code == 400  # CSRF
    assert (
        hr.post(f"/console/schedules/{ident}/pause", data={"csrf_token": token}).status_code == 303
    )
    assert "已暂停" in hr.get("/console/schedules").get_data(as_text=True)
    assert (
        hr.post(f"/console/schedules/{ident}/resume", data={"csrf_token": token}).status_code == 303
    )
    assert (
        hr.post(f"/console/schedules/{ident}/delete", data={"csrf_token": token}).status_code == 303
    )
    assert "还没有定时通知" in hr.get("/console/schedules").get_data(as_text=True)
    assert (
        hr.post(f"/console/schedules/{ident}/pause", data={"csrf_token": token}).status_code == 409
    )
    with world.db.read() as session:
        done = set(session.scalars(select(ConsoleAction.action).where(ConsoleAction.userid == HR)))
    assert {"schedule_pause", "schedule_resume", "schedule_delete"} <= done
