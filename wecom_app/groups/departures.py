"""Departed staff leave every managed group within seconds, and the group is told why.

Runs in the transaction that marked the employee departed. Removals wait a moment so that a
burst of departures folds into one `appchat/update` per group; a departing owner is replaced
(backup owner first) before being removed.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from wecom_app.clock import Clock
from wecom_app.domain_events import EmployeeDeparted, subscribe
from wecom_app.groups.ledger import queue_plan
from wecom_app.groups.mirror import userids_of
from wecom_app.groups.outcomes import DEPARTURE_ACTOR
from wecom_app.groups.plan import MembershipPlan, choose_owner
from wecom_app.models import Employee, EmployeeStatus, GroupAudit, GroupMember, ManagedGroup
from wecom_app.models.groups import AuditOutcome

COALESCE = timedelta(seconds=1)


@subscribe(EmployeeDeparted)
def remove_departed(session: Session, clock: Clock, event: EmployeeDeparted) -> None:
    """Queue the removal of a departed employee from every managed group they are in."""
    now = clock.now()
    cause = f"{event.source}:{event.cause}" if event.cause else event.source
    for group in _groups_with(session, event.userid):
        if _removal_queued(session, group.id, event.userid):
            continue
        reasons = {event.userid: "已离职"}
        if _owner_to_be(session, group) == event.userid:
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
                       delay=COALESCE, merge=True)  # fmt: skip


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
        .order_by(ManagedGroup.id)
        .with_for_update()
    )
    return list(session.scalars(query))


def _removal_queued(session: Session, group_id: int, userid: str) -> bool:
    """Whether this person's removal is already on its way (a repeated event)."""
    query = select(GroupAudit.id).where(
        GroupAudit.group_id == group_id,
        GroupAudit.userid == userid,
        GroupAudit.action == "remove",
        GroupAudit.outcome == AuditOutcome.QUEUED,
    )
    return session.scalars(query.limit(1)).first() is not None


def _owner_to_be(session: Session, group: ManagedGroup) -> str | None:
    """The owner once queued changes are done: the last queued transfer, else today's owner."""
    query = (
        select(GroupAudit.userid)
        .where(
            GroupAudit.group_id == group.id,
            GroupAudit.action == "owner",
            GroupAudit.outcome == AuditOutcome.QUEUED,
        )
        .order_by(GroupAudit.id.desc())
        .limit(1)
    )
    return session.scalars(query).first() or group.actual_owner


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
