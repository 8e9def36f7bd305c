"""Anonymous surveys and feedback end to end through the simulator: a vote card answered by
several people whose stored answers carry no identity, each person counted once, a department
with fewer than five answers withheld; a two-question multiple-choice card; and feedback texts
kept without their sender."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from callbacks.processing import REDACTED
from tests.world import World, make_world
from wecom_app.clock import BEIJING, FakeClock
from wecom_app.models import Feedback, InboxEvent, MemberSend, SurveyBallot, SurveyTally
from wecom_app.surveys.service import SUBMIT_KEY

PLATFORM = ["zhangyao", "luoxinlei", "sunqiangjie", "huangyao", "zhunan", "liangbobo"]  # dept 4
MOBILE = ["wangxuanqiang", "tanglintao"]  # dept 5


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    start = datetime(2026, 3, 30, 10, 0, tzinfo=BEIJING).astimezone(UTC)
    with make_world(database_url, clock=FakeClock(start), mirror=True,
                    console_admins="zhenglinwei") as running:  # fmt: skip
        yield running


def make_survey(world: World, **extra: Any) -> dict[str, Any]:
    body = {"title": "第一季度群管理满意度", "by": "zhenglinwei",
            "questions": [{"title": "您对工作群的通知方式是否满意？",
                           "options": ["满意", "一般", "不满意"]}],
            "audience": {"departments": [4, 5]}, **extra}  # fmt: skip
    with world.api as http:
        resp = http.post("/api/v1/surveys", json=body)
    assert resp.status_code == 201, resp.text
    world.settle()
    return dict(resp.json()["survey"])


def card_of(world: World, userid: str) -> dict[str, Any]:
    with world.sim.state.lock:
        return [
            m["content"]
            for m in world.sim.state.messages
            if m["msgtype"] == "template_card" and userid in m["delivered"]
        ][-1]


def vote(world: World, userid: str, choices: list[tuple[str, list[str]]]) -> None:
    card = card_of(world, userid)
    world.clock.advance(1)
    delivered = world.sim.events.deliver_card_click(
        userid, card["task_id"], SUBMIT_KEY, card_type=card["card_type"], selected=choices
    )
    assert delivered.ok


def results(world: World, ident: int, close: bool = True) -> dict[str, Any]:
    with world.api as http:
        if close:
            assert http.post(f"/api/v1/surveys/{ident}/close").status_code == 200
        return dict(http.get(f"/api/v1/surveys/{ident}").json())


def test_answers_are_counted_once_kept_without_identity_and_small_groups_withheld(
    world: World,
) -> None:
    survey = make_survey(world)
    card = card_of(world, "luoxinlei")
    assert card["card_type"] == "vote_interaction"
    assert [o["text"] for o in card["checkbox"]["option_list"]] == ["满意", "一般", "不满意"]
    assert card["checkbox"]["mode"] == 0 and "匿名" in card["main_title"]["desc"]

    for n, userid in enumerate(PLATFORM[:4]):  # four answers: below five, nothing is shown
        vote(world, userid, [("q1", ["o1" if n % 2 == 0 else "o3"])])
    world.settle()
    early = results(world, survey["id"], close=False)  # while it runs, only the count shows
    assert early["answered"] == 4 and early["running"] and early["totals"] is None

    for userid in PLATFORM[4:]:
        vote(world, userid, [("q1", ["o2"])])
    for userid in MOBILE:  # 移动研发部: two answers, never shown on their own
        vote(world, userid, [("q1", ["o3"])])
    vote(world, "luoxinlei", [("q1", ["o2"])])  # a second answer is refused
    # OpitonIds, the misspelling some copies of WeCom's docs use, reads the same
    card = card_of(world, "zhengchao")
    world.clock.advance(1)
    assert world.sim.events.deliver_card_click("zhengchao", card["task_id"], SUBMIT_KEY,
                                               card_type="vote_interaction",
                                               selected=[("q1", ["o1"])],
                                               option_spelling="OpitonIds").ok  # fmt: skip
    world.settle()

    found = results(world, survey["id"])
    assert found["answered"] == 9 and found["recipients"] > 30
    counts = {o["text"]: o["count"] for o in found["totals"][0]["options"]}
    assert counts == {"满意": 3, "一般": 2, "不满意": 4}
    # 移动研发部's two answers are withheld; showing 平台研发部 would give them away (totals
    # minus 平台研发部), so it is pooled with them
    assert found["breakdown"] == [] and found["withheld_respondents"] == 9
    with world.sim.state.lock:
        replaced = {u["userids"][0]: u["replace_name"] for u in world.sim.state.card_updates}
    assert replaced["luoxinlei"] == "您已提交过" and replaced["tanglintao"] == "已匿名提交"

    with world.db.begin() as session:
        # the only rows naming people say that they answered, not what
        assert {c.key for c in inspect(SurveyBallot).columns} == {
            "survey_id", "userid", "answered", "bucket"}  # fmt: skip
        assert {c.key for c in inspect(SurveyTally).columns} == {
            "id", "survey_id", "question", "option", "bucket", "count"}  # fmt: skip
        # every tally existed before the first answer: their ids say nothing of who chose first
        tallies = session.scalars(select(SurveyTally).order_by(SurveyTally.id)).all()
        assert len(tallies) == 4 * len({t.bucket for t in tallies})
        answered = session.scalars(select(SurveyBallot.userid).where(SurveyBallot.answered)).all()
        assert sorted(answered) == sorted([*PLATFORM, *MOBILE, "zhengchao"])
        # and the clicks themselves are gone from the inbox
        clicks = session.scalars(
            select(InboxEvent).where(InboxEvent.event == "template_card_event")
        ).all()
        assert len(clicks) == 10
        assert all(c.raw_xml == REDACTED and c.from_user == "" and c.create_time == 0
                   and c.dedupe_key == f"redacted:{c.id}" for c in clicks)  # fmt: skip
        # the card updates were sent, then forgot whom they went to
        updates = session.execute(text(
            "SELECT status, payload FROM outbox_messages WHERE kind = 'anonymous_card_update'"
        )).all()  # fmt: skip
        assert len(updates) == 10 and all(status == "done" for status, _ in updates)
        assert all("luoxinlei" not in str(payload) for _, payload in updates)


def test_a_two_question_survey_goes_as_a_multiple_choice_card(world: World) -> None:
    questions = [{"title": "通知频率", "options": ["太多", "合适", "太少"]},
                 {"title": "休息时间被打扰", "options": ["从不", "偶尔", "经常"]}]  # fmt: skip
    survey = make_survey(world, questions=questions, audience={"departments": [4]})
    card = card_of(world, "huangyao")
    assert card["card_type"] == "multiple_interaction"
    assert [s["question_key"] for s in card["select_list"]] == ["q1", "q2"]
    for userid in PLATFORM[:5]:
        vote(world, userid, [("q1", ["o2"]), ("q2", ["o1", "o3"])])  # one choice per select
    world.settle()
    found = results(world, survey["id"])
    first, second = found["totals"]
    assert {o["text"]: o["count"] for o in first["options"]}["合适"] == 5
    assert {o["text"]: o["count"] for o in second["options"]} == {"从不": 5, "偶尔": 0, "经常": 0}
    assert [(b["department"], b["respondents"]) for b in found["breakdown"]] == [("平台研发部", 5)]
    assert found["withheld_respondents"] == 0
    with world.api as http:
        sheet = http.get(f"/api/v1/surveys/{survey['id']}?format=xlsx")
    assert sheet.status_code == 200 and sheet.content[:2] == b"PK"


def test_a_survey_is_refused_when_the_card_could_not_carry_it(world: World) -> None:
    with world.api as http:
        resp = http.post("/api/v1/surveys", json={"title": "t", "by": "zhenglinwei",
                         "questions": [{"title": "q", "options": ["只有一个"]}],
                         "audience": {"departments": [4]}})  # fmt: skip
        assert resp.status_code == 409 and "至少要有 2 个选项" in resp.json()["error"]
        resp = http.post("/api/v1/surveys", json={"title": "t", "by": "zhenglinwei",
                         "questions": [{"title": f"q{n}", "options": ["a", "b"]}
                                       for n in range(4)],
                         "audience": {"departments": [4]}})  # fmt: skip
        assert resp.status_code == 409 and "至多 3 个问题" in resp.json()["error"]


def test_feedback_is_kept_without_its_sender_and_acknowledged(world: World) -> None:
    assert world.sim.events.deliver_text("huangyao", "匿名反馈：食堂中午排队太久").ok
    assert world.sim.events.deliver_text("luoxinlei", "匿名建议 周会可以缩短到半小时").ok
    assert world.sim.events.deliver_text("zhunan", "匿名反馈：").ok
    world.settle()
    assert "已匿名收到您的反馈" in world.texts_to("huangyao")[-1]
    assert "请在“匿名反馈：”后写下您的意见" in world.texts_to("zhunan")[-1]
    with world.db.begin() as session:
        assert sorted(f.text for f in session.scalars(select(Feedback))) == [
            "周会可以缩短到半小时", "食堂中午排队太久"]  # fmt: skip
        assert {c.key for c in inspect(Feedback).columns} == {"id", "text", "day", "survey_id"}
        rows = session.scalars(select(InboxEvent).where(InboxEvent.msg_type == "text")).all()
        assert all(r.raw_xml == REDACTED and r.from_user == "" for r in rows)
        leaked = session.execute(text(
            "SELECT count(*) FROM outbox_messages WHERE CAST(payload AS TEXT) LIKE '%食堂%'"
        )).scalar()  # fmt: skip
        assert leaked == 0
        # the replies went out, then forgot whom they went to; no pacing row names the sender
        replies = session.execute(text(
            "SELECT status, payload FROM outbox_messages WHERE kind = 'anonymous_reply'"
        )).all()  # fmt: skip
        assert len(replies) == 3 and all(st == "done" and "huangyao" not in str(p)
                                         for st, p in replies)  # fmt: skip
        assert (
            session.scalars(select(MemberSend).where(MemberSend.userid == "huangyao")).all() == []
        )
    with world.api as http:
        listed = http.get("/api/v1/feedback").json()["feedback"]
        assert {f["day"] for f in listed} == {"2026-03-30"}
        csv = http.get("/api/v1/feedback?format=csv")
        assert "食堂中午排队太久" in csv.text


def test_a_survey_closes_at_its_time(world: World) -> None:
    survey = make_survey(world, closes_at="2026-03-30T12:00:00+08:00")
    vote(world, "huangyao", [("q1", ["o1"])])
    world.clock.advance(3 * 3600)
    vote(world, "luoxinlei", [("q1", ["o1"])])
    world.settle()
    with world.sim.state.lock:
        replaced = {u["userids"][0]: u["replace_name"] for u in world.sim.state.card_updates}
    assert replaced == {"huangyao": "已匿名提交", "luoxinlei": "问卷已结束"}
    over = results(world, survey["id"], close=False)
    assert over["answered"] == 1 and not over["running"] and over["status"] == "closed"
    with world.api as http:
        late = http.post("/api/v1/surveys", json={"title": "t", "by": "zhenglinwei",
                         "closes_at": "2026-03-01T00:00:00+08:00",
                         "questions": [{"title": "q", "options": ["a", "b"]}],
                         "audience": {"departments": [4]}})  # fmt: skip
    assert late.status_code == 409 and "须晚于现在" in late.json()["error"]


def test_an_anonymous_event_that_fails_keeps_nothing_of_its_content(database_url: str) -> None:
    def boom(ctx: Any, event: Any) -> None:
        raise ValueError(f"secret choice {event.selected_items}")

    start = datetime(2026, 3, 30, 10, 0, tzinfo=BEIJING).astimezone(UTC)
    with make_world(database_url, clock=FakeClock(start), mirror=True,
                    customize=lambda r: r.handlers.add_card("zzz", handler=boom,
                                                            anonymous=True)) as world:  # fmt: skip
        assert world.sim.events.deliver_card_click("huangyao", "zzz1", SUBMIT_KEY,
                                                   card_type="vote_interaction",
                                                   selected=[("q1", ["o2"])]).ok  # fmt: skip
        for _ in range(8):
            world.clock.advance(120)
            world.process()
        with world.db.begin() as session:
            row = session.scalars(select(InboxEvent)).one()
        assert row.status == "failed" and row.error == "ValueError（匿名事件，不记录内容）"
        assert (row.raw_xml, row.from_user, row.dedupe_key) == (REDACTED, "", f"redacted:{row.id}")
