"""Group governance as workflows for the API, the CLI and the console: requests, decisions,
the register (群台账), archiving, the conduct ledger and adopting outside joins.

Each function runs its own transaction on the services' database and returns plain data; the
rules live in groups.requests and groups.conduct.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wecom_app.clock import BEIJING
from wecom_app.errors import AppError
from wecom_app.groups import conduct, requests
from wecom_app.groups.conduct import ConductError
from wecom_app.groups.mirror import display_names, group_by_chatid, org_view, userids_of
from wecom_app.groups.policy import GroupPolicy
from wecom_app.groups.requests import Asking, RequestError
from wecom_app.groups.rules import GroupRules, RuleError, desired_members
from wecom_app.models import (
    Employee,
    GroupMember,
    GroupRequest,
    GroupViolation,
    ManagedGroup,
)
from wecom_app.services import Services

APPROVALS = {
    "request": "申请审批",
    "config": "配置文件声明（未经申请）",
    "cli": "命令行创建",
    "api": "接口创建",
    "console": "控制台创建",
    "": "未记录",
}
CANNOT_DISSOLVE = (
    "企业微信接口不支持解散群聊：归档后本应用不再管理该群，如需解散请群主在企业微信客户端操作。"
)


GROUP_STATES = {"active": "受管", "creating": "创建中", "missing": "群已不存在", "error": "异常",
                "archived": "已归档"}  # fmt: skip


GROUP_STATES = {"active": "受管", "creating": "创建中", "missing": "群已不存在", "error": "异常",
                "archived": "已归档"}  # fmt: skip


class GovernanceError(AppError):
    """A governance action refused; the message says why, in Chinese."""


def asking(services: Services) -> Asking:
    """The policy and console address a request needs."""
    return Asking(GroupPolicy.from_settings(services.settings), services.settings.public_url)


def request_group(services: Services, requester: str, data: dict[str, Any]) -> dict[str, Any]:
    """File a request for a new group; the approver gets the card."""
    with services.db.begin() as session:
        request = requests.ask_create(
            session, requester, data, services.clock.now(), asking(services)
        )
        return request_dict(session, request)


def request_join(services: Services, requester: str, chatid: str, reason: str) -> dict[str, Any]:
    """File a request to join a group; its owner gets the card."""
    with services.db.begin() as session:
        group = requests.find_group(session, chatid)
        request = requests.ask_join(
            session, requester, group, reason, services.clock.now(), asking(services)
        )
        return request_dict(session, request)


def decide(
    services: Services,
    request_id: int,
    by: str,
    approve: bool,
    reason: str = "",
    *,
    admin: bool = False,
) -> dict[str, Any]:
    """Approve or reject a request as `by` (an administrator may decide any)."""
    with services.db.begin() as session:
        message = requests.decide(
            session,
            request_id,
            by,
            approve,
            reason,
            services.clock.now(),
            asking(services),
            admin=admin,
        )
        request = session.get(GroupRequest, request_id)
        assert request is not None
        return {"message": message, "request": request_dict(session, request)}


def list_requests(
    session: Session, *, state: str | None = None, userid: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Requests newest first; `userid` keeps those they asked or decide."""
    query = select(GroupRequest).order_by(GroupRequest.id.desc()).limit(limit)
    if state:
        query = query.where(GroupRequest.state == state)
    if userid:
        query = query.where((GroupRequest.requester == userid) | (GroupRequest.approver == userid))
    return [request_dict(session, r) for r in session.scalars(query)]


def request_dict(session: Session, r: GroupRequest) -> dict[str, Any]:
    """One request as JSON, with the names people read."""
    names = _names(session, [r.requester, r.approver, r.decided_by])
    group = session.get(ManagedGroup, r.group_id) if r.group_id else None
    return {
        "id": r.id,
        "kind": r.kind,
        "kind_label": requests.KINDS[r.kind],
        "origin": r.origin,
        "state": r.state,
        "state_label": requests.STATES.get(r.state, r.state),
        "requester": r.requester,
        "requester_name": names.get(r.requester, r.requester),
        "approver": r.approver,
        "approver_name": names.get(r.approver, r.approver),
        "spec": r.spec,
        "note": r.note,
        "chatid": group.chatid if group else r.spec.get("chatid"),
        "group": group.name if group else r.spec.get("name"),
        "created_at": r.created_at.isoformat(),
        "due_at": r.due_at.isoformat(),
        "decided_by": r.decided_by,
        "decided_by_name": names.get(r.decided_by or "", r.decided_by),
        "decided_at": r.decided_at.isoformat() if r.decided_at else None,
        "reason": r.reason,
    }


