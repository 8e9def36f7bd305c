"""Breaches of a group's rules: warnings, then removal with the reason in public, and rejoin blocks.

"发布负面广告信息者警告一次，第二次再发直接清退出群" and "清退时须公开说明事因或事先告知原因":
an owner or an administrator records a breach (which rule, and a note); the policy says what the
n-th breach of that rule within its window brings. A warning is posted in the group and sent to
the person; a removal is queued like any other (the group is told why when WeCom has done it)
and blocks the person from rejoining for the rule's time, which the rules engine and join
requests respect. A direct removal always states its reason. A wrong entry is withdrawn with a
note, never deleted; withdrawing a removal lifts its block.

A self-built app cannot read group messages (WeCom gives them only to the paid chat archive), so
breaches are recorded by people, not detected.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wecom_app.clock import BEIJING
from wecom_app.errors import AppError
from wecom_app.groups import departures, quiet
from wecom_app.groups.ledger import REF
from wecom_app.groups.policy import REMOVAL, WARNING, GroupPolicy
from wecom_app.models import Employee, GroupBlock, GroupMember, GroupViolation, ManagedGroup
from wecom_app.notices import pacing
from wecom_app.outbox import enqueue
from wecom_app.sla.calendar import WorkingCalendar

ACTIONS = {WARNING: "警告", REMOVAL: "清退", "record": "记录"}
MAX_RULE_CHARS = 64


class ConductError(AppError):
    """A breach that cannot be recorded or withdrawn; the message says why, in Chinese."""


def record(
    session: Session,
    group: ManagedGroup,
    userid: str,
    rule: str,
    note: str,
    *,
    by: str,
    now: datetime,
    policy: GroupPolicy,
    cal: WorkingCalendar | None = None,
) -> GroupViolation:
    """Record a breach and carry out what the policy says follows it."""
    rule = (rule or "").strip()
    if not rule or len(rule) > MAX_RULE_CHARS:
        raise ConductError(
            f"请写明违反的群规（1 至 {MAX_RULE_CHARS} 个字），如 广告、刷屏、人身攻击、泄密"
        )
    person = _member(session, group, userid)
    earlier = session.scalar(
        select(func.count())
        .select_from(GroupViolation)
        .where(
            GroupViolation.group_id == group.id,
            GroupViolation.userid == userid,
            GroupViolation.rule == rule,
            GroupViolation.withdrawn_at.is_(None),
            GroupViolation.at > now - policy.window,
        )
    )
    count = int(earlier or 0) + 1
    conduct = policy.rule(rule)
    action = conduct.step(count)
    violation = GroupViolation(
        group_id=group.id,
        userid=userid,
        rule=rule,
        note=note.strip(),
        action=action,
        count=count,
        penalty=str(conduct.penalty),
        recorded_by=by,
        at=now,
    )
    session.add(violation)
    session.flush()
    name = person.display_name if person is not None else userid
    because = f"违反群规「{rule}」" + (f"（{violation.note}）" if violation.note else "")
    if action == WARNING:
        nxt = "将被移出本群" if conduct.step(count + 1) == REMOVAL else "将再次警告"
        text = f"警告：{name} {because}，第 {count} 次。{_span(policy.window)}内再次违反{nxt}。"
        post(session, group, text, f"conduct:warn:{violation.id}", now, cal)
        tell(
            session,
            userid,
            f"您在群「{group.name}」{because}，已被警告（第 {count} 次）。"
            f"{_span(policy.window)}内再次违反{nxt.replace('本群', '该群')}。",
            f"conduct:warn-told:{violation.id}",
            now,
        )
        return violation
    until = now + conduct.block
    _remove(session, group, userid, f"第 {count} 次{because}", violation.id, until, by, now)
    return violation


def remove(
    session: Session,
    group: ManagedGroup,
    userid: str,
    reason: str,
    *,
    by: str,
    now: datetime,
    policy: GroupPolicy,
) -> GroupViolation:
    """Remove someone from a group directly, with a reason that is always posted."""
    reason = (reason or "").strip()
    if not reason:
        raise ConductError("移出成员须写明原因（将在群内公布）")
    _member(session, group, userid)
    violation = GroupViolation(
        group_id=group.id,
        userid=userid,
        rule="直接清退",
        note=reason,
        action=REMOVAL,
        count=1,
        penalty="0",
        recorded_by=by,
        at=now,
    )
    session.add(violation)
    session.flush()
    until = now + policy.removal_block
    _remove(session, group, userid, reason, violation.id, until, by, now)
    return violation


def withdraw(
    session: Session, violation_id: int, *, by: str, note: str, now: datetime
) -> GroupViolation:
    """Withdraw a wrong entry with a note (kept in history); a removal's block is lifted."""
    violation = session.get(GroupViolation, violation_id, with_for_update=True)
    if violation is None:
        raise ConductError(f"没有违规记录 {violation_id}")
    if violation.withdrawn_at is not None:
        raise ConductError(f"违规记录 {violation_id} 已于 {_until(violation.withdrawn_at)}撤销")
    if not (note or "").strip():
        raise ConductError("撤销须写明原因")
    violation.withdrawn_at, violation.withdrawn_by, violation.withdraw_note = now, by, note.strip()
    lifted = session.scalars(
        select(GroupBlock).where(
            GroupBlock.violation_id == violation.id, GroupBlock.lifted_at.is_(None)
        )
    ).all()
    group = session.get(ManagedGroup, violation.group_id) if lifted else None
    for block in lifted:
        block.lifted_at = now
        if block.approved is not None and group is not None:  # their approval stands again
            rules = dict(group.rules or {})
            rules["users"] = [*(u for u in rules.get("users") or () if u != block.userid),
                              block.userid]  # fmt: skip
            rules["approved"] = {**(rules.get("approved") or {}), block.userid: block.approved}
            group.rules = rules
    if group is not None:  # the rules may want them back now
        group.reconcile_due_at = group.reconcile_due_at or now
    return violation


