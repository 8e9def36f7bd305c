"""Acknowledgements and responses: one answer per receipt, the first wins; card clicks;
departed recipients.

Every channel (card button, text reply, link page) ends in `acknowledge`, which locks the receipt
row, so a double click, a WeCom retry and a text sent in the same second still make one ack.
A response (the second button, "#12 明天上午处理完") answers the notice the same way, as the
company rules count a reply that says what will be done, and keeps what was said; the notice's
sender is told of each one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session, aliased

from callbacks.dispatch import HandlerContext
from callbacks.events import TemplateCardEvent
from wecom_app.clock import BEIJING, Clock
from wecom_app.domain_events import EmployeeDeparted, EmployeeOutOfSight, EmployeeRenamed
from wecom_app.models import Employee, Notice, NoticeStatus, Receipt, ReceiptState
from wecom_app.notices import delivery, pacing
from wecom_app.outbox import enqueue

log = logging.getLogger(__name__)

ACKABLE = (ReceiptState.QUEUED, ReceiptState.SENT, ReceiptState.FAILED)
MAX_RESPONSE = 500  # characters of a response kept and passed on


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
    """Record an ack answered at `now` unless one exists; an ack after the receipt's deadline
    is kept and marked late (a receipt whose card has not reached them yet has none)."""
    if receipt.state == ReceiptState.ACKNOWLEDGED:
        return AckResult(notice, receipt, False, receipt.late)
    due = receipt.due_at
    late = bool(notice.require_ack and due is not None and now > due)
    receipt.state = ReceiptState.ACKNOWLEDGED
    receipt.acknowledged_at, receipt.ack_channel, receipt.late = now, channel, late
    receipt.errcode = None
    receipt.next_action_at = None
    return AckResult(notice, receipt, True, late)


def respond(
    session: Session,
    notice: Notice,
    receipt: Receipt,
    said: str,
    channel: str,
    now: datetime,
    *,
    key: str,
) -> AckResult:
    """Record a response answered at `now`: it answers the notice (on time or late, like an
    ack; reminders stop) and keeps what was said; the sender hears of it. `key` makes the
    message to the sender once-only for one callback."""
    result = acknowledge(session, notice, receipt, channel, now)
    receipt.response, receipt.responded_at = said[:MAX_RESPONSE], now
    if notice.sender:
        who = session.get(Employee, receipt.employee_id)
        name = who.display_name if who else "?"
        text = f"通知 #{notice.code}「{notice.title}」收到回应\n{name}：{said[:MAX_RESPONSE]}"
        if result.late:
            text += "（已超过响应时限）"
        enqueue(
            session,
            "message_send",
            {"msg": {"msgtype": "text", "text": {"content": text}}, "touser": [notice.sender]},
            f"notice-response:{key}",
            now=now,
            ref=("notice_response", str(notice.id)),
            not_before=pacing.slot_for(session, notice.sender, now, "reply"),
        )
    return result


def resolve(
    session: Session, notice: Notice, receipt: Receipt, channel: str, now: datetime, *, key: str
) -> AckResult:
    """Record 已解决 at `now` (it answers the task too, if nothing had); the sender hears of it.
    A second 已解决 changes nothing, nor does one from someone who passed the task on."""
    if receipt.handed_over_at is not None:
        return AckResult(notice, receipt, False, receipt.late)
    result = acknowledge(session, notice, receipt, channel, now)
    if receipt.resolved_at is None:
        receipt.resolved_at = now
        late = notice.resolve_by is not None and now > notice.resolve_by
        tell_sender(session, notice, receipt, "已解决" + ("（已超过解决时限）" if late else ""),
                    now, key=f"resolved:{key}")  # fmt: skip
    return result


def tell_sender(
    session: Session, notice: Notice, receipt: Receipt, what: str, now: datetime, *, key: str
) -> None:
    """Tell a task's sender one answer as it comes: 收到, a response, 已解决."""
    if not notice.sender:
        return
    who = session.get(Employee, receipt.employee_id)
    name = who.display_name if who else "?"
    at = now.astimezone(BEIJING).strftime("%H:%M")
    enqueue(
        session,
        "message_send",
        {"msg": {"msgtype": "text", "text": {"content":
            f"任务 #{notice.code}「{notice.title}」：{name} {what}（{at}）"}},
         "touser": [notice.sender]},
        f"notice-answer:{key}",
        now=now,
        ref=("notice_response", str(notice.id)),
        not_before=pacing.slot_for(session, notice.sender, now, "reply"),
    )  # fmt: skip


def notice_for_task(session: Session, task: str) -> Notice | None:
    """The notice a card task_id belongs to."""
    prefix = delivery.task_prefix_of(task)
    return session.scalars(select(Notice).where(Notice.task_prefix == prefix)).one_or_none()


def click_target(session: Session, task: str, userid: str) -> tuple[Notice, Receipt] | None:
    """The notice and the clicker's receipt (locked) for a card click, in one query."""
    row = session.execute(
        select(Notice, Receipt)
        .join(Receipt, Receipt.notice_id == Notice.id)
        .join(Employee, Employee.id == Receipt.employee_id)
        .where(Notice.task_prefix == delivery.task_prefix_of(task), Employee.userid == userid)
        .with_for_update(of=Receipt)
    ).one_or_none()
    return (row[0], row[1]) if row else None


