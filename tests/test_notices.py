"""Notices end to end: the app and the simulator over real HTTP, acks through the encrypted channel."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import CORP_ID
from tests.world import World as Stack
from tests.world import make_world, until
from wecom_app.bench.mirror import load_mirror
from wecom_app.clock import FakeClock
from wecom_app.domain_events import EmployeeDeparted
from wecom_app.models import Employee, InboxEvent, Notice, OutboxMessage, Receipt
from wecom_app.notices import delivery, service
from wecom_app.simulator.org import ACTIVE
from wecom_app.sla.policy import PolicyBook

RD_TREE = {3, 4, 5, 6}  # 研发中心 and its three sub-departments in config/sample-org.yaml


@pytest.fixture
def stack(database_url: str) -> Iterator[Stack]:
    """Simulator + app over HTTP, with the mirror filled from the simulator's org."""
    with make_world(database_url, clock=FakeClock()) as st:
        load_mirror(st.services.db, st.sim.state.org, st.clock.now())
        yield st


def api(stack: Stack, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """Call the app's JSON API, closing the connection afterwards."""
    with stack.api as http:
        return http.request(method, path, **kwargs)


def sim(stack: Stack, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """Call the simulator's inspection API."""
    with stack.sim_http as http:
        return http.request(method, path, **kwargs)


def send(stack: Stack, **fields: Any) -> dict[str, Any]:
    body = {"title": "周五消防演练", "body": "14:00 全员到一楼集合。", "author": "行政部"}
    body.update(fields)
    body.setdefault("audience", {"departments": [3]})
    resp = api(stack, "post", "/api/v1/notices", json=body)
    assert resp.status_code == 201, resp.text
    stack.settle()
    return resp.json()["notice"]


def status(stack: Stack, code: str) -> dict[str, Any]:
    resp = api(stack, "get", f"/api/v1/notices/{code}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def status_without_receipts(stack: Stack, code: str) -> dict[str, Any]:
    return api(stack, "get", f"/api/v1/notices/{code}?receipts=0").json()


def receipts_by_user(stack: Stack, code: str) -> dict[str, dict[str, Any]]:
    return {r["userid"]: r for r in status(stack, code)["receipts"]}


def cards(stack: Stack, notice: dict[str, Any]) -> list[dict[str, Any]]:
    """Card sends the simulator recorded for a notice (every batch, every resend)."""
    with stack.sim.state.lock:
        return [
            m
            for m in stack.sim.state.messages
            if m["task_id"].startswith(_prefix(stack, notice) + "-")
        ]


def _prefix(stack: Stack, notice: dict[str, Any]) -> str:
    with stack.services.db.begin() as s:
        return s.scalars(select(Notice.task_prefix).where(Notice.id == notice["id"])).one()


def click(stack: Stack, notice: dict[str, Any], userid: str, key: str = delivery.ACK_KEY) -> None:
    task = cards(stack, notice)[0]["task_id"]
    result = stack.sim.events.deliver_card_click(userid, task, key)
    assert result.ok, result.error


def active_in(stack: Stack, departments: set[int]) -> set[str]:
    org = stack.sim.state.org
    return {
        u for u, m in org.members.items() if m.status == ACTIVE and set(m.department) & departments
    }


def test_send_to_department_tree_one_card_per_active_member(stack: Stack) -> None:
    notice = send(stack, second_button="有疑问")
    expected = active_in(stack, RD_TREE)
    sent = cards(stack, notice)
    assert len(sent) == 1
    delivered = sent[0]["delivered"]
    assert set(delivered) == expected and len(delivered) == len(expected)
    card = sent[0]["content"]
    assert card["card_type"] == "button_interaction"
    assert [b["text"] for b in card["button_list"]] == ["收到", "有疑问"]
    data = status(stack, notice["code"])
    assert data["counts"]["sent"] == len(expected) == data["counts"]["counted"]
    assert {r["department_id"] for r in data["by_department"]} <= RD_TREE
    names = {r["name"] for r in data["receipts"]}
    assert "平台研发部-张瑶" in names
    # Disabled, not-activated and departed members are not recipients.
    assert "zhaokaiyu" not in receipts_by_user(stack, notice["code"])
    page = api(stack, "get", f"/api/v1/notices/{notice['code']}?limit=5&offset=5").json()
    assert [r["userid"] for r in page["receipts"]] == [r["userid"] for r in data["receipts"][5:10]]
    assert "receipts" not in status_without_receipts(stack, notice["code"])


def test_dry_run_previews_counts_and_sends_nothing(stack: Stack) -> None:
    resp = api(
        stack,
        "post",
        "/api/v1/notices?dry_run=1",
        json={"title": "预览", "audience": {"departments": [3, {"id": 9, "subtree": False}]}},
    )
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["dry_run"] is True
    assert sum(r["count"] for r in data["by_department"]) == data["recipients"]
    assert data["recipients"] == len(active_in(stack, RD_TREE | {9}))
    with stack.services.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(Notice)) == 0
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_ack_by_button_updates_the_card_once_per_click(stack: Stack) -> None:
    notice = send(stack)
    click(stack, notice, "zhangyao")
    stack.settle()
    first = receipts_by_user(stack, notice["code"])["zhangyao"]
    assert first["state"] == "acknowledged" and first["channel"] == "button"
    assert not first["late"]
    stack.clock.advance(5)
    click(stack, notice, "zhangyao")  # a second click: no second ack, time unchanged
    stack.settle()
    again = receipts_by_user(stack, notice["code"])["zhangyao"]
    assert again["acknowledged_at"] == first["acknowledged_at"]
    updates = [u for u in stack.sim.state.card_updates if u["userids"] == ["zhangyao"]]
    assert [u["replace_name"] for u in updates] == ["已收到", "已收到"]
    assert status(stack, notice["code"])["counts"]["acknowledged"] == 1


def test_duplicate_callback_delivery_makes_one_ack(stack: Stack) -> None:
    notice = send(stack)
    task = cards(stack, notice)[0]["task_id"]
    # The same event posted twice (a WeCom retry): same user and CreateTime → one inbox row.
    stack.sim.events.deliver_card_click("luoxinlei", task, delivery.ACK_KEY)
    stack.sim.events.deliver_card_click("luoxinlei", task, delivery.ACK_KEY)
    stack.settle()
    with stack.services.db.begin() as s:
        rows = s.scalar(select(func.count()).select_from(InboxEvent))
    assert rows == 1
    assert status(stack, notice["code"])["counts"]["acknowledged"] == 1


def test_the_second_button_is_a_response_that_reaches_the_sender(stack: Stack) -> None:
    notice = send(stack, second_button="有疑问", sender="zhaoming")
    click(stack, notice, "huangyao", delivery.FEEDBACK_KEY)
    click(stack, notice, "huangyao", delivery.FEEDBACK_KEY)  # twice: one response
    stack.settle()
    receipt = receipts_by_user(stack, notice["code"])["huangyao"]
    assert receipt["state"] == "acknowledged" and receipt["response"] == "有疑问"
    assert not receipt["late"] and receipt["channel"] == "button"
    with stack.services.db.read() as s:  # no reminder will chase them
        query = select(Receipt.next_action_at).join(Employee, Employee.id == Receipt.employee_id)
        query = query.where(Receipt.notice_id == notice["id"], Employee.userid == "huangyao")
        assert s.scalar(query) is None
    told = [t for t in stack.texts_to("zhaoming") if f"#{notice['code']}" in t]
    assert len(told) == 1 and "有疑问" in told[0] and "黄瑶" in told[0]
    assert stack.sim.state.card_updates[-1]["replace_name"] == "已回应：有疑问"
    counts = status(stack, notice["code"])["counts"]
    assert counts["responded"] == 1 and counts["overdue"] == 0


def test_a_sender_whose_userid_changed_still_hears_the_answers(stack: Stack) -> None:
    notice = send(stack, second_button="有疑问", sender="zhaoming")
    stack.sim.state.config.thin_keeps_new_userid = False
    assert stack.sim.events.update_user("zhaoming", new_userid="zhaoming2").ok
    stack.settle()
    click(stack, notice, "huangyao", delivery.FEEDBACK_KEY)
    stack.settle()
    told = [t for t in stack.texts_to("zhaoming2") if f"#{notice['code']}" in t]
    assert len(told) == 1 and "黄瑶" in told[0]


@pytest.mark.parametrize(
    "text", ["收到", "已收到", "好的", "OK", "ｏｋ！", "执行", "马上执行", "收到。", " 收到了~ "]
)
def test_ack_by_text_forms(stack: Stack, text: str) -> None:
    notice = send(stack)
    assert stack.sim.events.deliver_text("sunqiangjie", text).ok
    stack.settle()
    receipt = receipts_by_user(stack, notice["code"])["sunqiangjie"]
    assert receipt["state"] == "acknowledged" and receipt["channel"] == "text"
    replies = stack.texts_to("sunqiangjie")
    assert len(replies) == 1 and f"#{notice['code']}" in replies[0] and "已确认" in replies[0]


def test_the_deployment_chooses_its_ack_words(database_url: str) -> None:
    with make_world(database_url, clock=FakeClock(), notice_ack_words="阅,已阅") as st:
        load_mirror(st.services.db, st.sim.state.org, st.clock.now())
        notice = send(st)
        st.sim.events.deliver_text("sunqiangjie", "收到")  # not one of this company's words
        st.sim.events.deliver_text("zhengchao", "已阅。")
        st.settle()
        receipts = receipts_by_user(st, notice["code"])
        assert receipts["sunqiangjie"]["state"] == "sent"
        assert receipts["zhengchao"]["state"] == "acknowledged"


def test_text_acks_most_recent_or_the_one_named_by_code(stack: Stack) -> None:
    first = send(stack, title="第一条")
    stack.clock.advance(60)
    second = send(stack, title="第二条")
    stack.sim.events.deliver_text("zhengchao", f"收到 ＃{first['code']}")
    stack.settle()
    assert receipts_by_user(stack, first["code"])["zhengchao"]["state"] == "acknowledged"
    assert receipts_by_user(stack, second["code"])["zhengchao"]["state"] == "sent"
    stack.sim.events.deliver_text("zhengchao", "收到")
    stack.settle()
    assert receipts_by_user(stack, second["code"])["zhengchao"]["state"] == "acknowledged"
    stack.sim.events.deliver_text("zhengchao", "收到")
    stack.settle()
    assert stack.texts_to("zhengchao")[-1] == "您目前没有待确认的通知。"


def test_other_text_gets_help_listing_pending_notices(stack: Stack) -> None:
    notice = send(stack, title="季度安全培训")
    stack.sim.events.deliver_text("yexinjing", "这个培训在哪里？")
    stack.settle()
    reply = stack.texts_to("yexinjing")[-1]
    assert f"#{notice['code']} 季度安全培训" in reply and "收到 #编号" in reply
    assert receipts_by_user(stack, notice["code"])["yexinjing"]["state"] == "sent"


def test_late_ack_is_recorded_as_late(stack: Stack) -> None:
    notice = send(stack, sla_minutes="30m")
    stack.clock.advance(timedelta(minutes=31))
    assert status(stack, notice["code"])["counts"]["overdue"] == notice["recipients"]
    click(stack, notice, "chenli")
    stack.sim.events.deliver_text("chenmin", "收到")
    stack.settle()
    receipts = receipts_by_user(stack, notice["code"])
    assert receipts["chenli"]["late"] and receipts["chenmin"]["late"]
    assert "逾期" in stack.texts_to("chenmin")[-1]
    assert stack.sim.state.card_updates[-1]["replace_name"] == "已收到（逾期）"
    counts = status(stack, notice["code"])["counts"]
    assert counts["late"] == 2 and counts["overdue"] == notice["recipients"] - 2


def test_departed_recipient_is_excluded(stack: Stack) -> None:
    notice = send(stack)
    with stack.services.db.begin() as s:
        departed = EmployeeDeparted("songfang", stack.clock.now(), "delete_user")
        stack.services.events.publish(s, stack.clock, departed)
    data = status(stack, notice["code"])
    assert data["counts"]["excluded"] == 1
    assert data["counts"]["counted"] == notice["recipients"] - 1
    assert receipts_by_user(stack, notice["code"])["songfang"]["excluded"]
    click(stack, notice, "songfang")
    stack.settle()
    assert receipts_by_user(stack, notice["code"])["songfang"]["state"] == "sent"


def test_resend_only_to_non_acknowledgers(stack: Stack) -> None:
    notice = send(stack)
    click(stack, notice, "zhangyao")
    stack.sim.events.deliver_text("luoxinlei", "好的")
    stack.settle()
    stack.clock.advance(timedelta(minutes=10))
    resp = api(stack, "post", f"/api/v1/notices/{notice['code']}/resend")
    assert resp.status_code == 200 and resp.json()["recipients"] == notice["recipients"] - 2
    stack.settle()
    sent = cards(stack, notice)
    assert len(sent) == 2
    assert not {"zhangyao", "luoxinlei"} & set(sent[1]["delivered"])
    assert len(sent[1]["delivered"]) == notice["recipients"] - 2
    # A click on the resent card acknowledges the same receipt.
    stack.sim.events.deliver_card_click("huangyao", sent[1]["task_id"], delivery.ACK_KEY)
    stack.settle()
    assert status(stack, notice["code"])["counts"]["acknowledged"] == 3


def test_outage_mid_send_ends_with_one_card_per_recipient(database_url: str) -> None:
    # A short timeout, so a slow WeCom answer looks like no answer after it did send.
    with make_world(database_url, clock=FakeClock(), client_options={"timeout": 0.3}) as stack:
        load_mirror(stack.db, stack.org, stack.clock.now())
        _outage_mid_send(stack)


def _outage_mid_send(stack: Stack) -> None:
    draft = service.draft_from(
        {"title": "停电通知", "audience": {"departments": [1]}}, PolicyBook()
    )
    with stack.db.begin() as s:
        created, _ = service.create(s, draft, stack.clock.now(), batch_size=7)
        notice = {"code": created.code, "recipients": created.recipients, "id": created.id,
                  "batches": created.batches}  # fmt: skip
    assert notice["batches"] > 10
    assert stack.outbox.drain(2) == 2
    stack.fault("message/send", "delay", delay=1.0, count=2)
    stack.outbox.drain(1)  # sent, but the answer comes too late: no answer
    stack.fault("message/send", "http500", count=40)
    stack.outbox.drain(100)
    until(lambda: stack.calls("message/send") >= 3 and len(cards(stack, notice)) >= 3)
    stack.clear_faults()
    stack.fault("message/send", "errcode", errcode=-1, count=3)
    for _ in range(6):
        stack.clock.advance(timedelta(minutes=16))
        stack.settle()
    per_user = Counter(u for m in cards(stack, notice) for u in m["delivered"])
    assert len(per_user) == notice["recipients"]
    assert set(per_user.values()) == {1}
    counts = status(stack, notice["code"])["counts"]
    assert counts["sent"] == notice["recipients"] and counts["failed"] == 0


def test_invalid_and_unlicensed_recipients_are_recorded(stack: Stack) -> None:
    sim(stack, "post", "/_sim/config", json={"unlicensed": ["zhunan"]})
    with stack.sim.state.lock:
        del stack.sim.state.org.members["majing"]  # gone from WeCom, still in our mirror
        stack.sim.state.org.touch()
    notice = send(stack)
    receipts = receipts_by_user(stack, notice["code"])
    assert receipts["zhunan"]["state"] == "unlicensed"
    assert receipts["majing"]["state"] == "invalid"


def test_clicks_on_unknown_cancelled_or_foreign_cards_create_no_ack(stack: Stack) -> None:
    notice = send(stack, audience={"departments": [{"id": 4, "subtree": False}]})
    task = cards(stack, notice)[0]["task_id"]
    stack.sim.events.deliver_card_click("zhangyao", "ntcdeadbeef-1", delivery.ACK_KEY)
    stack.sim.events.deliver_card_click("wujiakai", task, delivery.ACK_KEY)  # not a recipient
    api(stack, "post", f"/api/v1/notices/{notice['code']}/cancel")
    stack.sim.events.deliver_card_click("zhangyao", task, delivery.ACK_KEY)
    stack.settle()
    with stack.services.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(InboxEvent)) == 3
        acked = s.scalar(
            select(func.count()).select_from(Receipt).where(Receipt.state == "acknowledged")
        )
    assert acked == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"title": "x", "audience": {}}, "受众为空"),
        ({"title": "x", "audience": {"departments": [999]}}, "department:999"),
        ({"title": "x", "audience": {"users": ["nobody"]}}, "user:nobody"),
        ({"title": "x", "audience": {"groups": ["nochat"]}}, "group:nochat"),
        ({"title": "x" * 37, "audience": {"departments": [3]}}, "标题过长"),
        ({"title": "", "audience": {"departments": [3]}}, "标题不能为空"),
        ({"title": "x", "audience": {"departments": [3]}, "sla_minutes": 0}, "响应时限"),
        ({"title": "x", "audience": {"departments": [3]}, "sla_minutes": -5}, "响应时限"),
        ({"title": "x", "audience": {"departments": [3]}, "sla_minutes": "soon"}, "响应时限"),
        ({"title": "x", "audience": "everyone"}, "受众"),
    ],
)
def test_bad_requests_are_refused_and_send_nothing(
    stack: Stack, body: dict[str, Any], message: str
) -> None:
    resp = api(stack, "post", "/api/v1/notices", json=body)
    assert resp.status_code == 400 and message in resp.json()["error"]
    with stack.services.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_per_member_limit_defers_cards_beyond_the_budget(stack: Stack) -> None:
    codes = [
        send(stack, title=f"第{i}条", audience={"users": ["linjun"]})["code"] for i in range(27)
    ]
    with stack.services.db.begin() as s:
        later = s.scalars(
            select(OutboxMessage.next_attempt_at).where(OutboxMessage.status == "pending")
        ).all()
    assert len(later) == 2 and all(t > stack.clock.now() for t in later)
    stack.clock.advance(timedelta(minutes=2))
    stack.settle()
    assert all(receipts_by_user(stack, c)["linjun"]["state"] == "sent" for c in codes)


