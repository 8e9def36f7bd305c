"""Departed staff leave every managed group within seconds, and the group is told why.

Runs in the transaction that marked the employee departed. Removals wait a moment so that a
burst of departures folds into one `appchat/update` per group; a departing owner is replaced
(backup owner first) before being removed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from wecom_app.clock import Clock
from wecom_app.domain_events import EmployeeDeparted, EmployeeOutOfSight
from wecom_app.groups.ledger import LANE, queue_plan
from wecom_app.groups.mirror import userids_of
from wecom_app.groups.notice import DEPARTED_REASON
from wecom_app.groups.outcomes import DEPARTURE_ACTOR
from wecom_app.groups.plan import MembershipPlan, choose_owner
from wecom_app.models import (
    Employee,
    EmployeeStatus,
    GroupAudit,
    GroupMember,
    ManagedGroup,
    OutboxMessage,
    OutboxStatus,
)
from wecom_app.models.groups import AuditOutcome
from wecom_app.outbox import Lane

COALESCE = timedelta(seconds=1)
# (share of the hourly appchat budget used, wait before sending): the scarcer the budget, the
# longer removals wait so that more of them share one call per group.
BACKOFF = ((0.25, 1.0), (0.5, 3.0), (0.9, 6.0), (1.0, 60.0))


OUT_OF_SIGHT_REASON = "已不在本应用可见范围"


def remove_departed(
    session: Session,
    clock: Clock,
    event: EmployeeDeparted | EmployeeOutOfSight,
    *,
    lanes: dict[str, Lane],
) -> None:
    """Queue the removal of a departed employee (or one the app can no longer see, who cannot
    stay in a chat it manages) from every managed group they are in, with the true reason."""
    now = clock.now()
    cause = f"{event.source}:{event.cause}" if event.cause else event.source
    groups = _groups_with(session, event.userid)
    queued = _queued(session, [g.id for g in groups])
    delay = coalesce_delay(session, now, lanes[LANE]) if groups else COALESCE
    for group in groups:
        removing, owner = queued.get(group.id, (set(), None))
        if event.userid in removing:
            continue  # a repeated event: the removal is already on its way
        why = DEPARTED_REASON if isinstance(event, EmployeeDeparted) else OUT_OF_SIGHT_REASON
        reasons = {event.userid: why}
        if (owner or group.actual_owner) == event.userid:
            plan = MembershipPlan(
                group.chatid,
                remove=(event.userid,),
                owner=_successor(session, group, event.userid),
                old_owner=event.userid,
                reasons=reasons,
            )
            queue_plan(session, group, plan, actor=DEPARTURE_ACTOR, now=now, cause=cause)
        else:
            plan = MembershipPlan(group.chatid, remove=(event.userid,), reasons=reasons)
            queue_plan(session, group, plan, actor=DEPARTURE_ACTOR, now=now, cause=cause,
                       delay=delay, merge=True)  # fmt: skip


def remove_one(
    session: Session, group: ManagedGroup, userid: str, reason: str, *, actor: str,
    now: datetime, cause: str | None = None,
) -> None:  # fmt: skip
    """Queue one person's removal from one group (locked by the caller) with its reason, the
    owner handed on first if it is them; the removal is posted in the group when applied."""
    removing, owner = _queued(session, [group.id]).get(group.id, (set(), None))
    if userid in removing:
        return
    reasons = {userid: reason}
    if (owner or group.actual_owner) == userid:
        successor = _successor(session, group, userid)
        plan = MembershipPlan(group.chatid, remove=(userid,), owner=successor, old_owner=userid,
                              reasons=reasons)  # fmt: skip
    else:
        plan = MembershipPlan(group.chatid, remove=(userid,), reasons=reasons)
    queue_plan(session, group, plan, actor=actor, now=now, cause=cause)


def coalesce_delay(session: Session, now: datetime, lane: Lane) -> timedelta:
    """How long a removal waits for others to join its call, given the lane's hourly budget."""
    used = session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.lane == LANE,
            (OutboxMessage.done_at > now - lane.window)
            | (OutboxMessage.status == OutboxStatus.PENDING),
        )
    )
    share = (used or 0) / lane.limit
    seconds = next((wait for limit, wait in BACKOFF if share < limit), BACKOFF[-1][1])
    return max(COALESCE, timedelta(seconds=seconds))


def _groups_with(session: Session, userid: str) -> list[ManagedGroup]:
    """Groups where the person is a member or about to be added, locked in id order."""
    queued_add = select(GroupAudit.group_id).where(
        GroupAudit.userid == userid,
        GroupAudit.action == "add",
        GroupAudit.outcome == AuditOutcome.QUEUED,
    )
    member = select(GroupMember.group_id).where(GroupMember.userid == userid)
    query = (
        select(ManagedGroup)
        .where(or_(ManagedGroup.id.in_(member), ManagedGroup.id.in_(queued_add)))
        .where(ManagedGroup.status != "archived")
        .order_by(ManagedGroup.id)
        .with_for_update()
    )
    return list(session.scalars(query))


def _queued(session: Session, group_ids: list[int]) -> dict[int, tuple[set[str], str | None]]:
    """Per group: who is queued for removal, and the owner a queued transfer will install."""
    found: dict[int, tuple[set[str], str | None]] = {}
    if not group_ids:
        return found
    query = (
        select(GroupAudit.group_id, GroupAudit.action, GroupAudit.userid)
        .where(
            GroupAudit.group_id.in_(group_ids),
            GroupAudit.action.in_(("remove", "owner")),
            GroupAudit.outcome == AuditOutcome.QUEUED,
        )
        .order_by(GroupAudit.id)
    )
    for group_id, action, userid in session.execute(query):
        if group_id is None:
            continue
        removing, owner = found.get(group_id, (set(), None))
        if action == "remove" and userid:
            removing.add(userid)
        elif action == "owner":
            owner = userid
        found[group_id] = (removing, owner)
    return found


def _successor(session: Session, group: ManagedGroup, leaving: str) -> str | None:
    """The new owner: the configured or backup owner if staying, else an active colleague."""
    members = select(GroupMember.userid).where(GroupMember.group_id == group.id)
    going = select(GroupAudit.userid).where(
        GroupAudit.group_id == group.id,
        GroupAudit.action == "remove",
        GroupAudit.outcome == AuditOutcome.QUEUED,
        GroupAudit.userid.is_not(None),
    )
    staying = session.scalars(
        select(Employee.userid).where(
            Employee.userid.in_(members),
            Employee.userid.not_in(going),
            Employee.status == EmployeeStatus.ACTIVE,
            Employee.userid != leaving,
        )
    ).all()
    owner, backup = userids_of(session, [group.owner_id, group.backup_owner_id])
    return choose_owner([owner, backup], staying, None)