def fast_ack(
    session: Session, task: str, userid: str, channel: str, now: datetime
) -> tuple[int, bool] | None:
    """Acknowledge in one UPDATE when the click is a first ack on an active notice.

    Returns (notice id, late), or None when nothing changed and the careful path must decide.
    The WHERE clause re-checks the state under the row lock, so concurrent acks make one.
    """
    target = aliased(Receipt)
    receipt_id = (
        select(target.id)
        .join(Notice, Notice.id == target.notice_id)
        .join(Employee, Employee.id == target.employee_id)
        .where(
            Notice.task_prefix == delivery.task_prefix_of(task),
            Notice.status == NoticeStatus.ACTIVE,
            Employee.userid == userid,
            target.excluded.is_(False),
            target.state != ReceiptState.ACKNOWLEDGED,
        )
        .scalar_subquery()
    )
    row = session.execute(
        update(Receipt)
        .where(Receipt.id == receipt_id, Receipt.state != ReceiptState.ACKNOWLEDGED)
        .values(
            state=ReceiptState.ACKNOWLEDGED,
            acknowledged_at=now,
            ack_channel=channel,
            late=case((Receipt.due_at < now, True), else_=False),
            errcode=None,
            next_action_at=None,
        )
        .returning(Receipt.notice_id, Receipt.late)
        .execution_options(synchronize_session=False)
    ).first()
    return (int(row[0]), bool(row[1])) if row else None


def careful_click(
    session: Session, event: TemplateCardEvent, now: datetime
) -> tuple[int, str] | None:
    """Handle any click the fast path did not: repeats, responses, strangers, cancelled notices."""
    found = click_target(session, event.task_id, event.from_user)
    if found is None:
        known = notice_for_task(session, event.task_id)
        what = "non-recipient" if known else "unknown task"
        log.info("card click (%s) task %r from %s", what, event.task_id, event.from_user)
        return None
    notice, receipt = found
    if notice.status != NoticeStatus.ACTIVE or receipt.excluded:
        log.info("card click on inactive notice %s or excluded %s", notice.id, event.from_user)
        return None
    if event.event_key == delivery.FEEDBACK_KEY:
        label = notice.second_button or "有疑问"
        if receipt.response == label:  # the same button again, or WeCom's retry
            return notice.id, f"已回应：{label}"
        result = respond(session, notice, receipt, label, "button", now, key=event.dedupe_key)
        return notice.id, f"已回应：{label}" + ("（逾期）" if result.late else "")
    if event.event_key == delivery.RESOLVE_KEY and notice.resolve_by is not None:
        if receipt.handed_over_at is not None:
            return notice.id, "已转交"
        resolve(session, notice, receipt, "button", now, key=event.dedupe_key)
        return notice.id, "已解决"
    if event.event_key == delivery.ACK_KEY:
        result = acknowledge(session, notice, receipt, "button", now)
        if result.first and notice.resolve_by is not None:
            tell_sender(session, notice, receipt, "收到", now, key=event.dedupe_key)
        return notice.id, "已收到（逾期）" if result.late else "已收到"
    log.info("card click with unknown key %r on notice %s", event.event_key, notice.id)
    return None


def on_card_click(ctx: HandlerContext, event: TemplateCardEvent) -> None:
    """A card button click: ack (or record a response) and update the clicker's card.

    The click counts from when the app received it, however long the inbox took to get here.
    """
    session, now = ctx.session, ctx.clock.now()
    answered = ctx.received_at or now
    if not event.task_id:
        log.info("card click without a task id from %s", event.from_user)
        return
    done = None
    if event.event_key == delivery.ACK_KEY:
        fast = fast_ack(session, event.task_id, event.from_user, "button", answered)
        done = (fast[0], "已收到（逾期）" if fast[1] else "已收到") if fast else None
        if fast:
            _told_of_ack(session, fast[0], event, answered)
    done = done or careful_click(session, event, answered)
    if done is None or not event.response_code:
        return
    notice_id, replace = done
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
        ref=("notice_card", str(notice_id)),
    )


def _told_of_ack(session: Session, notice_id: int, event: TemplateCardEvent, at: datetime) -> None:
    """After a fast ack: a task's sender hears of it (a plain notice's does not)."""
    notice = session.get(Notice, notice_id)
    if notice is None or notice.resolve_by is None or not notice.sender:
        return
    found = click_target(session, event.task_id, event.from_user)
    if found is not None:
        tell_sender(session, notice, found[1], "收到", at, key=event.dedupe_key)


def exclude_departed(
    session: Session, clock: Clock, event: EmployeeDeparted | EmployeeOutOfSight
) -> None:
    """Someone who left (or whom the app can no longer reach) before answering no longer
    counts, nor appears as overdue."""
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


def follow_rename(session: Session, clock: Clock, event: EmployeeRenamed) -> None:
    """A sender whose userid changed keeps hearing of the answers to their notices (receipts
    hold the employee's surrogate id and need nothing)."""
    session.execute(
        update(Notice).where(Notice.sender == event.old_userid).values(sender=event.new_userid)
    )
