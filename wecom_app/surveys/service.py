"""Anonymous surveys as vote cards, and anonymous feedback sent to the app.

"每季度收集一次成员的反馈……设置匿名反馈渠道，确保成员可以自由表达意见": a survey goes to a group's
members or an audience (the rules a group uses) as WeCom's `vote_interaction` card (one
question) or `multiple_interaction` card (two or three). Each person answers once; what they
chose is added to counts (`SurveyTally`), and the only row with their name (`SurveyBallot`)
says that they answered, not what or when. The inbox row of the click is emptied once handled.
Counts are kept per department bucket: a person's main department, or the nearest department
above it with at least `min_breakdown` people asked, so that no bucket is smaller than that;
results show a bucket only when at least `min_breakdown` people in it have answered, and the
totals only when that many have answered in all.

A text that starts with a feedback keyword ("匿名反馈：食堂排队太久") is kept without its sender
and acknowledged to them; its inbox row is emptied too.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.orm import Session

from callbacks.dispatch import HandlerContext
from callbacks.events import TemplateCardEvent, TextMessage
from wecom_app.clock import BEIJING
from wecom_app.errors import AppError
from wecom_app.groups.mirror import org_view
from wecom_app.groups.policy import GroupPolicy
from wecom_app.groups.rules import GroupRules, RuleError, desired_members
from wecom_app.models import (
    Department,
    Employee,
    Feedback,
    GroupMember,
    ManagedGroup,
    OutboxMessage,
    Survey,
    SurveyBallot,
    SurveyTally,
)
from wecom_app.notices import pacing
from wecom_app.outbox import Outcome, enqueue

log = logging.getLogger(__name__)

ANONYMOUS_REPLY = "anonymous_reply"  # message_send whose row forgets its recipient when done
ANONYMOUS_CARD_UPDATE = "anonymous_card_update"  # the same for update_template_card
CARD_PREFIX = "srv"  # task_id: srv<hex>-<batch>
SUBMIT_KEY = "srv_submit"
BATCH = 1000  # message/send takes up to 1000 userids
MAX_VOTE_OPTIONS = 20  # vote_interaction: checkbox.option_list
MAX_SELECTS, MAX_SELECT_OPTIONS = 3, 10  # multiple_interaction: select_list, option_list
RESPONDENTS = ""  # the tally row counting a bucket's respondents
COMPANY = 0
MAX_FEEDBACK_CHARS = 2000
_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


class SurveyError(AppError):
    """A survey that cannot be made or sent; the message says why, in Chinese."""


# -- making and sending ---------------------------------------------------------------------


def questions_from(data: Any) -> list[dict[str, Any]]:
    """Validate the questions of a survey; every question gets a key, every option an id."""
    if not isinstance(data, list) or not data:
        raise SurveyError("问卷至少要有一个问题（questions）")
    if len(data) > MAX_SELECTS:
        raise SurveyError(f"一份问卷至多 {MAX_SELECTS} 个问题（企业微信卡片的限制）")
    found = []
    for n, item in enumerate(data, 1):
        if not isinstance(item, dict) or not str(item.get("title") or "").strip():
            raise SurveyError(f"第 {n} 个问题缺少标题（title）")
        options = item.get("options")
        if not isinstance(options, list) or len(options) < 2:
            raise SurveyError(f"第 {n} 个问题至少要有 2 个选项（options）")
        most = MAX_VOTE_OPTIONS if len(data) == 1 else MAX_SELECT_OPTIONS
        if len(options) > most:
            raise SurveyError(f"第 {n} 个问题至多 {most} 个选项")
        listed = []
        for m, option in enumerate(options, 1):
            text = option.get("text") if isinstance(option, dict) else option
            if not str(text or "").strip():
                raise SurveyError(f"第 {n} 个问题的第 {m} 个选项为空")
            ident = str(option.get("id") or f"o{m}") if isinstance(option, dict) else f"o{m}"
            if not _ID.match(ident):
                raise SurveyError(f"选项 id 只能由字母、数字、- 和 _ 组成：{ident}")
            listed.append({"id": ident, "text": str(text).strip()[:32]})
        if len({o["id"] for o in listed}) != len(listed):
            raise SurveyError(f"第 {n} 个问题的选项 id 重复")
        multiple = bool(item.get("multiple", False))
        if multiple and len(data) > 1:
            raise SurveyError("多选只用于单个问题的问卷（多问题卡片每题只能单选）")
        found.append(
            {
                "key": f"q{n}",
                "title": str(item["title"]).strip()[:64],
                "options": listed,
                "multiple": multiple,
            }
        )
    return found


def create(
    session: Session, data: dict[str, Any], *, by: str, now: datetime, policy: GroupPolicy
) -> Survey:
    """Make a survey and queue its cards to everyone in its audience."""
    title = str(data.get("title") or "").strip()
    if not title:
        raise SurveyError("问卷缺少标题（title）")
    questions = questions_from(data.get("questions"))
    audience = data.get("audience") or {}
    if not isinstance(audience, dict) or not audience:
        raise SurveyError("请指定问卷对象（audience）：chatid（受管群）或 departments/tags/users")
    userids = _audience(session, audience)
    if not userids:
        raise SurveyError("问卷对象中没有在职员工")
    closes_at = _closes_at(data.get("closes_at"), now)
    chains = _chains(session, userids)
    counts: dict[int, int] = defaultdict(int)
    for chain in chains.values():
        for dept in chain:
            counts[dept] += 1
    survey = Survey(
        title=title[:128],
        description=str(data.get("description") or "")[:500],
        questions=questions,
        audience=audience,
        created_by=by,
        created_at=now,
        task_prefix=f"{CARD_PREFIX}{secrets.token_hex(8)}",
        status="open",
        recipients=len(userids),
        min_breakdown=policy.min_breakdown,
        closes_at=closes_at,
        departments={str(k): v for k, v in counts.items()},
    )
    session.add(survey)
    session.flush()
    minimum = _min_breakdown(survey)
    # each recipient's bucket: the nearest department, from theirs up, with enough people asked
    buckets = {
        u: next((d for d in chain if counts[d] >= minimum), COMPANY) for u, chain in chains.items()
    }
    pacing.insert_rows(session, SurveyBallot, [
        {"survey_id": survey.id, "userid": u, "answered": False, "bucket": buckets[u]}
        for u in userids
    ])  # fmt: skip
    keys = [(RESPONDENTS, RESPONDENTS)] + [
        (q["key"], o["id"]) for q in questions for o in q["options"]
    ]
    # every tally exists from the start: answering only adds, and no row's creation tells
    # which option someone chose first
    pacing.insert_rows(session, SurveyTally, [
        {"survey_id": survey.id, "question": q, "option": o, "bucket": b, "count": 0}
        for b in sorted(set(buckets.values())) for q, o in keys
    ])  # fmt: skip
    history = pacing.history(session, userids, now)
    batch = 0
    for at, people in pacing.plan(userids, history, now).items():
        for start in range(0, len(people), BATCH):
            batch += 1
            chunk = people[start : start + BATCH]
            pacing.reserve(session, chunk, at, "survey")
            task = f"{survey.task_prefix}-{batch}"
            enqueue(
                session,
                "message_send",
                {"msg": card(survey, task), "touser": chunk},
                f"survey:{survey.id}:{batch}",
                now=now,
                ref=("survey", str(survey.id)),
                not_before=at if at > now else None,
            )
    return survey


def _closes_at(value: Any, now: datetime) -> datetime | None:
    """When answers stop: an ISO 8601 time with its offset, in the future (None: when closed)."""
    if value in (None, ""):
        return None
    try:
        at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise SurveyError(
            f"closes_at 须为带时区的时间，如 2026-04-10T18:00:00+08:00：{value}"
        ) from None
    if at.tzinfo is None:
        raise SurveyError("closes_at 须带时区，如 +08:00")
    if at <= now:
        raise SurveyError("closes_at 须晚于现在")
    return at


def card(survey: Survey, task: str) -> dict[str, Any]:
    """The survey's card: a vote card for one question, a multiple-choice card for more."""
    content: dict[str, Any] = {
        "source": {"desc": "匿名问卷"},
        "main_title": {"title": survey.title[:26], "desc": "匿名：只统计人数，不记录谁选了什么"},
        "task_id": task,
        "submit_button": {"text": "匿名提交", "key": SUBMIT_KEY},
    }
    questions = survey.questions
    if len(questions) == 1:
        q = questions[0]
        content["card_type"] = "vote_interaction"
        content["main_title"]["desc"] = f"{q['title']}（匿名）"[:44]
        content["checkbox"] = {
            "question_key": q["key"],
            "mode": 1 if q["multiple"] else 0,
            "option_list": [{"id": o["id"], "text": o["text"]} for o in q["options"]],
        }
    else:
        content["card_type"] = "multiple_interaction"
        content["select_list"] = [
            {
                "question_key": q["key"],
                "title": q["title"][:16],
                "option_list": [{"id": o["id"], "text": o["text"]} for o in q["options"]],
            }
            for q in questions
        ]
    return {"msgtype": "template_card", "template_card": content}


