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

from sqlalchemy import select, update
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
    Survey,
    SurveyBallot,
    SurveyTally,
)
from wecom_app.notices import pacing
from wecom_app.outbox import enqueue

log = logging.getLogger(__name__)

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
    closes_at = data.get("closes_at")
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
        closes_at=closes_at if isinstance(closes_at, datetime) else None,
        departments=_subtree_counts(session, userids),
    )
    session.add(survey)
    session.flush()
    session.add_all(SurveyBallot(survey_id=survey.id, userid=u) for u in userids)
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
    """A submitted survey card: count the choices in the answerer's bucket, mark that they
    answered, and keep nothing else of the click (the inbox row is emptied)."""
    ctx.redact = True
    session, now = ctx.session, ctx.clock.now()
    prefix = event.task_id.rsplit("-", 1)[0]
    survey = session.scalars(select(Survey).where(Survey.task_prefix == prefix)).first()
    if survey is None:
        return
    replace = _answer(session, survey, event, now)
    if replace and event.response_code:
        enqueue(
            session,
            "update_template_card",
            {
                "userids": [event.from_user],
                "response_code": event.response_code,
                "replace_name": replace,
            },
            f"survey-card:{event.response_code}",
            now=now,
            ref=("survey", str(survey.id)),
        )


def _answer(session: Session, survey: Survey, event: TemplateCardEvent, now: datetime) -> str:
    if survey.status != "open" or (survey.closes_at is not None and survey.closes_at <= now):
        return "问卷已结束"
    valid = {q["key"]: {o["id"] for o in q["options"]} for q in survey.questions}
    multiple = {q["key"]: q["multiple"] for q in survey.questions}
    chosen: dict[str, list[str]] = {}
    for item in event.selected_items:
        options = [o for o in item.option_ids if o in valid.get(item.question_key, ())]
        if not multiple.get(item.question_key, False):
            options = options[:1]
        if options:
            chosen[item.question_key] = sorted(set(options))
    if not chosen:
        return ""  # nothing chosen: the card stays as it is, they may submit again
    marked = session.execute(
        update(SurveyBallot)
        .where(
            SurveyBallot.survey_id == survey.id,
            SurveyBallot.userid == event.from_user,
            SurveyBallot.answered.is_(False),
        )
        .values(answered=True)
        .execution_options(synchronize_session=False)
    )
    if marked.rowcount != 1:  # type: ignore[attr-defined]
        return "您已提交过"
    bucket = _bucket(session, survey, event.from_user)
    _count(session, survey.id, RESPONDENTS, RESPONDENTS, bucket)
    for question, options in chosen.items():
        for option in options:
            _count(session, survey.id, question, option, bucket)
    return "已匿名提交"


def _count(session: Session, survey_id: int, question: str, option: str, bucket: int) -> None:
    """Add one to a tally, creating it on first use (the unique key settles races)."""
    bumped = session.execute(
        update(SurveyTally)
        .where(
            SurveyTally.survey_id == survey_id,
            SurveyTally.question == question,
            SurveyTally.option == option,
            SurveyTally.bucket == bucket,
        )
        .values(count=SurveyTally.count + 1)
        .execution_options(synchronize_session=False)
    )
    if bumped.rowcount == 0:  # type: ignore[attr-defined]
        pacing.insert_rows(
            session,
            SurveyTally,
            [
                {
                    "survey_id": survey_id,
                    "question": question,
                    "option": option,
                    "bucket": bucket,
                    "count": 0,
                }
            ],
        )
        session.execute(
            update(SurveyTally)
            .where(
                SurveyTally.survey_id == survey_id,
                SurveyTally.question == question,
                SurveyTally.option == option,
                SurveyTally.bucket == bucket,
            )
            .values(count=SurveyTally.count + 1)
            .execution_options(synchronize_session=False)
        )


def _bucket(session: Session, survey: Survey, userid: str) -> int:
    """The answerer's department, or the nearest one above with enough people asked."""
    main = session.scalar(select(Employee.main_department).where(Employee.userid == userid))
    counts = {int(k): int(v) for k, v in (survey.departments or {}).items()}
    parents = dict(session.execute(select(Department.id, Department.parent_id)).all())
    seen: set[int] = set()
    dept = main
    while dept is not None and dept not in seen:
        seen.add(dept)
        if counts.get(dept, 0) >= _min_breakdown(survey):
            return dept
        dept = parents.get(dept)
    return COMPANY


def _min_breakdown(survey: Survey) -> int:
    return max(2, survey.min_breakdown)


# -- results --------------------------------------------------------------------------------


def results(session: Session, survey_id: int) -> dict[str, Any]:
    """Totals and the department breakdown, each withheld below the minimum of people."""
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

    shown = answered >= minimum
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for counts in tallies.values():
        for k, v in counts.items():
            totals[k] += v
    breakdown, withheld = [], 0
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
    return {
        "id": survey.id,
        "title": survey.title,
        "status": survey.status,
        "created_at": survey.created_at.isoformat(),
        "created_by": survey.created_by,
        "recipients": survey.recipients,
        "answered": answered,
        "min_breakdown": minimum,
        "totals": table(totals) if shown else None,
        "totals_withheld": not shown,
        "breakdown": breakdown if shown else [],
        "withheld_respondents": withheld if shown else answered,
    }


def listing(session: Session) -> list[dict[str, Any]]:
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
            "status": s.status,
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
    """Keep the feedback without its sender; tell the sender it arrived."""
    ctx.redact = True
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
        "message_send",
        {"msg": {"msgtype": "text", "text": {"content": reply}}, "touser": [event.from_user]},
        f"feedback-reply:{event.dedupe_key}",
        now=now,
        ref=("feedback", ""),
        not_before=pacing.slot_for(session, event.from_user, now, "reply"),
    )


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


def _subtree_counts(session: Session, userids: list[str]) -> dict[str, int]:
    """How many of the audience sit in each department and below it."""
    parents = dict(session.execute(select(Department.id, Department.parent_id)).all())
    counts: dict[int, int] = defaultdict(int)
    wanted = set(userids)
    for userid, main in session.execute(select(Employee.userid, Employee.main_department)):
        if userid not in wanted or main is None:
            continue
        dept: int | None = main
        seen: set[int] = set()
        while dept is not None and dept not in seen:
            seen.add(dept)
            counts[dept] += 1
            dept = parents.get(dept)
    return {str(k): v for k, v in counts.items()}
