"""Reconcile a managed group: read WeCom's actual members, plan against the rules, queue the plan.

The plan is computed under the group's row lock and counts changes already queued, and the read
of WeCom is repeated if a change landed meanwhile (the group's version moved), so two reconcilers
never queue the same change twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from wecom_app.errors import AppError, WeComError
from wecom_app.groups import blocks
from wecom_app.groups.blocks import desired_for
from wecom_app.groups.ledger import audit, pending_changes, queue_plan
from wecom_app.groups.mirror import group_by_chatid, org_view, userids_of
from wecom_app.groups.plan import MembershipPlan, make_plan
from wecom_app.groups.rules import OrgView
from wecom_app.models import Employee, EmployeeHistory, EmployeeStatus, GroupMember, ManagedGroup
from wecom_app.models.groups import AuditOutcome
from wecom_app.services import Services
from wecom_app.wecom.types import AppChat

log = logging.getLogger(__name__)

MAX_TRIES = 3


@dataclass
class Reconciled:
    """One group's reconciliation: the plan queued and the drift found."""

    chatid: str
    plan: MembershipPlan
    drift: dict[str, Any] = field(default_factory=dict)
    outbox_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for the CLI, API and job summaries."""
        return {"chatid": self.chatid, "plan": self.plan.to_dict(), "drift": self.drift,
                "queued": self.outbox_id is not None}  # fmt: skip


def plan_group(
    session: Session, group: ManagedGroup, chat: AppChat, org: OrgView,
    now: datetime | None = None,
) -> MembershipPlan:  # fmt: skip
    """The plan for one group given WeCom's view of it, net of changes already queued."""
    pending = pending_changes(session, group.id)
    leaving = {r.userid for r in pending if r.action == "remove" and r.userid}
    barred = blocks.blocked(session, group.id, now)
    desired = desired_for(session, group, org, now, barred)
    for userid in blocks.held_for_decision(session, group.id):  # kept while the owner decides
        person = org.people.get(userid)
        if userid in chat.userlist and person is not None and person.active:
            desired.setdefault(userid, "群外加入，待群主审批")
    strangers = [u for u in chat.userlist if u not in desired]
    uninvited = blocks.joined_outside(session, group.id, strangers)
    # The snapshot may predate a departure: only add people who are active right now.
    newcomers = set(desired) - set(chat.userlist)
    active_now = set(
        session.scalars(
            select(Employee.userid).where(
                Employee.userid.in_(newcomers), Employee.status == EmployeeStatus.ACTIVE
            )
        )
    )
    desired = {
        u: why
        for u, why in desired.items()
        if u not in leaving and (u not in newcomers or u in active_now)
    }
    owner, name = chat.owner, chat.name
    for row in sorted(pending, key=lambda r: r.id):
        if row.action == "owner":
            owner = row.userid or owner
        elif row.action == "rename":
            name = row.detail or name
    preferred = userids_of(session, [group.owner_id, group.backup_owner_id])
    transferred = _moved_since(
        session,
        [
            u
            for u in chat.userlist
            if u not in desired and (p := org.people.get(u)) is not None and p.active
        ],
        group.last_reconciled_at or group.created_at,
    )
    reasons = {}
    for userid in chat.userlist:
        person = org.people.get(userid)
        reasons[userid] = _removal_reason(person, userid, barred, uninvited, transferred)
    return make_plan(
        group.chatid,
        desired,
        chat.userlist,
        actual_owner=owner,
        preferred_owners=preferred,
        actual_name=name,
        desired_name=group.name,
        pending_add=[r.userid for r in pending if r.action == "add" and r.userid],
        pending_remove=leaving,
        removal_reasons=reasons,
    )


def _removal_reason(
    person: Any, userid: str, barred: dict[str, str], uninvited: set[str], transferred: set[str]
) -> str:
    """Why someone in the chat is to leave it, in the words posted in the group."""
    if person is None:
        return "不在通讯录中"
    if not person.active:
        return "非在职员工"
    if userid in barred:
        return barred[userid]
    if userid in uninvited:
        return blocks.UNINVITED
    return "调离本部门" if userid in transferred else "不再符合本群规则"


def _moved_since(session: Session, userids: list[str], since: datetime) -> set[str]:
    """Who of these changed departments since the group last matched its rules: a removal that
    follows a transfer says so (调离本部门), not merely that the rules no longer fit."""
    if not userids:
        return set()
    query = (
        select(Employee.userid)
        .join(EmployeeHistory, EmployeeHistory.employee_id == Employee.id)
        .where(
            Employee.userid.in_(userids),
            EmployeeHistory.kind == "moved",
            EmployeeHistory.at >= since,
        )
    )
    return set(session.scalars(query))


