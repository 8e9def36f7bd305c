"""What the rules engine must respect besides a group's rules: rejoin blocks after a removal,
outside joins held for the owner's decision, and who was added outside the app."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from wecom_app.groups.mirror import userids_of
from wecom_app.groups.rules import GroupRules, OrgView, desired_members
from wecom_app.models import GroupAudit, GroupBlock, GroupRequest, ManagedGroup, RequestState
from wecom_app.models.groups import AuditOutcome

UNINVITED = "未经审批加入"


def blocked(session: Session, group_id: int, now: datetime | None) -> dict[str, str]:
    """{userid: reason} of those barred from the group right now."""
    query = select(GroupBlock.userid, GroupBlock.reason).where(
        GroupBlock.group_id == group_id, GroupBlock.lifted_at.is_(None)
    )
    if now is not None:
        query = query.where(or_(GroupBlock.until.is_(None), GroupBlock.until > now))
    return {userid: reason for userid, reason in session.execute(query.order_by(GroupBlock.id))}


def block_of(session: Session, group_id: int, userid: str, now: datetime) -> GroupBlock | None:
    """The block that bars one person from a group now, if any."""
    query = select(GroupBlock).where(
        GroupBlock.group_id == group_id,
        GroupBlock.userid == userid,
        GroupBlock.lifted_at.is_(None),
        or_(GroupBlock.until.is_(None), GroupBlock.until > now),
    )
    blocks = list(session.scalars(query))
    # the block that lasts longest says when they may come back (no end: until lifted)
    return max(blocks, key=lambda b: (b.until is None, b.until or b.since), default=None)


def held_for_decision(session: Session, group_id: int) -> list[str]:
    """People added outside the app whom the owner has yet to adopt or refuse."""
    query = select(GroupRequest.requester).where(
        GroupRequest.group_id == group_id,
        GroupRequest.kind == "join",
        GroupRequest.origin == "outside",
        GroupRequest.state == RequestState.PENDING,
    )
    return list(session.scalars(query))


def joined_outside(session: Session, group_id: int, userids: Iterable[str]) -> set[str]:
    """Of these members, those the check saw arrive outside the app (and not added by it since)."""
    wanted = list(userids)
    if not wanted:
        return set()
    seen: dict[str, bool] = {}
    query = (
        select(GroupAudit.userid, GroupAudit.action)
        .where(
            GroupAudit.group_id == group_id,
            GroupAudit.userid.in_(wanted),
            or_(
                (GroupAudit.action == "drift") & (GroupAudit.detail == "群外加入"),
                (GroupAudit.action == "add") & (GroupAudit.outcome == AuditOutcome.APPLIED),
            ),
        )
        .order_by(GroupAudit.id)
    )
    for userid, action in session.execute(query):
        seen[str(userid)] = action == "drift"  # the latest word wins
    return {u for u, outside in seen.items() if outside}


def desired_for(
    session: Session, group: ManagedGroup, org: OrgView, now: datetime | None = None,
    barred: dict[str, str] | None = None,
) -> dict[str, str]:  # fmt: skip
    """The group's desired members with reasons (owner and backup owner included), less anyone
    blocked from rejoining it (an outside join held for the owner's decision is kept by the
    plan while it is pending, never added). `barred`: the blocks, when the caller has them."""
    owners = userids_of(session, [group.owner_id, group.backup_owner_id])
    desired = desired_members(GroupRules.from_dict(group.rules), org, [o for o in owners if o])
    for userid in blocked(session, group.id, now) if barred is None else barred:
        desired.pop(userid, None)
    return desired