def test_cli_send_status_resend_list(
    stack: Stack, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from tests.conftest import API_TOKEN, APP_AES_KEY, APP_TOKEN
    from wecom_app.cli import main
    from wecom_app.clock import SystemClock

    env = {
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_AGENT_ID": "1000002",
        "WECOM_APP_SECRET": "app-secret",
        "WECOM_CALLBACK_TOKEN": APP_TOKEN,
        "WECOM_CALLBACK_AES_KEY": APP_AES_KEY,
        "WECOM_APP_API_TOKEN": API_TOKEN,
        "WECOM_API_BASE": stack.sim.url,
        "DATABASE_URL": database_url,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    stack.clock.set(SystemClock().now())  # the CLI runs on the real clock
    runner = CliRunner()

    def cli(*args: str) -> Any:
        result = runner.invoke(main, ["notice", *args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    preview = cli("send", "--title", "预览", "--department", "4", "--dry-run")
    assert preview["dry_run"] and preview["recipients"] == len(active_in(stack, {4}))
    sent = cli("send", "--title", "机房巡检", "--department-only", "4", "--sla", "1h")
    code = sent["notice"]["code"]
    assert sent["notice"]["sla_minutes"] == 60
    stack.clock.set(SystemClock().now())
    stack.settle()
    stack.sim.events.deliver_text("zhangyao", "收到")
    stack.settle()
    data = cli("status", code)
    assert (
        data["counts"]["acknowledged"] == 1 and data["counts"]["sent"] == preview["recipients"] - 1
    )
    assert cli("resend", code)["recipients"] == preview["recipients"] - 1
    assert [n["code"] for n in cli("list")] == [code]
    task = cli("send", "--type", "task", "--title", "修复打印机", "--user", "zhangyao")["notice"]
    assert (task["type"], task["sla_minutes"]) == ("task", 30)
    refused = runner.invoke(
        main, ["notice", "send", "--type", "chore", "--title", "x", "--user", "a"]
    )
    assert refused.exit_code != 0 and "task（任务）" in refused.output


def test_group_audience_and_post_into_the_group(stack: Stack) -> None:
    from wecom_app.models import GroupMember, ManagedGroup

    members = ["zhangyao", "luoxinlei", "wujiakai"]
    chatid = stack.services.client.appchat_create("消防演练群", "zhangyao", members, "drill01")
    now = stack.clock.now()
    with stack.services.db.begin() as s:
        rules = {"users": members}  # the daily check keeps them in
        group = ManagedGroup(
            chatid=chatid, name="消防演练群", rules=rules, created_at=now, updated_at=now
        )
        s.add(group)
        s.flush()
        s.add_all(GroupMember(group_id=group.id, userid=u, since=now) for u in members)
    notice = send(stack, audience={"groups": [chatid], "post_to_groups": True})
    assert notice["recipients"] == 3
    reasons = {r["reason"] for r in status(stack, notice["code"])["receipts"]}
    assert reasons == {"群 消防演练群"}
    with stack.sim.state.lock:
        posted = stack.sim.state.chats[chatid]["messages"]
    assert f"收到 #{notice['code']}" in str(posted[-1])
    stack.sim.events.deliver_text("wujiakai", f"收到 #{notice['code']}")
    stack.settle()
    assert receipts_by_user(stack, notice["code"])["wujiakai"]["state"] == "acknowledged"