def observe(
    session: Session, group: ManagedGroup, chat: AppChat, now: datetime, actor: str
) -> dict[str, Any]:
    """Refresh the member cache from WeCom and report changes made outside the app."""
    cached = set(
        session.scalars(select(GroupMember.userid).where(GroupMember.group_id == group.id))
    )
    in_flight = {r.userid for r in pending_changes(session, group.id)}
    actual = set(chat.userlist)
    joined = sorted(actual - cached - in_flight)
    left = sorted(cached - actual - in_flight)
    drift: dict[str, Any] = {"joined_outside": joined, "left_outside": left}
    if group.actual_owner and chat.owner != group.actual_owner and chat.owner not in in_flight:
        drift["owner_changed"] = {"from": group.actual_owner, "to": chat.owner}
    if group.actual_name and chat.name != group.actual_name:
        drift["name_changed"] = {"from": group.actual_name, "to": chat.name}
    for userid in joined:
        audit(session, group, "drift", now, actor=actor, userid=userid, detail="群外加入",
              outcome=AuditOutcome.OBSERVED)  # fmt: skip
    for userid in left:
        audit(session, group, "drift", now, actor=actor, userid=userid, detail="群外退出",
              outcome=AuditOutcome.OBSERVED)  # fmt: skip
    session.execute(
        delete(GroupMember).where(GroupMember.group_id == group.id, GroupMember.userid.in_(left))
    )
    session.add_all(GroupMember(group_id=group.id, userid=u, since=now) for u in joined)
    group.actual_owner, group.actual_name = chat.owner, chat.name
    return drift


def fetch(services: Services, group: ManagedGroup) -> AppChat:
    """Read a group from WeCom; a refusal is recorded on the group and raised."""
    try:
        return services.client.appchat_get(group.chatid)
    except WeComError as exc:
        with services.db.begin() as session:
            row = session.get(ManagedGroup, group.id)
            if row is not None:
                row.status = {86003: "missing", 48002: "error"}.get(exc.errcode, row.status)
                row.drift = {"error": exc.errcode, "detail": exc.errmsg}
        raise


def reconcile(
    services: Services,
    chatid: str,
    *,
    actor: str,
    cause: str | None = None,
    dry_run: bool = False,
    org: OrgView | None = None,
) -> Reconciled:
    """Compare one group with its rules and queue the changes (or only show them, dry_run);
    pass `org` to reuse one snapshot of the mirror across many groups."""
    hold_outside = _holder(services)
    for _ in range(MAX_TRIES):
        with services.db.begin() as session:
            group = group_by_chatid(session, chatid)
            if group.status == "archived":
                raise AppError(f"群 {chatid} 已归档，不再受管")
        chat = fetch(services, group)
        with services.db.begin() as session:
            locked = group_by_chatid(session, chatid, lock=not dry_run)
            if locked.version != group.version:
                continue  # a change landed after our read: read WeCom again
            view = org or org_view(session)
            now = services.clock.now()
            if dry_run:
                return Reconciled(chatid, plan_group(session, locked, chat, view, now))
            drift = observe(session, locked, chat, now, actor)
            if drift["joined_outside"] and hold_outside:
                hold_outside(session, locked, drift["joined_outside"], view, now)
            plan = plan_group(session, locked, chat, view, now)
            outbox_id = queue_plan(session, locked, plan, actor=actor, now=now, cause=cause)
            drift.update(extra=list(plan.remove), missing=list(plan.add), at=now.isoformat())
            locked.drift, locked.last_reconciled_at = drift, now
            locked.status = "active"
            return Reconciled(chatid, plan, drift, outbox_id)
    raise AppError(f"群 {chatid} 在核对期间持续变化，请稍后重试")


def _holder(services: Services) -> Any:
    """What to do with people added outside the app: under the policy's `hold`, ask the owner
    (see groups.requests); under `remove` (the default), nothing: the plan removes them."""
    from wecom_app.groups.policy import GroupPolicy

    policy = GroupPolicy.from_settings(services.settings)
    if policy.outside_joins != "hold":
        return None
    from wecom_app.groups import requests

    asking = requests.Asking(policy, services.settings.public_url)

    def hold(session: Session, group: ManagedGroup, joined: list[str], org: OrgView,
             now: datetime) -> None:  # fmt: skip
        barred = blocks.blocked(session, group.id, now)
        desired = desired_for(session, group, org, now, barred)
        for userid in joined:
            person = org.people.get(userid)
            if userid in desired or userid in barred or person is None or not person.active:
                continue
            try:  # the approver is found before anything is written
                requests.hold_outside_join(session, group, userid, now, asking)
            except requests.RequestError as exc:  # nobody to ask: removed, as without hold
                log.warning("outside join of %s to %s not held: %s", userid, group.chatid, exc)

    return hold