def request_members(session: Session, r: GroupRequest, limit: int = 60) -> dict[str, Any]:
    """Who a create request's group would hold now (names, up to `limit`), and its owners."""
    if r.kind != "create":
        return {"names": [], "total": 0, "owner": None, "backup_owner": None}
    spec = r.spec
    owners = [u for u in (spec.get("owner"), spec.get("backup_owner")) if u]
    try:
        found = desired_members(GroupRules.from_dict(spec.get("rules")), org_view(session), owners)
    except RuleError:
        found = {}
    names = _names(session, [*sorted(found)[:limit], *owners])
    return {
        "names": [names.get(u, u) for u in sorted(found)[:limit]],
        "total": len(found),
        "owner": names.get(spec.get("owner") or "", spec.get("owner")),
        "backup_owner": names.get(spec.get("backup_owner") or "", spec.get("backup_owner")),
    }


# -- the register ---------------------------------------------------------------------------


def register(session: Session, *, archived: bool = True) -> list[dict[str, Any]]:
    """The group register (群台账): one entry per managed group, archived ones included."""
    counts = dict(
        session.execute(
            select(GroupMember.group_id, func.count()).group_by(GroupMember.group_id)
        ).all()
    )
    rows = []
    for g in session.scalars(select(ManagedGroup).order_by(ManagedGroup.id)):
        if g.status == "archived" and not archived:
            continue
        owner, backup = userids_of(session, [g.owner_id, g.backup_owner_id])
        rules = g.rules or {}
        named = [*(rules.get("users") or ()), *(rules.get("exclude") or ())]
        names = _names(session, [owner, backup, g.requested_by, g.approved_by, *named])
        rows.append(
            {
                "chatid": g.chatid,
                "name": g.name,
                "kind": g.kind,
                "purpose": g.purpose,
                "owner": names.get(owner or "", owner),
                "backup_owner": names.get(backup or "", backup),
                "requested_by": names.get(g.requested_by or "", g.requested_by),
                "approved_by": names.get(g.approved_by or "", g.approved_by),
                "approved_at": g.approved_at.isoformat() if g.approved_at else None,
                "approval": g.approval,
                "approval_label": APPROVALS.get(g.approval, g.approval),
                "rules": rules_text(rules, names),
                "members": counts.get(g.id, 0),
                "status": g.status,
                "status_label": GROUP_STATES.get(g.status, g.status),
                "created_at": g.created_at.isoformat(),
                "archived_at": g.archived_at.isoformat() if g.archived_at else None,
                "archive_reason": g.archive_reason,
            }
        )
    return rows


REGISTER_COLUMNS = [
    ("name", "群名称"),
    ("chatid", "群 ID"),
    ("kind", "类型"),
    ("purpose", "用途"),
    ("owner", "群主"),
    ("backup_owner", "备用群主"),
    ("requested_by", "申请人"),
    ("approved_by", "审批人"),
    ("approved_at", "审批时间"),
    ("approval_label", "建群依据"),
    ("rules", "成员规则"),
    ("members", "成员数"),
    ("status_label", "状态"),
    ("created_at", "建立时间"),
    ("archived_at", "归档时间"),
    ("archive_reason", "归档原因"),
]


def rules_text(rules: dict[str, Any], names: dict[str, str] | None = None) -> str:
    """A group's rules in one line people read (people by their 部门+姓名 when known)."""
    names = names or {}
    parts = []
    for d in rules.get("departments") or ():
        ref = d.get("id") if isinstance(d, dict) else d
        only = isinstance(d, dict) and not d.get("include_children", True)
        parts.append(f"部门 {ref}" + ("（不含下级）" if only else ""))
    parts += [f"标签 {t}" for t in rules.get("tags") or ()]
    approved = rules.get("approved") or {}
    plain = [u for u in rules.get("users") or () if u not in approved]
    if plain:
        parts.append("成员 " + "、".join(names.get(u, u) for u in plain))
    if approved:
        parts.append("经审批加入 " + "、".join(names.get(u, u) for u in approved))
    if rules.get("exclude"):
        parts.append("排除 " + "、".join(names.get(u, u) for u in rules["exclude"]))
    if rules.get("include_leaders"):
        parts.append("含部门负责人")
    return "；".join(parts) or "—"


