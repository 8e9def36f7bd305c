"""What happens when WeCom answers a group change: audit the real outcome, update the cache,
start the deferred step, and explain departures in the group; and when it answers a group
creation queued through the outbox."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from wecom_app.groups import quiet
from wecom_app.groups.ledger import REF, queue_update
from wecom_app.groups.mirror import display_names
from wecom_app.groups.notice import DepartureNotice
from wecom_app.groups.plan import Update
from wecom_app.models import Employee, GroupAudit, GroupMember, ManagedGroup, OutboxMessage
from wecom_app.models.groups import AuditOutcome
from wecom_app.outbox import Outcome, enqueue
from wecom_app.sla.calendar import WorkingCalendar

log = logging.getLogger(__name__)

BAD_MEMBER = {60111, 86007}  # an added userid WeCom does not know or will not accept
DEPARTURE_ACTOR = "departure"


def record_update(
    session: Session,
    msg: OutboxMessage,
    outcome: Outcome,
    *,
    notice: DepartureNotice,
    cal: WorkingCalendar | None = None,
) -> None:
    """Turn the queued audit rows of one `appchat/update` into what really happened."""
    found = _group_and_rows(session, msg)
    if found is None:
        return
    group, rows = found
    now = msg.done_at or group.updated_at
    step = int(msg.payload.get("step", 1))
    own = [r for r in rows if r.step <= step]
    deferred = [r for r in rows if r.step > step]
    if outcome.ok:
        _applied(session, group, msg, own, deferred, now, notice, cal)
    elif outcome.errcode in BAD_MEMBER and msg.payload.get("add_user_list") and _has_more(msg):
        _retry_without_adds(session, group, msg, own + deferred, outcome, now)
    else:
        _failed(group, own, deferred, outcome, now)


def _group_and_rows(
    session: Session, msg: OutboxMessage
) -> tuple[ManagedGroup, list[GroupAudit]] | None:
    """The group a group write was for (locked), and its audit rows still waiting for WeCom."""
    if msg.ref_type != REF or msg.ref_id is None:
        return None
    group = session.get(ManagedGroup, int(msg.ref_id), with_for_update=True)
    if group is None:
        return None
    query = select(GroupAudit).where(
        GroupAudit.outbox_id == msg.id, GroupAudit.outcome == AuditOutcome.QUEUED
    )
    return group, list(session.scalars(query))


def _applied(
    session: Session,
    group: ManagedGroup,
    msg: OutboxMessage,
    own: list[GroupAudit],
    deferred: list[GroupAudit],
    now: datetime,
    notice: DepartureNotice,
    cal: WorkingCalendar | None = None,
) -> None:
    stale = set((msg.result or {}).get("not_in_chat", []))
    for row in own:
        row.outcome, row.done_at = AuditOutcome.APPLIED, now
        if row.action == "remove" and row.userid in stale:
            row.detail = "移出时已不在群中"
    payload = msg.payload
    removed = set(payload.get("del_user_list", []))
    if removed:
        session.execute(
            delete(GroupMember).where(
                GroupMember.group_id == group.id, GroupMember.userid.in_(removed)
            )
        )
    known = set(session.scalars(select(GroupMember.userid).where(GroupMember.group_id == group.id)))
    for userid in payload.get("add_user_list", []):
        if userid not in known:
            session.add(GroupMember(group_id=group.id, userid=userid, since=now))
    group.actual_owner = payload.get("owner") or group.actual_owner
    group.actual_name = payload.get("name") or group.actual_name
    group.version += 1
    group.status, group.updated_at = "active", now
    if deferred:
        removals = tuple(r.userid for r in deferred if r.action == "remove" and r.userid)
        new_id = queue_update(session, group, Update(2, remove=removals), now=now)
        for row in deferred:
            row.outbox_id = new_id
    removed_now = {
        r.userid: r.reason or ""
        for r in own
        if r.action == "remove" and r.userid and r.userid not in stale
    }
    if removed_now:  # every removal says why, in the group ("清退时须公开说明事因")
        _announce(session, group, msg.id, removed_now, now, notice, cal)


def _announce(
    session: Session,
    group: ManagedGroup,
    msg_id: int,
    reasons: dict[str, str],
    now: datetime,
    notice: DepartureNotice,
    cal: WorkingCalendar | None = None,
) -> None:
    """Post the Chinese explanation of the removals into the group, each with its reason (in a
    group with quiet hours, once they are over)."""
    found = {
        e.userid: (e.name, e.display_name)
        for e in session.scalars(select(Employee).where(Employee.userid.in_(list(reasons))))
    }
    people = [(u, *found.get(u, (u, u)), why) for u, why in reasons.items()]
    text = notice.text(people)
    payload = {"chatid": group.chatid, "msg": {"msgtype": "text", "text": {"content": text}}}
    enqueue(
        session,
        "appchat_send",
        payload,
        f"groups:notice:{msg_id}",
        now=now,
        ref=(REF, str(group.id)),
        not_before=quiet.post_after(session, group.chatid, now, cal, urgent=False),
    )


def _has_more(msg: OutboxMessage) -> bool:
    """Whether the call did more than add members (removals, owner or name)."""
    payload = msg.payload
    return bool(payload.get("del_user_list") or payload.get("owner") or payload.get("name"))


def _retry_without_adds(
    session: Session,
    group: ManagedGroup,
    msg: OutboxMessage,
    rows: list[GroupAudit],
    outcome: Outcome,
    now: datetime,
) -> None:
    """A bad userid among the adds must not block removals: fail the adds, resend the rest."""
    payload = msg.payload
    update = Update(
        int(payload.get("step", 1)),
        remove=tuple(payload.get("del_user_list", [])),
        owner=payload.get("owner"),
        name=payload.get("name"),
    )
    new_id = queue_update(session, group, update, now=now)
    for row in rows:
        if row.action == "add":
            _fail(row, outcome, now, "整批添加被拒绝，其余变更已单独重发")
        else:
            row.outbox_id = new_id


def _failed(
    group: ManagedGroup,
    own: list[GroupAudit],
    deferred: list[GroupAudit],
    outcome: Outcome,
    now: datetime,
) -> None:
    for row in own:
        _fail(row, outcome, now)
    for row in deferred:
        _fail(row, outcome, now, "群主转让失败，未执行移出")
    if outcome.errcode == 86003:
        group.status = "missing"  # the chat is gone or was never this app's
    elif outcome.errcode == 48002:
        group.status = "error"  # app visibility is not the root department
    log.warning(
        "group %s change failed for good: %s %s", group.chatid, outcome.errcode, outcome.error
    )


def _fail(row: GroupAudit, outcome: Outcome, now: datetime, note: str | None = None) -> None:
    row.outcome, row.done_at, row.errcode = AuditOutcome.FAILED, now, outcome.errcode
    row.error = f"{note}：{outcome.error}" if note else outcome.error


def record_create(session: Session, msg: OutboxMessage, outcome: Outcome) -> None:
    """A group queued for creation exists now (or could not be made): say what WeCom did."""
    found = _group_and_rows(session, msg)
    if found is None:
        return
    group, rows = found
    now = msg.done_at or group.updated_at
    if not outcome.ok:
        group.status = "error"
        for row in rows:
            _fail(row, outcome, now, "建群失败")
        log.warning("group %s could not be created: %s", group.chatid, outcome.error)
        return
    result = outcome.result or {}
    members = list(result.get("userlist", msg.payload.get("userlist", [])))
    group.actual_owner = result.get("owner") or msg.payload.get("owner")
    group.actual_name = result.get("name") or msg.payload.get("name")
    group.status, group.updated_at, group.version = "active", now, group.version + 1
    if not result.get("adopted"):
        group.last_reconciled_at = now
    session.execute(delete(GroupMember).where(GroupMember.group_id == group.id))
    session.add_all(GroupMember(group_id=group.id, userid=u, since=now) for u in members)
    if group.approval == "request" and not result.get("adopted"):
        _announce_creation(session, group, msg.id, now)
    for row in rows:
        if row.action == "add" and row.userid not in members:
            _fail(row, outcome, now, "接管的已有群中没有此人，将由核对补齐")
            continue
        row.outcome, row.done_at = AuditOutcome.APPLIED, now
        if row.action == "create" and result.get("adopted"):
            row.detail = f"{row.detail or ''}（群已存在，已接管）"


def _announce_creation(session: Session, group: ManagedGroup, msg_id: int, now: datetime) -> None:
    """A group made on request says in itself who asked for it, who approved it, and why."""
    names = display_names(session, [u for u in (group.requested_by, group.approved_by) if u])
    text = (f"本群由 {names.get(group.requested_by or '', group.requested_by)} 申请，"
            f"经 {names.get(group.approved_by or '', group.approved_by)} 审批建立，"
            f"已报人事行政部备案。\n用途：{group.purpose or '—'}")  # fmt: skip
    payload = {"chatid": group.chatid, "msg": {"msgtype": "text", "text": {"content": text}}}
    enqueue(session, "appchat_send", payload, f"groups:created:{msg_id}", now=now,
            ref=(REF, str(group.id)))  # fmt: skip
    if group.requested_by:
        body = f"您申请的群「{group.name}」已建好，可在企业微信的群聊列表中找到。"
        enqueue(session, "message_send",
                {"msg": {"msgtype": "text", "text": {"content": body}},
                 "touser": [group.requested_by]},
                f"groups:created-told:{msg_id}", now=now, ref=(REF, str(group.id)))  # fmt: skip
