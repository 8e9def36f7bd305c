"""Create, adopt and (re)define managed groups.

Creating a group is a WeCom write like any other: `create` queues `appchat/create` through the
outbox in the transaction that defines the group, with a chatid chosen here, so a lost answer
can be repeated safely (WeCom answers 86215 and the chat is adopted). `create_now` is the
workflow a command uses: it queues, then has the outbox perform that row at once.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from wecom_app.groups.ledger import LANE, REF, audit
from wecom_app.groups.mirror import employee_ids, org_view
from wecom_app.groups.rules import GroupRules, OrgView, RuleError, check_name, desired_members
from wecom_app.models import GroupMember, ManagedGroup, OutboxMessage
from wecom_app.models.groups import AuditOutcome
from wecom_app.outbox import Outcome, enqueue
from wecom_app.sending import Outbox
from wecom_app.services import Services

CREATE = "appchat_create"

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
    quiet_hours: bool = False  # a reminder at 22:00 and no posts of the app's own till 07:30
    purpose: str = ""  # what the group is for, shown in the register (群台账)

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
            quiet_hours=bool(data.get("quiet_hours", False)),
            purpose=str(data.get("purpose") or ""),
        )


def approval_of(actor: str) -> str:
    """What a group's register entry says authorised it, from who made it: a request's
    approval ("request:12"), the groups file ("config"), or the channel that made it."""
    channel = actor.split(":", 1)[0]
    return channel if channel in ("request", "config", "cli", "api", "console") else channel[:32]


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


def define(
    session: Session, spec: GroupSpec, group: ManagedGroup | None, now: datetime
) -> ManagedGroup:
    """Insert or update a group's definition (name, kind, owners, rules)."""
    owner_id, backup_id = employee_ids(session, [spec.owner, spec.backup_owner])
    if group is None:
        group = ManagedGroup(chatid=spec.chatid, created_at=now, version=0, status="active")
        session.add(group)
    rules = spec.rules.to_dict()
    approved = dict((group.rules or {}).get("approved") or {})  # joins approved on request stay
    if approved:
        rules["users"] += [u for u in approved if u not in rules["users"]]
        rules["approved"] = approved
    group.name, group.kind, group.rules = check_name(spec.name), spec.kind, rules
    group.owner_id, group.backup_owner_id, group.updated_at = owner_id, backup_id, now
    group.quiet_hours = spec.quiet_hours
    group.purpose = spec.purpose or group.purpose or ""
    session.flush()
    return group


def create(
    session: Session, spec: GroupSpec, *, actor: str, now: datetime
) -> tuple[ManagedGroup, int]:
    """Define a group and queue its creation in WeCom with the members its rules give.

    Returns the group and the outbox row that will create it.
    """
    members = validate(spec, org_view(session))
    if spec.chatid and session.scalar(
        select(ManagedGroup.id).where(ManagedGroup.chatid == spec.chatid)
    ):
        raise RuleError(f"已有受管群使用 chatid {spec.chatid}")
    spec.chatid = spec.chatid or "wg" + secrets.token_hex(12)
    group = define(session, spec, None, now)
    group.status = "creating"
    group.approval = approval_of(actor)
    payload = {"name": group.name, "owner": spec.owner, "userlist": sorted(members),
               "chatid": spec.chatid}  # fmt: skip
    key = f"groups:create:{spec.chatid}"
    enqueue(session, CREATE, payload, key, now=now, lane=LANE, ref=(REF, str(group.id)))
    msg_id = session.scalars(
        select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)
    ).one()
    audit(session, group, "create", now, actor=actor, detail=group.name, outbox_id=msg_id)
    for userid, reason in sorted(members.items()):
        audit(session, group, "add", now, actor=actor, userid=userid, reason=reason,
              outbox_id=msg_id)  # fmt: skip
    return group, msg_id


def create_now(
    services: Services, outbox: Outbox, spec: GroupSpec, *, actor: str
) -> tuple[ManagedGroup, Outcome | None]:
    """Queue a group's creation and perform it at once; the worker retries it if WeCom fails."""
    with services.db.begin() as session:
        group, msg_id = create(session, spec, actor=actor, now=services.clock.now())
        group_id = group.id
    outcome = outbox.perform_now(msg_id)
    with services.db.begin() as session:
        created = session.get(ManagedGroup, group_id)
        assert created is not None
        return created, outcome


def adopt(services: Services, spec: GroupSpec, *, actor: str) -> ManagedGroup:
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
        group.approval = group.approval or approval_of(actor)
        if existing is None:
            group.actual_owner, group.actual_name = chat.owner, chat.name
            session.add_all(
                GroupMember(group_id=group.id, userid=u, since=now) for u in chat.userlist
            )
            audit(session, group, "adopt", now, actor=actor, detail=chat.name,
                  outcome=AuditOutcome.OBSERVED, done_at=now)  # fmt: skip
        return group
