"""Acknowledgements: one per receipt, the first wins; card clicks; departed recipients.

Every channel (card button, text reply, link page) ends in `acknowledge`, which locks the receipt
row, so a double click, a WeCom retry and a text sent in the same second still make one ack.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callbacks.dispatch import HandlerContext, handles
from callbacks.events import TemplateCardEvent
from wecom_app.clock import Clock
from wecom_app.domain_events import EmployeeDeparted, subscribe
from wecom_app.models import Employee, Notice, NoticeStatus, Receipt, ReceiptState
from wecom_app.notices import delivery
from wecom_app.outbox import enqueue

log = logging.getLogger(__name__)

ACKABLE = (ReceiptState.QUEUED, ReceiptState.SENT, ReceiptState.FAILED)


@dataclass(frozen=True, slots=True)
class AckResult:
    """What an acknowledgement attempt did."""

    notice: Notice
    receipt: Receipt
    first: bool  # False when the receipt was already acknowledged
    late: bool


def find_receipt(
    session: Session, notice_id: int, employee_id: int, lock: bool = True
) -> Receipt | None:
    """The receipt of one employee for one notice, locked for update on PostgreSQL."""
    query = select(Receipt).where(
        Receipt.notice_id == notice_id, Receipt.employee_id == employee_id
    )
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def employee_by_userid(session: Session, userid: str) -> Employee | None:
    """The mirrored employee with this userid."""
    return session.scalars(select(Employee).where(Employee.userid == userid)).one_or_none()


def acknowledge(
    session: Session, notice: Notice, receipt: Receipt, channel: str, now: datetime
) -> AckResult:
    """Record an ack unless one exists; an ack after the deadline is kept and marked late."""
    if receipt.state == ReceiptState.ACKNOWLEDGED:
        return AckResult(notice, receipt, False, receipt.late)
    due = receipt.due_at or delivery.due_time(notice, receipt.sent_at or notice.created_at)
    late = bool(notice.require_ack and due is not None and now > due)
    receipt.state = ReceiptState.ACKNOWLEDGED
    receipt.acknowledged_at, receipt.ack_channel, receipt.late = now, channel, late
    receipt.errcode = None
    receipt.next_action_at = None
    return AckResult(notice, receipt, True, late)


def notice_for_task(session: Session, task: str) -> Notice | None:
    """The notice a card task_id belongs to."""
    prefix = delivery.task_prefix_of(task)
    return session.scalars(select(Notice).where(Notice.task_prefix == prefix)).one_or_none()


@handles("event", "template_card_event")
def on_card_click(ctx: HandlerContext, event: TemplateCardEvent) -> None:
    """A card button click: ack (or record feedback) and update the clicker's card."""
    session, now = ctx.session, ctx.clock.now()
    notice = notice_for_task(session, event.task_id) if event.task_id else None
    if notice is None:
        log.info("card click for unknown task %r from %s", event.task_id, event.from_user)
        return
    if notice.status != NoticeStatus.ACTIVE:
        log.info("card click on cancelled notice %s from %s", notice.id, event.from_user)
        return
    employee = employee_by_userid(session, event.from_user)
    receipt = find_receipt(session, notice.id, employee.id) if employee else None
    if receipt is None or receipt.excluded:
        log.info("card click on notice %s from non-recipient %s", notice.id, event.from_user)
        return
    if event.event_key == delivery.FEEDBACK_KEY:
        receipt.feedback = receipt.feedback or (notice.second_button or "feedback")
        replace = f"已反馈：{notice.second_button or ''}".rstrip("：")
    elif event.event_key == delivery.ACK_KEY:
        result = acknowledge(session, notice, receipt, "button", now)
        replace = "已收到（逾期）" if result.late else "已收到"
    else:
        log.info("card click with unknown key %r on notice %s", event.event_key, notice.id)
        return
    if event.response_code:
        enqueue(
            session,
            "update_template_card",
            {
                "userids": [event.from_user],
                "response_code": event.response_code,
                "replace_name": replace,
            },
            f"notice-card:{event.response_code}",
            now=now,
            ref=("notice_card", str(notice.id)),
        )


@subscribe(EmployeeDeparted)
def exclude_departed(session: Session, clock: Clock, event: EmployeeDeparted) -> None:
    """Someone who left before acknowledging no longer counts, nor appears as overdue."""
    employee = employee_by_userid(session, event.userid)
    if employee is None:
        return
    session.execute(
        update(Receipt)
        .where(
            Receipt.employee_id == employee.id,
            Receipt.state != ReceiptState.ACKNOWLEDGED,
            Receipt.excluded.is_(False),
        )
        .values(excluded=True, next_action_at=None)
    )
