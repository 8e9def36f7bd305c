"""Queue group changes through the outbox and audit them; record what WeCom really did.

Every change is an audit row written `queued` in the transaction that queues its `appchat/update`;
the outbox result handler turns it into `applied` or `failed` (with WeCom's errcode). Queued rows
are also the ledger of changes in flight, so a second reconciler does not plan them again.
Removals of departed staff merge into a group's not-yet-sent call, so a burst of departures costs
one call per group rather than one per person.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from wecom_app.groups.plan import MembershipPlan, Update
from wecom_app.models import GroupAudit, ManagedGroup, OutboxMessage, OutboxStatus
from wecom_app.models.groups import AuditOutcome
from wecom_app.outbox import enqueue

KIND = "appchat_update"
LANE = "appchat"
REF = "managed_group"


def audit(
    session: Session, group: ManagedGroup, action: str, now: datetime, **fields: Any
) -> GroupAudit:
    """Write one audit row for a group."""
    row = GroupAudit(group_id=group.id, chatid=group.chatid, at=now, action=action, **fields)
    session.add(row)
    return row


def pending_changes(session: Session, group_id: int) -> list[GroupAudit]:
    """Changes queued for a group and not yet answered by WeCom."""
    query = select(GroupAudit).where(
        GroupAudit.group_id == group_id, GroupAudit.outcome == AuditOutcome.QUEUED
    )
    return list(session.scalars(query))


def queue_plan(
    session: Session,
    group: ManagedGroup,
    plan: MembershipPlan,
    *,
    actor: str,
    now: datetime,
    cause: str | None = None,
    delay: timedelta | None = None,
    merge: bool = False,
) -> int | None:
    """Queue a plan's calls and audit each change; return the first call's outbox id."""
    updates = plan.updates()
    if not updates:
        return None
    first = updates[0]
    msg_id = _merge_into_pending(session, group, first) if merge else None
    if msg_id is None:
        msg_id = queue_update(session, group, first, now=now, delay=delay)
        if msg_id is None:
            return None  # the very same call is already queued
    common = {"actor": actor, "cause": cause, "outbox_id": msg_id}
    for update in updates:
        _audit_update(session, group, plan, update, now, common)
    return msg_id


def queue_update(
    session: Session,
    group: ManagedGroup,
    update: Update,
    *,
    now: datetime,
    delay: timedelta | None = None,
) -> int | None:
    """Queue one `appchat/update` for a group; None if an identical call is already queued."""
    payload = {**update.payload(group.chatid), "step": update.step}
    digest = hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    key = f"groups:{group.id}:v{group.version}:{digest}"
    created = enqueue(
        session,
        KIND,
        payload,
        key,
        now=now,
        lane=LANE,
        ref=(REF, str(group.id)),
        not_before=now + delay if delay else None,
    )
    if not created:
        return None
    return session.scalars(
        select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)
    ).one()


def _audit_update(
    session: Session,
    group: ManagedGroup,
    plan: MembershipPlan,
    update: Update,
    now: datetime,
    common: dict[str, Any],
) -> None:
    """Audit rows for one call of a plan (step 2 rows wait on the first call's outcome)."""
    fields = {**common, "step": update.step}
    for userid in update.add:
        audit(session, group, "add", now, userid=userid, reason=plan.reasons.get(userid), **fields)
    for userid in update.remove:
        reason = plan.reasons.get(userid)
        audit(session, group, "remove", now, userid=userid, reason=reason, **fields)
    if update.owner:
        detail = f"{plan.old_owner or '-'} → {update.owner}"
        audit(session, group, "owner", now, userid=update.owner, detail=detail, **fields)
    if update.name:
        audit(session, group, "rename", now, detail=update.name, **fields)


def _merge_into_pending(session: Session, group: ManagedGroup, update: Update) -> int | None:
    """Fold member changes into the group's queued, not yet claimed call; return its id."""
    if update.owner or update.name:
        return None
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.kind == KIND,
            OutboxMessage.ref_type == REF,
            OutboxMessage.ref_id == str(group.id),
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.attempts == 0,
        )
        .order_by(OutboxMessage.id.desc())
        .limit(1)
        .with_for_update()
    )
    msg = session.scalars(query).first()
    # A claim in another transaction bumps attempts; re-checking after the lock keeps us off it.
    if msg is None or msg.attempts != 0 or msg.status != OutboxStatus.PENDING:
        return None
    payload = dict(msg.payload)
    old_adds, old_dels = payload.get("add_user_list", []), payload.get("del_user_list", [])
    if set(update.add) & set(old_dels) or payload.get("owner") in update.remove:
        return None  # never undo a queued removal, never remove the owner being installed
    cancelled = set(old_adds) & set(update.remove)
    if cancelled:
        _cancel(session, msg.id, cancelled)
    adds = [u for u in old_adds if u not in cancelled]
    adds += [u for u in update.add if u not in adds]
    dels = old_dels + [u for u in update.remove if u not in old_dels and u not in cancelled]
    payload["add_user_list"], payload["del_user_list"] = adds, dels
    msg.payload = {k: v for k, v in payload.items() if v != []}
    return msg.id


def _cancel(session: Session, msg_id: int, userids: set[str]) -> None:
    """Mark queued adds as cancelled because the person is to be removed instead."""
    rows = session.scalars(
        select(GroupAudit).where(
            GroupAudit.outbox_id == msg_id,
            GroupAudit.action == "add",
            GroupAudit.userid.in_(userids),
            GroupAudit.outcome == AuditOutcome.QUEUED,
        )
    )
    for row in rows:
        row.outcome = AuditOutcome.CANCELLED
        row.error = "在加入前已被移出"
