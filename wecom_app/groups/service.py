"""Create, adopt and (re)define managed groups."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from wecom_app.groups.ledger import audit
from wecom_app.groups.mirror import employee_ids, org_view
from wecom_app.groups.rules import GroupRules, OrgView, RuleError, check_name, desired_members
from wecom_app.models import GroupMember, ManagedGroup
from wecom_app.models.groups import AuditOutcome

CHATID = re.compile(r"^[0-9a-zA-Z]{1,32}$")
KINDS = ("高管群", "部门工作群", "项目群", "其他")


@dataclass
class GroupSpec:
    """A managed group as declared: by CLI options, the API or a config file."""

    name: str
    owner: str
    rules: GroupRules
    backup_owner: str | None = None
    kind: str = "部门工作群"
    chatid: str | None = None
    adopt: bool = False  # the chat exists (created by this app earlier): manage it

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupSpec:
        """Read one group from its YAML/JSON form."""
        for key in ("name", "owner"):
            if not data.get(key):
                raise RuleError(f"群定义缺少 {key}：{data.get('chatid') or data.get('name')}")
        return cls(
            name=str(data["name"]),
            owner=str(data["owner"]),
            rules=GroupRules.from_dict(data.get("rules")),
            backup_owner=str(data["backup_owner"]) if data.get("backup_owner") else None,
            kind=str(data.get("kind") or "部门工作群"),
            chatid=str(data["chatid"]) if data.get("chatid") else None,
            adopt=bool(data.get("adopt", False)),
        )


def validate(spec: GroupSpec, org: OrgView) -> dict[str, str]:
    """Check a spec against the mirror and return its desired members; raise RuleError."""
    check_name(spec.name)
    if spec.chatid is not None and not CHATID.match(spec.chatid):
        raise RuleError(f"chatid 只能由字母和数字组成，至多 32 位：{spec.chatid}")
    for role, userid in (("群主", spec.owner), ("备用群主", spec.backup_owner)):
        if userid is None:
            continue
        person = org.people.get(userid)
        if person is None or not person.active:
            raise RuleError(f"{role} {userid} 不是在职员工")
    owners = [spec.owner] + ([spec.backup_owner] if spec.backup_owner else [])
    members = desired_members(spec.rules, org, owners)
    if len(members) < 2:
        raise RuleError("企业微信群至少需要 2 名成员，当前规则不足 2 人")
    return members


def define(session: Session, spec: GroupSpec, group: ManagedGroup | None, now: Any) -> ManagedGroup:
    """Insert or update a group's definition (name, kind, owners, rules)."""
    owner_id, backup_id = employee_ids(session, [spec.owner, spec.backup_owner])
    if group is None:
        group = ManagedGroup(chatid=spec.chatid, created_at=now, version=0, status="active")
        session.add(group)
    group.name, group.kind, group.rules = check_name(spec.name), spec.kind, spec.rules.to_dict()
    group.owner_id, group.backup_owner_id, group.updated_at = owner_id, backup_id, now
    session.flush()
    return group


def create(services: Any, spec: GroupSpec, *, actor: str) -> ManagedGroup:
    """Create a group chat in WeCom with the members its rules give, and start managing it."""
    with services.db.begin() as session:
        members = validate(spec, org_view(session))
        if spec.chatid and session.scalar(
            select(ManagedGroup.id).where(ManagedGroup.chatid == spec.chatid)
        ):
            raise RuleError(f"已有受管群使用 chatid {spec.chatid}")
    spec.chatid = spec.chatid or "wg" + secrets.token_hex(12)
    chatid = services.client.appchat_create(
        check_name(spec.name), spec.owner, sorted(members), spec.chatid
    )
    spec.chatid = chatid
    now = services.clock.now()
    with services.db.begin() as session:
        group = define(session, spec, None, now)
        group.actual_owner, group.actual_name = spec.owner, group.name
        group.last_reconciled_at = now
        session.add_all(GroupMember(group_id=group.id, userid=u, since=now) for u in members)
        audit(session, group, "create", now, actor=actor, detail=group.name,
              outcome=AuditOutcome.APPLIED, done_at=now)  # fmt: skip
        for userid, reason in sorted(members.items()):
            audit(session, group, "add", now, actor=actor, userid=userid, reason=reason,
                  outcome=AuditOutcome.APPLIED, done_at=now)  # fmt: skip
        return group


def adopt(services: Any, spec: GroupSpec, *, actor: str) -> ManagedGroup:
    """Start managing a chat this app created earlier; its members are reconciled next."""
    if not spec.chatid:
        raise RuleError("接管已有群需要 chatid")
    with services.db.begin() as session:
        validate(spec, org_view(session))
    chat = services.client.appchat_get(spec.chatid)
    now = services.clock.now()
    with services.db.begin() as session:
        existing = session.scalars(
            select(ManagedGroup).where(ManagedGroup.chatid == spec.chatid)
        ).first()
        group = define(session, spec, existing, now)
        if existing is None:
            group.actual_owner, group.actual_name = chat.owner, chat.name
            session.add_all(
                GroupMember(group_id=group.id, userid=u, since=now) for u in chat.userlist
            )
            audit(session, group, "adopt", now, actor=actor, detail=chat.name,
                  outcome=AuditOutcome.OBSERVED, done_at=now)  # fmt: skip
        return group
