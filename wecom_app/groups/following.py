"""Managed groups follow directory changes within seconds, not at the next 09:00 check.

A transfer, a new hire, a leader change or a status change (`EmployeeChanged`) flags every
managed group whose rules now disagree with whether that person is in it; the worker's
`groups.follow_changes` job (every few seconds) reconciles the flagged groups through the
usual plan-then-apply path, so every removal is posted with its reason like any other.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update

from wecom_app.clock import Clock
from wecom_app.domain_events import EmployeeChanged, EmployeeRenamed
from wecom_app.groups.mirror import org_view
from wecom_app.groups.reconcile import desired_for, reconcile
from wecom_app.groups.rules import RuleError
from wecom_app.jobs import JobContext
from wecom_app.models import GroupMember, ManagedGroup

log = logging.getLogger(__name__)

EVERY = timedelta(seconds=5)
ACTOR = "directory"


def flag_affected(session: Any, clock: Clock, event: EmployeeChanged) -> None:
    """Flag the groups whose rules now say otherwise about this person than their members do."""
    groups = list(session.scalars(select(ManagedGroup).where(ManagedGroup.status == "active")))
    if not groups:
        return
    org = org_view(session)
    inside = set(
        session.scalars(select(GroupMember.group_id).where(GroupMember.userid == event.userid))
    )
    now = clock.now()
    for group in groups:
        try:
            wanted = event.userid in desired_for(session, group, org, now)
        except RuleError:  # a rule that no longer resolves: the daily check reports it
            continue
        if wanted != (group.id in inside):
            group.reconcile_due_at = group.reconcile_due_at or now


def follow_rename(session: Any, clock: Clock, event: EmployeeRenamed) -> None:
    """A userid changed: WeCom keeps the person in their chats under the new one, so the member
    cache and the rules that name them follow, and their groups are checked at once."""
    old, new = event.old_userid, event.new_userid
    both = select(GroupMember.group_id).where(GroupMember.userid == new)
    session.execute(
        delete(GroupMember)
        .where(GroupMember.userid == old, GroupMember.group_id.in_(both))
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(GroupMember)
        .where(GroupMember.userid == old)
        .values(userid=new)
        .execution_options(synchronize_session=False)
    )
    now = clock.now()
    inside = set(session.scalars(select(GroupMember.group_id).where(GroupMember.userid == new)))
    for group in session.scalars(select(ManagedGroup)):
        rules = dict(group.rules or {})
        named = False
        for key in ("users", "exclude"):
            listed = [str(u) for u in rules.get(key) or ()]
            if old in listed:
                rules[key] = [new if u == old else u for u in listed]
                named = True
        if named:
            group.rules = rules
            log.warning("group %s names %s, now %s: its rules follow; update the groups file too",
                        group.chatid, old, new)  # fmt: skip
        if group.status == "active" and (named or group.id in inside):
            group.reconcile_due_at = group.reconcile_due_at or now


def follow_changes(ctx: JobContext) -> dict[str, Any]:
    """Reconcile every flagged group (the job, every few seconds)."""
    services = ctx.services
    now = services.clock.now()
    with services.db.read() as session:
        due = list(
            session.scalars(select(ManagedGroup.chatid).where(ManagedGroup.reconcile_due_at <= now))
        )
    done = 0
    for chatid in due:
        if ctx.stopping.is_set():
            break
        try:
            reconcile(services, chatid, actor=ACTOR, cause="directory_change")
        except Exception:  # WeCom away or a rule broken: flagged still, tried again soon
            log.warning("group %s could not follow a directory change yet", chatid, exc_info=True)
            continue
        with services.db.begin() as session:
            session.execute(
                update(ManagedGroup)
                .where(ManagedGroup.chatid == chatid, ManagedGroup.reconcile_due_at <= now)
                .values(reconcile_due_at=None)
            )
        done += 1
    return {"reconciled": done, "due": len(due)}