def close(session: Session, survey_id: int) -> Survey:
    """Stop taking answers."""
    survey = session.get(Survey, survey_id)
    if survey is None:
        raise SurveyError(f"没有问卷 {survey_id}")
    survey.status = "closed"
    return survey


# -- answering ------------------------------------------------------------------------------


def on_card(ctx: HandlerContext, event: TemplateCardEvent) -> None:
    """A submitted survey card: count the choices in the answerer's bucket and mark that they
    answered (the route is anonymous: the inbox keeps nothing else of the click)."""
    session, now = ctx.session, ctx.clock.now()
    prefix = event.task_id.rsplit("-", 1)[0]
    survey = session.scalars(select(Survey).where(Survey.task_prefix == prefix)).first()
    if survey is None:
        return
    replace = _answer(session, survey, event, ctx.received_at or now)
    if replace and event.response_code:
        enqueue(
            session,
            ANONYMOUS_CARD_UPDATE,
            {
                "userids": [event.from_user],
                "response_code": event.response_code,
                "replace_name": replace,
            },
            f"survey-card:{event.response_code}",
            now=now,
        )


def _answer(session: Session, survey: Survey, event: TemplateCardEvent, at: datetime) -> str:
    """Count one submission, as of when it reached the app; return the card's new button."""
    if survey.status != "open" or (survey.closes_at is not None and survey.closes_at <= at):
        return "问卷已结束"
    valid = {q["key"]: {o["id"] for o in q["options"]} for q in survey.questions}
    multiple = {q["key"]: q["multiple"] for q in survey.questions}
    chosen: set[tuple[str, str]] = set()
    for item in event.selected_items:
        options = [o for o in item.option_ids if o in valid.get(item.question_key, ())]
        if not multiple.get(item.question_key, False):
            options = options[:1]
        chosen.update((item.question_key, o) for o in options)
    if not chosen:
        return ""  # nothing chosen: the card stays as it is, they may submit again
    bucket = session.scalar(
        update(SurveyBallot)
        .where(
            SurveyBallot.survey_id == survey.id,
            SurveyBallot.userid == event.from_user,
            SurveyBallot.answered.is_(False),
        )
        .values(answered=True)
        .returning(SurveyBallot.bucket)
        .execution_options(synchronize_session=False)
    )
    if bucket is None:
        return "您已提交过"
    # Every tally row of the bucket is rewritten, the chosen ones plus one: no row's version
    # (PostgreSQL's xmin) tells which options this transaction chose.
    hit = or_(
        and_(SurveyTally.question == RESPONDENTS, SurveyTally.option == RESPONDENTS),
        *(and_(SurveyTally.question == q, SurveyTally.option == o) for q, o in sorted(chosen)),
    )
    session.execute(
        update(SurveyTally)
        .where(SurveyTally.survey_id == survey.id, SurveyTally.bucket == bucket)
        .values(count=SurveyTally.count + case((hit, 1), else_=0))
        .execution_options(synchronize_session=False)
    )
    return "已匿名提交"