def archive(services: Services, chatid: str, by: str, reason: str) -> dict[str, Any]:
    """Stop managing a group and record why; WeCom's API cannot dissolve it (said so)."""
    reason = (reason or "").strip()
    if not reason:
        raise GovernanceError("归档须写明原因")
    now = services.clock.now()
    with services.db.begin() as session:
        group = group_by_chatid(session, chatid, lock=True)
        if group.status == "archived":
            when = group.archived_at.astimezone(BEIJING) if group.archived_at else None
            raise GovernanceError(f"群「{group.name}」已于 {when:%Y-%m-%d} 归档")
        group.status, group.archived_at, group.archived_by = "archived", now, by
        group.archive_reason, group.reconcile_due_at = reason, None
        conduct.post(
            session,
            group,
            f"本群已归档，不再由应用管理成员。原因：{reason}",
            f"groups:archived:{group.id}",
            now,
        )
        return {
            "chatid": chatid,
            "name": group.name,
            "archived_at": now.isoformat(),
            "note": CANNOT_DISSOLVE,
        }


# -- conduct --------------------------------------------------------------------------------


def owners(session: Session, chatid: str) -> set[str]:
    """A group's owner and backup owner (configured) and the owner WeCom reports."""
    group = group_by_chatid(session, chatid)
    found = userids_of(session, [group.owner_id, group.backup_owner_id])
    return {u for u in [*found, group.actual_owner] if u}


def record_violation(
    services: Services, chatid: str, userid: str, rule: str, note: str, by: str
) -> dict[str, Any]:
    """Record a breach; the policy decides the warning or the removal."""
    now = services.clock.now()
    with services.db.begin() as session:
        group = group_by_chatid(session, chatid, lock=True)
        v = conduct.record(
            session,
            group,
            userid,
            rule,
            note,
            by=by,
            now=now,
            policy=GroupPolicy.from_settings(services.settings),
            cal=_calendar(services),
        )
        return _violation(session, v, group)


def remove_member(
    services: Services, chatid: str, userid: str, reason: str, by: str
) -> dict[str, Any]:
    """Remove someone directly, with the reason posted in the group."""
    now = services.clock.now()
    with services.db.begin() as session:
        group = group_by_chatid(session, chatid, lock=True)
        v = conduct.remove(
            session,
            group,
            userid,
            reason,
            by=by,
            now=now,
            policy=GroupPolicy.from_settings(services.settings),
        )
        return _violation(session, v, group)


def withdraw(services: Services, violation_id: int, by: str, note: str) -> dict[str, Any]:
    """Withdraw a wrong ledger entry with a note."""
    with services.db.begin() as session:
        v = conduct.withdraw(session, violation_id, by=by, note=note, now=services.clock.now())
        group = session.get(ManagedGroup, v.group_id)
        assert group is not None
        return _violation(session, v, group)


def adopt_member(services: Services, chatid: str, userid: str, by: str) -> dict[str, Any]:
    """Make someone already in the chat (added outside the app) an approved member, or decide
    their held outside join as approved."""
    now = services.clock.now()
    with services.db.begin() as session:
        group = group_by_chatid(session, chatid, lock=True)
        held = session.scalars(
            select(GroupRequest).where(
                GroupRequest.group_id == group.id,
                GroupRequest.requester == userid,
                GroupRequest.kind == "join",
                GroupRequest.state == "pending",
            )
        ).first()
        if held is None:
            if session.scalar(select(Employee.id).where(Employee.userid == userid)) is None:
                raise GovernanceError(f"没有成员 {userid}")
            held = requests.file_request(
                session,
                "join",
                userid,
                by,
                {"chatid": chatid},
                "管理员采纳群外加入",
                now,
                asking(services),
                group=group,
                origin="outside",
            )
        message = requests.decide(session, held.id, by, True, "", now, asking(services), admin=True)
        return {"message": message, "request": request_dict(session, held)}


def _violation(session: Session, v: GroupViolation, group: ManagedGroup) -> dict[str, Any]:
    display = session.scalar(select(Employee.display_name).where(Employee.userid == v.userid))
    return conduct.violation_dict(v, group.chatid, group.name, display)


def _names(session: Session, userids: list[str | None]) -> dict[str, str]:
    wanted = [u for u in userids if u]
    return display_names(session, wanted) if wanted else {}


def _calendar(services: Services) -> Any:
    from wecom_app.sla.config import SlaConfig

    return SlaConfig.from_settings(services.settings).calendar


ERRORS = (GovernanceError, RequestError, ConductError)