def ledger(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    group_id: int | None = None,
    userid: str | None = None,
) -> list[dict[str, Any]]:
    """The conduct ledger, newest first, withdrawn entries included and marked."""
    query = (
        select(GroupViolation, ManagedGroup.chatid, ManagedGroup.name, Employee.display_name)
        .join(ManagedGroup, ManagedGroup.id == GroupViolation.group_id)
        .outerjoin(Employee, Employee.userid == GroupViolation.userid)
        .order_by(GroupViolation.at.desc(), GroupViolation.id.desc())
    )
    if since is not None:
        query = query.where(GroupViolation.at >= since)
    if until is not None:
        query = query.where(GroupViolation.at <= until)
    if group_id is not None:
        query = query.where(GroupViolation.group_id == group_id)
    if userid is not None:
        query = query.where(GroupViolation.userid == userid)
    return [
        violation_dict(v, chatid, name, display)
        for v, chatid, name, display in session.execute(query)
    ]


def violation_dict(
    v: GroupViolation, chatid: str, group: str, display: str | None
) -> dict[str, Any]:
    """One ledger entry as JSON."""
    return {
        "id": v.id,
        "chatid": chatid,
        "group": group,
        "userid": v.userid,
        "name": display or v.userid,
        "rule": v.rule,
        "note": v.note,
        "action": v.action,
        "action_label": ACTIONS.get(v.action, v.action),
        "count": v.count,
        "penalty": v.penalty,
        "recorded_by": v.recorded_by,
        "at": v.at.isoformat(),
        "withdrawn_at": v.withdrawn_at.isoformat() if v.withdrawn_at else None,
        "withdrawn_by": v.withdrawn_by,
        "withdraw_note": v.withdraw_note,
    }


def post(
    session: Session,
    group: ManagedGroup,
    text: str,
    key: str,
    now: datetime,
    cal: WorkingCalendar | None = None,
) -> None:
    """A text from the app into a managed group (after its quiet hours, if it keeps them)."""
    payload = {"chatid": group.chatid, "msg": {"msgtype": "text", "text": {"content": text}}}
    enqueue(
        session,
        "appchat_send",
        payload,
        key,
        now=now,
        ref=(REF, str(group.id)),
        not_before=quiet.post_after(session, group.chatid, now, cal, urgent=False),
    )


def tell(session: Session, userid: str, text: str, key: str, now: datetime) -> None:
    """A text from the app to one member, paced like every message to them."""
    pacing.tell(session, userid, text, key, now, ("group_conduct", userid))


def _remove(
    session: Session,
    group: ManagedGroup,
    userid: str,
    cause: str,
    violation_id: int,
    until: datetime,
    by: str,
    now: datetime,
) -> None:
    """Block them until `until` for `cause`, and queue the removal, posted with both."""
    reason = f"{cause}，{_until(until)}前不得再入群"
    rules = dict(group.rules or {})
    approved = dict(rules.get("approved") or {})
    was = approved.pop(userid, None)
    if was is not None:  # a member by approval must ask again, unless the entry is withdrawn
        rules["users"] = [u for u in rules.get("users") or () if u != userid]
        rules["approved"] = approved
        group.rules = rules
    session.add(
        GroupBlock(
            group_id=group.id,
            userid=userid,
            reason=cause,
            since=now,
            until=until,
            violation_id=violation_id,
            approved=was,
        )
    )
    departures.remove_one(
        session,
        group,
        userid,
        reason,
        actor=f"conduct:{by}",
        now=now,
        cause=f"violation:{violation_id}",
    )


def _member(session: Session, group: ManagedGroup, userid: str) -> Employee | None:
    if group.status == "archived":
        raise ConductError(f"群「{group.name}」已归档")
    inside = session.scalar(
        select(GroupMember.userid).where(
            GroupMember.group_id == group.id, GroupMember.userid == userid
        )
    )
    if inside is None:
        raise ConductError(f"{userid} 不在群「{group.name}」中")
    return session.scalars(select(Employee).where(Employee.userid == userid)).first()


def _span(window: Any) -> str:
    """A window as people say it: 90 天, 12 小时."""
    hours = int(window.total_seconds() // 3600)
    return f"{hours // 24} 天" if hours >= 24 and hours % 24 == 0 else f"{max(hours, 1)} 小时"


def _until(at: datetime) -> str:
    return f"{at.astimezone(BEIJING):%Y-%m-%d %H:%M} "