def _past(survey: Survey, now: datetime | None) -> bool:
    return survey.closes_at is not None and now is not None and survey.closes_at <= now


def _min_breakdown(survey: Survey) -> int:
    return max(2, survey.min_breakdown)


# -- results --------------------------------------------------------------------------------


def results(session: Session, survey_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Totals and the department breakdown once the survey is over, each withheld below the
    minimum of people; while it runs, only how many have answered."""
    survey = session.get(Survey, survey_id)
    if survey is None:
        raise SurveyError(f"没有问卷 {survey_id}")
    minimum = _min_breakdown(survey)
    tallies: dict[int, dict[tuple[str, str], int]] = defaultdict(dict)
    for row in session.scalars(select(SurveyTally).where(SurveyTally.survey_id == survey.id)):
        tallies[row.bucket][(row.question, row.option)] = row.count
    respondents = {b: t.get((RESPONDENTS, RESPONDENTS), 0) for b, t in tallies.items()}
    answered = sum(respondents.values())
    names = dict(session.execute(select(Department.id, Department.name)).all())

    def table(counts: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
        return [
            {
                "key": q["key"],
                "title": q["title"],
                "multiple": q["multiple"],
                "options": [
                    {"id": o["id"], "text": o["text"], "count": counts.get((q["key"], o["id"]), 0)}
                    for o in q["options"]
                ],
            }
            for q in survey.questions
        ]

    running = survey.status == "open" and not _past(survey, now)
    # While answers come in, every new one moves the counts: watching them would tell who
    # chose what. Results are shown once the survey is over, and only from `minimum` answers.
    shown = answered >= minimum and not running
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for counts in tallies.values():
        for k, v in counts.items():
            totals[k] += v
    breakdown: list[dict[str, Any]] = []
    withheld = 0
    for bucket, counts in sorted(tallies.items()):
        if bucket == COMPANY:
            withheld += respondents.get(bucket, 0)
            continue
        if respondents.get(bucket, 0) < minimum:
            withheld += respondents.get(bucket, 0)
            continue
        breakdown.append(
            {
                "department_id": bucket,
                "department": names.get(bucket, str(bucket)),
                "respondents": respondents[bucket],
                "questions": table(counts),
            }
        )
    # Totals minus the departments shown give the rest's answers: the rest must be at least
    # `minimum` people too, so the smallest departments shown join it until it is.
    breakdown.sort(key=lambda b: (b["respondents"], b["department_id"]))
    while breakdown and 0 < withheld < minimum:
        withheld += breakdown.pop(0)["respondents"]
    breakdown.sort(key=lambda b: b["department_id"])
    return {
        "id": survey.id,
        "title": survey.title,
        "status": "closed" if _past(survey, now) else survey.status,
        "closes_at": survey.closes_at.isoformat() if survey.closes_at else None,
        "created_at": survey.created_at.isoformat(),
        "created_by": survey.created_by,
        "recipients": survey.recipients,
        "answered": answered,
        "min_breakdown": minimum,
        "totals": table(totals) if shown else None,
        "totals_withheld": not shown,
        "running": running,
        "breakdown": breakdown if shown else [],
        "withheld_respondents": withheld if shown else answered,
    }


def listing(session: Session, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every survey, newest first, with how many answered."""
    counts: dict[int, int] = defaultdict(int)
    for survey_id in session.scalars(
        select(SurveyBallot.survey_id).where(SurveyBallot.answered.is_(True))
    ):
        counts[survey_id] += 1
    return [
        {
            "id": s.id,
            "title": s.title,
            "status": "closed" if _past(s, now) else s.status,
            "created_at": s.created_at.isoformat(),
            "recipients": s.recipients,
            "answered": counts.get(s.id, 0),
        }
        for s in session.scalars(select(Survey).order_by(Survey.id.desc()))
    ]


# -- feedback -------------------------------------------------------------------------------


def feedback_text(text: str, keywords: tuple[str, ...]) -> str | None:
    """The feedback in a text that starts with a keyword ("匿名反馈：…"), else None."""
    stripped = text.strip()
    for keyword in keywords:
        if stripped.startswith(keyword):
            return stripped[len(keyword) :].lstrip(" ：:，,\u3000\n")
    return None


def on_feedback(ctx: HandlerContext, event: TextMessage, *, policy: GroupPolicy) -> None:
    """Keep the feedback without its sender; tell the sender it arrived (the route is
    anonymous: the inbox keeps nothing of the text, and the reply's row forgets whom it went
    to once sent; no per-member pacing row is written for it)."""
    session, now = ctx.session, ctx.clock.now()
    body = feedback_text(event.content, policy.feedback_keywords) or ""
    if not body:
        word = policy.feedback_keywords[0]
        reply = f"请在“{word}：”后写下您的意见，例如“{word}：会议太多”。"
    else:
        day = (ctx.received_at or now).astimezone(BEIJING).date().isoformat()
        session.add(Feedback(text=body[:MAX_FEEDBACK_CHARS], day=day))
        reply = "已匿名收到您的反馈：系统不记录发送人，人事行政部只能看到内容和日期。谢谢！"
    enqueue(
        session,
        ANONYMOUS_REPLY,
        {"msg": {"msgtype": "text", "text": {"content": reply}}, "touser": [event.from_user]},
        f"feedback-reply:{event.dedupe_key}",
        now=now,
    )


def forget_recipient(session: Session, msg: OutboxMessage, outcome: Outcome) -> None:
    """Once an anonymous reply or card update is done with, its row keeps no recipient."""
    msg.payload = {"forgotten": True}
    msg.result = None


def feedback_list(session: Session, since: str | None = None) -> list[dict[str, Any]]:
    """Feedback texts with their day, newest first."""
    query = select(Feedback).order_by(Feedback.day.desc(), Feedback.id.desc())
    if since:
        query = query.where(Feedback.day >= since)
    return [{"id": f.id, "day": f.day, "text": f.text} for f in session.scalars(query)]


# -- helpers --------------------------------------------------------------------------------


def _audience(session: Session, audience: dict[str, Any]) -> list[str]:
    chatid = audience.get("chatid")
    if chatid:
        group = session.scalars(select(ManagedGroup).where(ManagedGroup.chatid == chatid)).first()
        if group is None:
            raise SurveyError(f"没有受管群 {chatid}")
        members = set(
            session.scalars(select(GroupMember.userid).where(GroupMember.group_id == group.id))
        )
        org = org_view(session)
        return sorted(u for u in members if u in org.people and org.people[u].active)
    rules = {k: v for k, v in audience.items() if k in ("departments", "tags", "users", "exclude")}
    try:
        return sorted(desired_members(GroupRules.from_dict(rules), org_view(session), limit=None))
    except RuleError as exc:
        raise SurveyError(str(exc)) from None


def _chains(session: Session, userids: list[str]) -> dict[str, list[int]]:
    """Each recipient's main department and every department above it, nearest first (the
    mirror read once)."""
    parents = dict(session.execute(select(Department.id, Department.parent_id)).all())
    wanted = set(userids)
    chains: dict[str, list[int]] = {u: [] for u in userids}
    for userid, main in session.execute(select(Employee.userid, Employee.main_department)):
        if userid not in wanted:
            continue
        dept: int | None = main
        while dept is not None and dept not in chains[userid]:
            chains[userid].append(dept)
            dept = parents.get(dept)
    return chains
