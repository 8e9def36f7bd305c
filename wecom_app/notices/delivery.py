"""Card delivery: batches of ≤ 1000 recipients through the outbox, paced per member.

Each batch is one `button_interaction` template card with its own task_id
(`<notice task_prefix>-<batch>`, unique forever), WeCom's duplicate check on, and an
idempotency key per notice and batch, so a retried or re-claimed send reaches nobody twice.
WeCom's answer (invaliduser, unlicenseduser, or a final error) updates the batch's receipts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from wecom_app.clock import BEIJING
from wecom_app.groups.quiet import post_after
from wecom_app.models import Employee, Notice, OutboxMessage, Receipt, ReceiptState
from wecom_app.notices import pacing
from wecom_app.outbox import Outcome, enqueue
from wecom_app.sla.calendar import WorkingCalendar

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
DUPLICATE_CHECK_SECONDS = 4 * 3600  # WeCom's maximum
ACK_KEY = "notice_ack"
FEEDBACK_KEY = "notice_feedback"
RESOLVE_KEY = "notice_resolved"
SUMMARY_CHARS = 160
BATCH_REF = "notice_batch"


@dataclass(frozen=True, slots=True)
class Batch:
    """One card send: its number, when it may go, and to whom."""

    number: int
    not_before: datetime
    userids: list[str]


def task_id(notice: Notice, batch: int) -> str:
    """The card task_id of one batch of a notice."""
    return f"{notice.task_prefix}-{batch}"


def task_prefix_of(task: str) -> str:
    """The notice part of a card task_id."""
    return task.rsplit("-", 1)[0]


def card(notice: Notice, task: str) -> dict[str, Any]:
    """The template card message for one batch."""
    buttons = [{"text": "收到", "style": 1, "key": ACK_KEY}]
    if notice.second_button:
        buttons.append({"text": notice.second_button, "style": 2, "key": FEEDBACK_KEY})
    if notice.resolve_by is not None:  # a task: 已解决 straight from the card
        buttons.append({"text": "已解决", "style": 1, "key": RESOLVE_KEY})
    summary = notice.body if len(notice.body) <= SUMMARY_CHARS else notice.body[:159] + "…"
    desc = f"通知 #{notice.code}"
    if notice.require_ack:
        desc += f" · 请在 {notice.sla_minutes} 分钟内确认"
    if notice.resolve_by is not None:
        desc += f"，{notice.resolve_by.astimezone(BEIJING):%m-%d %H:%M} 前解决"
    content = {
        "card_type": "button_interaction",
        "source": {"desc": "通知确认"},
        "main_title": {"title": notice.title, "desc": desc},
        "task_id": task,
        "button_list": buttons,
    }
    if summary:
        content["sub_title_text"] = summary
    if notice.author:
        content["horizontal_content_list"] = [{"keyname": "发布人", "value": notice.author}]
    return {"msgtype": "template_card", "template_card": content}


def plan_batches(
    userids: Sequence[str],
    history: dict[str, list[datetime]],
    now: datetime,
    first: int,
    size: int = BATCH_SIZE,
) -> list[Batch]:
    """Split recipients into paced batches of ≤ `size` (WeCom: 1000), numbered from `first`."""
    batches = []
    number = first
    for at, group in pacing.plan(userids, history, now).items():
        for start in range(0, len(group), size):
            batches.append(Batch(number, at, group[start : start + size]))
            number += 1
    return batches


def schedule(
    session: Session,
    notice: Notice,
    userids: Sequence[str],
    now: datetime,
    batch_size: int = BATCH_SIZE,
) -> list[Batch]:
    """Plan, reserve and enqueue the card batches for these recipients of a notice."""
    history = pacing.history(session, userids, now)
    batches = plan_batches(userids, history, now, notice.batches + 1, batch_size)
    for batch in batches:
        pacing.reserve(session, batch.userids, batch.not_before, "notice")
        task = task_id(notice, batch.number)
        enqueue(
            session,
            "message_send",
            {
                "msg": card(notice, task),
                "touser": batch.userids,
                "duplicate_check_interval": DUPLICATE_CHECK_SECONDS,
            },
            f"notice:{notice.id}:batch:{batch.number}",
            now=now,
            ref=(BATCH_REF, f"{notice.id}:{batch.number}"),
            not_before=batch.not_before,
        )
    if batches:
        notice.batches = batches[-1].number
    return batches


def group_text(notice: Notice) -> str:
    """The markdown posted into a managed group: acks still come 1:1, never from the group."""
    lines = [f"**通知 #{notice.code}：{notice.title}**"]
    if notice.body:
        lines.append(f"> {notice.body}")
    if notice.require_ack:
        lines.append(
            f"请在 {notice.sla_minutes} 分钟内点击应用消息卡片上的“收到”，"
            f"或给应用回复“收到 #{notice.code}”确认。"
        )
    return "\n".join(lines)


def post_to_groups(
    session: Session,
    notice: Notice,
    chatids: Iterable[str],
    now: datetime,
    *,
    cal: WorkingCalendar | None = None,
    urgent: bool = False,
) -> None:
    """Queue the notice's markdown into each managed group of its audience (in a group with
    quiet hours, once they are over, unless the notice is urgent)."""
    for chatid in chatids:
        enqueue(
            session,
            "appchat_send",
            {
                "chatid": chatid,
                "msg": {"msgtype": "markdown", "markdown": {"content": group_text(notice)}},
            },
            f"notice:{notice.id}:group:{chatid}",
            now=now,
            ref=("notice_group", f"{notice.id}:{chatid}"),
            not_before=post_after(session, chatid, now, cal, urgent),
        )


def employee_ids(session: Session, userids: Iterable[str]) -> list[int]:
    """Surrogate ids of the employees with these userids, in any letter case (WeCom answers
    `invaliduser` lower-cased)."""
    wanted = sorted({u.lower() for u in userids})
    found: list[int] = []
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        query = select(Employee.id).where(func.lower(Employee.userid).in_(chunk))
        found += session.scalars(query).all()
    return found


Deadlines = Callable[[Notice, datetime], tuple[datetime | None, datetime | None]]


def record_send(
    session: Session, msg: OutboxMessage, outcome: Outcome, *, deadlines: Deadlines
) -> None:
    """Update a batch's receipts from WeCom's answer to its card send.

    `deadlines(notice, sent_at)` gives each newly sent receipt its one deadline and first
    reminder point (the SLA feature's working-time clock); a receipt sent again keeps its own.
    """
    if msg.ref_type != BATCH_REF or not msg.ref_id:
        return
    notice_id, batch = (int(part) for part in msg.ref_id.split(":"))
    notice = session.get(Notice, notice_id)
    if notice is None:
        return
    now = msg.done_at or msg.next_attempt_at
    in_batch = (Receipt.notice_id == notice_id) & (Receipt.batch == batch)
    if not outcome.ok:
        session.execute(
            update(Receipt)
            .where(in_batch, Receipt.state == ReceiptState.QUEUED)
            .values(state=ReceiptState.FAILED, errcode=outcome.errcode)
        )
        log.warning("notice %s batch %s failed: %s", notice_id, batch, outcome.error)
        return
    due, first_action = deadlines(notice, now)
    queued = in_batch & (Receipt.state == ReceiptState.QUEUED)
    session.execute(
        update(Receipt)
        .where(queued, Receipt.excluded.is_(False))
        .values(state=ReceiptState.SENT, sent_at=now, due_at=due, next_action_at=first_action)
    )
    session.execute(
        update(Receipt).where(queued).values(state=ReceiptState.SENT, sent_at=now, due_at=due)
    )
    result = outcome.result or {}
    for key, state in (
        ("invaliduser", ReceiptState.INVALID),
        ("unlicenseduser", ReceiptState.UNLICENSED),
    ):
        ids = employee_ids(session, result.get(key) or [])
        for start in range(0, len(ids), 1000):
            session.execute(
                update(Receipt)
                .where(
                    in_batch,
                    Receipt.employee_id.in_(ids[start : start + 1000]),
                    Receipt.state != ReceiptState.ACKNOWLEDGED,
                )
                .values(state=state, next_action_at=None)
            )
