"""Passing a task on (转交), and when that is 推诿.

A responsible person hands their task to someone else, with a reason: their own receipt counts
as answered at that moment (on time or late, as it stands: handing over never clears a late
answer) and needs no 已解决 from them; the new owner gets a receipt and the card, and their
clock starts; the leader who gave the task is told. Whether the hand-over counts as 推诿 is the
policy's call (`handover.shirking`: `outside_department`, `back_to_leader`, `repeat`; 50元 each
by default), and a leader may mark or unmark it with a note; every call is kept.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wecom_app.clock import BEIJING
from wecom_app.directory.queries import department_subtree_ids
from wecom_app.errors import AppError
from wecom_app.models import (
    Employee,
    EmployeeStatus,
    Handover,
    Notice,
    NoticeStatus,
    Receipt,
    ReceiptState,
)
from wecom_app.notices import delivery
from wecom_app.notices.acks import acknowledge, find_receipt, tell_sender
from wecom_app.sla.policy import SlaPolicy

RULES = {"outside_department": "转给本部门以外的人", "back_to_leader": "转回布置任务的领导",
         "repeat": "同一任务再次转交"}  # fmt: skip
MAX_REASON = 500


class HandoverError(AppError):
    """A hand-over that cannot be made; the message is for the person (Chinese)."""


def find_person(session: Session, who: str) -> Employee | None:
    """An active employee by userid, 部门+姓名 or name (a name only when it is unique)."""
    who = who.strip()
    for column in (Employee.userid, Employee.display_name, Employee.name):
        found = list(
            session.scalars(
                select(Employee)
                .where(func.lower(column) == who.lower(), Employee.status == EmployeeStatus.ACTIVE)
                .limit(2)
            )
        )
        if len(found) == 1:
            return found[0]
        if found:
            raise HandoverError(f"有不止一位“{who}”，请写对方的账号或“部门-姓名”")
    return None


def hand_over(
    session: Session,
    notice: Notice,
    giver: Employee,
    taker: Employee,
    reason: str,
    now: datetime,
    policy: SlaPolicy,
    *,
    key: str,
) -> Handover:
    """Pass `giver`'s part of a task to `taker`, with a reason."""
    if notice.resolve_by is None:
        raise HandoverError(f"通知 #{notice.code} 不是任务，无需转交")
    if notice.status != NoticeStatus.ACTIVE:
        raise HandoverError(f"任务 #{notice.code} 已取消")
    reason = " ".join(reason.split())[:MAX_REASON]
    if not reason:
        raise HandoverError("转交须说明原因，例如“#12 转交 lisi 该问题属于网络组”")
    if taker.status != EmployeeStatus.ACTIVE:
        raise HandoverError(f"{taker.display_name} 不是在职成员")
    if taker.id == giver.id:
        raise HandoverError("不能转交给自己")
    mine = find_receipt(session, notice.id, giver.id)
    if mine is None or mine.excluded or mine.handed_over_at is not None:
        raise HandoverError(f"任务 #{notice.code} 现在不由您负责，无法转交")
    if mine.resolved_at is not None:
        raise HandoverError(f"任务 #{notice.code} 您已报告解决，无需转交")
    if find_receipt(session, notice.id, taker.id) is not None:
        raise HandoverError(f"{taker.display_name} 已是任务 #{notice.code} 的责任人")
    before = session.scalar(
        select(func.count()).select_from(Handover).where(Handover.notice_id == notice.id)
    )
    rules = [r for r in _rules(session, notice, giver, taker, before or 0) if r in policy.shirking]
    acknowledge(session, notice, mine, "handover", now)
    mine.handed_over_at = now
    _give_receipt(session, notice, taker, giver, now)
    handover = Handover(notice_id=notice.id, from_employee_id=giver.id,
                        to_employee_id=taker.id, reason=reason, at=now, rules=rules,
                        shirking=bool(rules), history=[])  # fmt: skip
    session.add(handover)
    session.flush()
    said = f"转交给 {taker.display_name}，原因：{reason}"
    if rules:
        said += f"（推诿：{'、'.join(RULES[r] for r in rules)}）"
    tell_sender(session, notice, mine, said, now, key=f"handover:{key}")
    return handover


def _rules(
    session: Session, notice: Notice, giver: Employee, taker: Employee, before: int
) -> list[str]:
    """Which of the 推诿 rules this hand-over meets (before the policy picks from them)."""
    met = []
    own = giver.main_department
    if own is None or taker.main_department not in department_subtree_ids(session, own):
        met.append("outside_department")
    if notice.sender and taker.userid.lower() == notice.sender.lower():
        met.append("back_to_leader")
    if before:
        met.append("repeat")
    return met


def _give_receipt(
    session: Session, notice: Notice, taker: Employee, giver: Employee, now: datetime
) -> Receipt:
    """The new owner's receipt, and their card (paced like every send)."""
    batches = delivery.schedule(session, notice, [taker.userid], now)
    receipt = Receipt(notice_id=notice.id, employee_id=taker.id,
                      department_id=taker.main_department,
                      reason=f"转交自 {giver.display_name}"[:255],
                      batch=batches[0].number if batches else notice.batches,
                      state=ReceiptState.QUEUED)  # fmt: skip
    session.add(receipt)
    notice.recipients += 1
    return receipt


def mark(
    session: Session, handover: Handover, shirking: bool, by: str, note: str, now: datetime
) -> Handover:
    """A leader's call: this hand-over is (or is not) 推诿, with a note; earlier calls kept."""
    note = " ".join(note.split())[:MAX_REASON]
    if not note:
        raise HandoverError("请写明理由（note），它会留在记录里")
    handover.history = [*handover.history, {
        "shirking": handover.shirking, "marked_by": handover.marked_by, "note": handover.note,
        "until": now.isoformat()}]  # fmt: skip
    handover.shirking, handover.marked_by, handover.note = shirking, by[:64], note
    return handover


def get(session: Session, ident: int) -> Handover:
    """A hand-over by id, or HandoverError."""
    found = session.get(Handover, ident)
    if found is None:
        raise HandoverError(f"没有编号为 {ident} 的转交记录")
    return found


def to_dict(session: Session, h: Handover) -> dict[str, Any]:
    """A hand-over for the API and CLI."""
    people = {
        ident: (userid, name)
        for ident, userid, name in session.execute(
            select(Employee.id, Employee.userid, Employee.display_name).where(
                Employee.id.in_([h.from_employee_id, h.to_employee_id])
            )
        )
    }
    userids = {k: v[0] for k, v in people.items()}
    names = {k: v[1] for k, v in people.items()}
    return {
        "id": h.id, "notice_id": h.notice_id,
        "from": userids.get(h.from_employee_id), "from_name": names.get(h.from_employee_id),
        "to": userids.get(h.to_employee_id), "to_name": names.get(h.to_employee_id),
        "reason": h.reason, "at": h.at.isoformat(),
        "time": h.at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"),
        "rules": h.rules, "shirking": h.shirking, "marked_by": h.marked_by, "note": h.note,
        "history": h.history,
    }  # fmt: skip


def listed(session: Session, notice_id: int | None = None) -> list[Handover]:
    """Hand-overs, newest first (of one notice, if given)."""
    query = select(Handover).order_by(Handover.id.desc()).limit(500)
    if notice_id is not None:
        query = query.where(Handover.notice_id == notice_id)
    return list(session.scalars(query))
