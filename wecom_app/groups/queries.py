"""Reads over managed groups for the API and the CLI, as JSON-able dicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wecom_app.groups.mirror import group_by_chatid, userids_of
from wecom_app.models import Employee, GroupAudit, GroupMember, ManagedGroup
from wecom_app.models.groups import AuditOutcome


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def group_summary(session: Session, group: ManagedGroup, members: int, pending: int) -> dict:
    """One group's headline facts."""
    owner, backup = userids_of(session, [group.owner_id, group.backup_owner_id])
    return {
        "chatid": group.chatid,
        "name": group.name,
        "kind": group.kind,
        "owner": owner,
        "backup_owner": backup,
        "actual_owner": group.actual_owner,
        "status": group.status,
        "members": members,
        "pending_changes": pending,
        "last_reconciled_at": _iso(group.last_reconciled_at),
        "drift": group.drift,
        "quiet_hours": group.quiet_hours,
        "purpose": group.purpose,
        "approval": group.approval,
        "requested_by": group.requested_by,
        "approved_by": group.approved_by,
        "approved_at": _iso(group.approved_at),
        "archived_at": _iso(group.archived_at),
        "archive_reason": group.archive_reason,
    }


def list_groups(session: Session) -> list[dict[str, Any]]:
    """Every managed group with member and pending-change counts."""
    members = dict(
        session.execute(
            select(GroupMember.group_id, func.count()).group_by(GroupMember.group_id)
        ).all()
    )
    pending = dict(
        session.execute(
            select(GroupAudit.group_id, func.count())
            .where(GroupAudit.outcome == AuditOutcome.QUEUED)
            .group_by(GroupAudit.group_id)
        ).all()
    )
    groups = session.scalars(select(ManagedGroup).order_by(ManagedGroup.id))
    return [group_summary(session, g, members.get(g.id, 0), pending.get(g.id, 0)) for g in groups]


def group_detail(session: Session, chatid: str) -> dict[str, Any]:
    """One group: rules, members with canonical 部门+姓名 names and status, pending changes."""
    group = group_by_chatid(session, chatid)
    rows = session.execute(
        select(GroupMember.userid, GroupMember.since, Employee.display_name, Employee.status)
        .outerjoin(Employee, Employee.userid == GroupMember.userid)
        .where(GroupMember.group_id == group.id)
        .order_by(Employee.display_name, GroupMember.userid)
    ).all()
    members = [
        {
            "userid": userid,
            "display_name": name or userid,
            "status": status or "unknown",
            "since": _iso(since),
        }
        for userid, since, name, status in rows
    ]
    pending = session.scalars(
        select(GroupAudit)
        .where(GroupAudit.group_id == group.id, GroupAudit.outcome == AuditOutcome.QUEUED)
        .order_by(GroupAudit.id)
    ).all()
    detail = group_summary(session, group, len(members), len(pending))
    detail.update(
        rules=group.rules,
        member_list=members,
        pending=[audit_to_dict(r) for r in pending],
        created_at=_iso(group.created_at),
    )
    return detail


def audit_log(
    session: Session,
    *,
    chatid: str | None = None,
    userid: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Audit rows, newest first, filtered by group, person, action or outcome."""
    query = select(GroupAudit).order_by(GroupAudit.id.desc()).limit(max(1, min(limit, 1000)))
    for column, value in (
        (GroupAudit.chatid, chatid),
        (GroupAudit.userid, userid),
        (GroupAudit.action, action),
        (GroupAudit.outcome, outcome),
    ):
        if value:
            query = query.where(column == value)
    return [audit_to_dict(row) for row in session.scalars(query)]


def audit_to_dict(row: GroupAudit) -> dict[str, Any]:
    """One audit row as JSON."""
    return {
        "id": row.id,
        "chatid": row.chatid,
        "at": _iso(row.at),
        "actor": row.actor,
        "action": row.action,
        "userid": row.userid,
        "detail": row.detail,
        "reason": row.reason,
        "cause": row.cause,
        "outcome": row.outcome,
        "errcode": row.errcode,
        "error": row.error,
        "done_at": _iso(row.done_at),
    }
