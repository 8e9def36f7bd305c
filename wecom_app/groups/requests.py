"""Requests to create a managed group (建群申请) and to join one (入群申请), decided by card.

"由需求部门、项目提出，经分管领导同意后建立" and "负责审核申请加入微信群的成员资格":
a request goes to its approver as a card with 同意 / 驳回 and a link to the request in the
console. A create request's approver is named per kind of group in the policy, or else the
requester's department leader, walking up the tree past the requester; a join request's is the
group's owner. Approval creates the group (through the outbox, like any group) or makes the
newcomer an explicit member of the group's rules; rejection tells the requester the reason. An
unanswered request reminds its approver once and then expires. Under the policy's
`outside_joins: hold`, someone added to a group outside the app becomes a join request for the
owner too, held in the group until decided.

Everything here runs inside a transaction (a callback's, a command's or the job's) and only
queues WeCom writes.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks.dispatch import HandlerContext
from callbacks.events import TemplateCardEvent, TextMessage
from wecom_app.clock import BEIJING
from wecom_app.errors import AppError
from wecom_app.groups import blocks, service
from wecom_app.groups.mirror import org_view, userids_of
from wecom_app.groups.policy import GroupPolicy
from wecom_app.groups.rules import RuleError
from wecom_app.groups.service import GroupSpec
from wecom_app.jobs import JobContext
from wecom_app.models import (
    Department,
    Employee,
    EmployeeStatus,
    GroupMember,
    GroupRequest,
    ManagedGroup,
    RequestState,
)
from wecom_app.notices import pacing
from wecom_app.outbox import enqueue

CARD_PREFIX = "grq"  # task_id of an approval card: grq<request id>x<random>
APPROVE_KEY, REJECT_KEY = "grq_approve", "grq_reject"
STATES = {"pending": "待审批", "approved": "已同意", "rejected": "已驳回", "expired": "已超时"}
KINDS = {"create": "建群申请", "join": "入群申请"}
# "申请12 同意", "申请12 驳回 人数太多，请并入部门群", "入群 研发周会群 负责周会纪要"
DECISION = re.compile(r"^\s*申请\s*(\d+)\s*(同意|批准|驳回|拒绝)\s*[:：,，]?\s*(.*)$", re.S)
JOIN = re.compile(r"^\s*(?:申请)?入群\s*[:：]?\s*(\S+)\s*(.*)$", re.S)


class RequestError(AppError):
    """A request that cannot be made or decided; the message says why, in Chinese."""


@dataclass(frozen=True)
class Asking:
    """What a request handler needs besides the transaction: the policy and the console's URL."""

    policy: GroupPolicy
    public_url: str | None = None

    def link(self, request_id: int) -> str | None:
        """The request's page in the console, when the app knows its public address."""
        return f"{self.public_url}/console/requests/{request_id}" if self.public_url else None


def is_command(text: str) -> bool:
    """Whether a text to the app decides a request or asks to join a group."""
    return bool(DECISION.match(text) or JOIN.match(text))


# -- asking ---------------------------------------------------------------------------------


def ask_create(
    session: Session, requester: str, data: dict[str, Any], now: datetime, asking: Asking
) -> GroupRequest:
    """File a request for a new managed group and send its approver the card."""
    person = _active(session, requester, "申请人")
    spec = GroupSpec.from_dict({**data, "chatid": None, "adopt": False})
    if spec.kind not in service.KINDS:
        raise RequestError(f"群类型须为 {'、'.join(service.KINDS)} 之一：{spec.kind}")
    purpose = str(data.get("purpose") or "").strip()
    if not purpose:
        raise RequestError("请写明建群用途（purpose）")
    members = service.validate(spec, org_view(session))
    approver = approver_for(session, person, spec.kind, asking.policy)
    stored = {
        "name": spec.name,
        "kind": spec.kind,
        "purpose": purpose,
        "owner": spec.owner,
        "backup_owner": spec.backup_owner,
        "rules": spec.rules.to_dict(),
        "quiet_hours": spec.quiet_hours,
        "members": len(members),
    }
    request = file_request(session, "create", requester, approver, stored, purpose, now, asking)
    _card(
        session,
        request,
        now,
        asking,
        title="建群申请",
        rows=[
            ("群名称", spec.name),
            ("类型", spec.kind),
            ("成员", f"{len(members)} 人"),
            ("群主", _name(session, spec.owner)),
            ("申请人", person.display_name),
        ],
        summary=f"用途：{purpose}",
    )
    tell(
        session,
        requester,
        f"您的建群申请 申请{request.id}「{spec.name}」已提交，"
        f"等待 {_name(session, approver)} 审批。",
        f"grq-filed:{request.id}",
        now,
    )
    return request


def ask_join(
    session: Session,
    requester: str,
    group: ManagedGroup,
    reason: str,
    now: datetime,
    asking: Asking,
) -> GroupRequest:
    """File a request to join a managed group and send its owner the card."""
    person = _active(session, requester, "申请人")
    if group.status in ("archived", "creating"):
        state = "已归档" if group.status == "archived" else "尚未建好"
        raise RequestError(f"群「{group.name}」{state}，不能申请加入")
    block = blocks.block_of(session, group.id, requester, now)
    if block is not None:
        until = f"{block.until.astimezone(BEIJING):%Y-%m-%d %H:%M} 前" if block.until else "目前"
        raise RequestError(
            f"您已被移出群「{group.name}」，{until}不能再申请加入。原因：{block.reason}"
        )
    inside = session.scalar(
        select(GroupMember.userid).where(
            GroupMember.group_id == group.id, GroupMember.userid == requester
        )
    )
    if inside or requester in blocks.desired_for(session, group, org_view(session), now):
        raise RequestError(f"您已是群「{group.name}」的成员（或已符合其成员规则），无需申请。")
    open_one = _pending_join(session, group.id, requester)
    if open_one is not None:
        raise RequestError(f"您已申请加入群「{group.name}」（申请{open_one.id}），正在等待审批。")
    approver = group_approver(session, group, person, asking.policy)
    request = file_request(
        session,
        "join",
        requester,
        approver,
        {"chatid": group.chatid},
        reason.strip(),
        now,
        asking,
        group=group,
    )
    _card(
        session,
        request,
        now,
        asking,
        title="入群申请",
        rows=[
            ("群", group.name),
            ("申请人", person.display_name),
        ],
        summary=f"理由：{reason.strip() or '未填写'}",
    )
    tell(
        session,
        requester,
        f"您加入群「{group.name}」的申请（申请{request.id}）已提交，"
        f"等待 {_name(session, approver)} 审批。",
        f"grq-filed:{request.id}",
        now,
    )
    return request


def hold_outside_join(
    session: Session, group: ManagedGroup, userid: str, now: datetime, asking: Asking
) -> GroupRequest | None:
    """Someone was added outside the app: ask the owner whether to adopt them (policy `hold`)."""
    if _pending_join(session, group.id, userid) is not None:
        return None
    person = session.scalars(select(Employee).where(Employee.userid == userid)).first()
    if person is None:
        return None
    approver = group_approver(session, group, person, asking.policy)
    request = file_request(
        session,
        "join",
        userid,
        approver,
        {"chatid": group.chatid},
        "未经本应用加入群聊",
        now,
        asking,
        group=group,
        origin="outside",
    )
    _card(
        session,
        request,
        now,
        asking,
        title="群外加入待确认",
        rows=[
            ("群", group.name),
            ("成员", person.display_name),
        ],
        summary="此人未经审批被拉入群。同意即采纳为本群成员，驳回则移出并在群内说明原因。",
    )
    return request


def approver_for(session: Session, person: Employee, kind: str, policy: GroupPolicy) -> str:
    """Who approves a new group: the policy's approver for its kind, else the requester's
    department leader, walking up the tree (a leader asking goes to the leader above)."""
    for userid in policy.approvers.get(kind, ()):
        if userid == person.userid:  # nobody approves their own request
            continue
        found = _employee(session, userid)
        if found is not None and found.status == EmployeeStatus.ACTIVE:
            return found.userid
    departments = {d.id: d for d in session.scalars(select(Department))}
    dept_id: int | None = person.main_department or next(iter(person.departments or ()), None)
    seen: set[int] = set()
    while dept_id is not None and dept_id in departments and dept_id not in seen:
        seen.add(dept_id)
        dept = departments[dept_id]
        for userid in dept.leaders or ():
            if userid == person.userid:
                continue
            found = _employee(session, userid)
            if found is not None and found.status == EmployeeStatus.ACTIVE:
                return found.userid
        dept_id = dept.parent_id
    raise RequestError(f"找不到“{kind}”的审批人：请在群治理策略 requests.approvers 中指定")


def group_approver(
    session: Session, group: ManagedGroup, person: Employee, policy: GroupPolicy
) -> str:
    """Who decides who joins a group: its owner, else its backup owner, else as for a new one."""
    for userid in userids_of(session, [group.owner_id, group.backup_owner_id]):
        found = _employee(session, userid) if userid else None
        if found is not None and found.status == EmployeeStatus.ACTIVE:
            return found.userid
    return approver_for(session, person, group.kind, policy)


# -- deciding -------------------------------------------------------------------------------


def decide(
    session: Session,
    request_id: int,
    decider: str,
    approve: bool,
    reason: str,
    now: datetime,
    asking: Asking,
    *,
    admin: bool = False,
) -> str:
    """Approve or reject a request; return what to tell the decider."""
    request = session.get(GroupRequest, request_id, with_for_update=True)
    if request is None:
        raise RequestError(f"没有申请{request_id}")
    if request.state != RequestState.PENDING:
        raise RequestError(
            f"申请{request.id}{STATES.get(request.state, request.state)}，无需再审批。"
        )
    if decider != request.approver and not admin:
        raise RequestError(
            f"申请{request.id}不由您审批（审批人：{_name(session, request.approver)}）。"
        )
    reason = reason.strip()
    if not approve and not reason and request.origin != "outside":
        raise RequestError(
            f"请写明驳回理由，例如回复“申请{request.id} 驳回 人数过多，请并入部门群”。"
        )
    if approve:
        reply = _approved(session, request, decider, now, asking)  # raises before any change
        request.state, request.reason = RequestState.APPROVED, reason or None
    else:
        request.state, request.reason = RequestState.REJECTED, reason
        reply = _rejected(session, request, now)
    request.decided_by, request.decided_at = decider, now
    return reply


def _approved(
    session: Session, request: GroupRequest, decider: str, now: datetime, asking: Asking
) -> str:
    if request.kind == "create":
        data = dict(request.spec)
        spec = GroupSpec.from_dict({**data, "chatid": None})
        try:
            group, _ = service.create(session, spec, actor=f"request:{request.id}", now=now)
        except RuleError as exc:  # the org changed since the request: say so, keep it open
            raise RequestError(f"申请{request.id}已无法按原样建群：{exc}") from None
        group.purpose = str(data.get("purpose") or "")
        group.requested_by, group.approved_by, group.approved_at = request.requester, decider, now
        group.approval = "request"
        request.group_id = group.id
        tell(
            session,
            request.requester,
            f"您的建群申请 申请{request.id}「{group.name}」已由 "
            f"{_name(session, decider)} 同意，群正在创建。",
            f"grq-decided:{request.id}",
            now,
        )
        return f"已同意申请{request.id}：群「{group.name}」正在创建。"
    joined = (
        session.get(ManagedGroup, request.group_id, with_for_update=True)
        if request.group_id
        else None
    )
    if joined is None or joined.status == "archived":
        raise RequestError(f"申请{request.id}所申请的群已不再受管")
    if blocks.block_of(session, joined.id, request.requester, now) is not None:
        raise RequestError(f"{_name(session, request.requester)} 仍在禁止入群期内，不能加入")
    rules = dict(joined.rules or {})
    users = [str(u) for u in rules.get("users") or ()]
    if request.requester not in users:
        users.append(request.requester)
    rules["users"] = users
    rules["exclude"] = [u for u in rules.get("exclude") or () if u != request.requester]
    approved = dict(rules.get("approved") or {})
    approved[request.requester] = {"by": decider, "at": now.isoformat(), "request": request.id}
    rules["approved"] = approved
    joined.rules, joined.updated_at = rules, now
    joined.reconcile_due_at = joined.reconcile_due_at or now
    who = _name(session, request.requester)
    if request.origin == "outside":
        return f"已采纳 {who} 为群「{joined.name}」的成员。"
    tell(
        session,
        request.requester,
        f"您加入群「{joined.name}」的申请（申请{request.id}）已由 "
        f"{_name(session, decider)} 同意，稍后即被拉入群。",
        f"grq-decided:{request.id}",
        now,
    )
    return f"已同意 {who} 加入群「{joined.name}」。"


def _rejected(session: Session, request: GroupRequest, now: datetime) -> str:
    name = request.spec.get("name") if request.kind == "create" else _group_name(session, request)
    if request.origin == "outside":
        group = session.get(ManagedGroup, request.group_id) if request.group_id else None
        if group is not None:
            group.reconcile_due_at = group.reconcile_due_at or now  # the plan removes them
        return (
            f"已驳回：{_name(session, request.requester)} 将被移出群「{name}」，并在群内说明原因。"
        )
    what = "建群申请" if request.kind == "create" else "入群申请"
    tell(
        session,
        request.requester,
        f"您的{what} 申请{request.id}「{name}」未获同意。理由：{request.reason}",
        f"grq-decided:{request.id}",
        now,
    )
    return f"已驳回申请{request.id}，已告知申请人理由。"


# -- cards and texts to the app -------------------------------------------------------------


def on_card(ctx: HandlerContext, event: TemplateCardEvent, *, asking: Asking) -> None:
    """A click on an approval card: 同意 decides at once; 驳回 asks for the reason first
    (an outside join is refused at once: its reason is fixed)."""
    session, now = ctx.session, ctx.clock.now()
    request = session.scalars(
        select(GroupRequest).where(GroupRequest.task_id == event.task_id)
    ).first()
    if request is None:
        return
    key = f"grq-card:{event.dedupe_key}"
    try:
        if event.event_key == APPROVE_KEY:
            reply, button = (
                decide(session, request.id, event.from_user, True, "", now, asking),
                "已同意",
            )
        elif event.event_key == REJECT_KEY and request.origin == "outside":
            reply, button = (
                decide(session, request.id, event.from_user, False, "", now, asking),
                "已驳回",
            )
        elif event.event_key == REJECT_KEY:
            _check_decider(request, event.from_user)
            reply = f"请回复驳回理由，例如“申请{request.id} 驳回 人数过多，请并入部门群”。"
            button = "请回复驳回理由"
        else:
            return
    except RequestError as exc:
        tell(session, event.from_user, str(exc), key, now)
        return
    tell(session, event.from_user, reply, key, now)
    if event.response_code:
        enqueue(
            session,
            "update_template_card",
            {
                "userids": [event.from_user],
                "response_code": event.response_code,
                "replace_name": button,
            },
            f"grq-card-update:{event.response_code}",
            now=now,
            ref=("group_request", str(request.id)),
        )


def on_text(ctx: HandlerContext, event: TextMessage, *, asking: Asking) -> None:
    """ "申请12 同意", "申请12 驳回 理由" and "入群 群名 理由" sent to the app."""
    session, now = ctx.session, ctx.clock.now()
    key = f"grq-text:{event.dedupe_key}"
    try:
        decision = DECISION.match(event.content)
        if decision is not None:
            approve = decision.group(2) in ("同意", "批准")
            reply = decide(
                session,
                int(decision.group(1)),
                event.from_user,
                approve,
                decision.group(3),
                now,
                asking,
            )
        else:
            joining = JOIN.match(event.content)
            assert joining is not None
            group = find_group(session, joining.group(1))
            ask_join(session, event.from_user, group, joining.group(2), now, asking)
            reply = None  # ask_join has told them it is filed
    except (RequestError, RuleError) as exc:
        reply = str(exc)
    if reply:
        tell(session, event.from_user, reply, key, now)


def find_group(session: Session, ref: str) -> ManagedGroup:
    """A managed group by chatid or exact name."""
    group = session.scalars(select(ManagedGroup).where(ManagedGroup.chatid == ref)).first()
    if group is None:
        named = list(session.scalars(select(ManagedGroup).where(ManagedGroup.name == ref)))
        if len(named) > 1:
            raise RequestError(
                f"有多个名为「{ref}」的群，请改用群 ID：{', '.join(g.chatid for g in named)}"
            )
        group = named[0] if named else None
    if group is None:
        raise RequestError(f"没有找到受管群「{ref}」：请写群名称或群 ID。")
    return group


# -- time-outs ------------------------------------------------------------------------------


def chase(ctx: JobContext, *, asking: Asking) -> dict[str, Any]:
    """Remind approvers of requests waiting past the policy's time, and expire the overdue."""
    services = ctx.services
    now = services.clock.now()
    reminded = expired = 0
    with services.db.begin() as session:
        due = select(GroupRequest).where(GroupRequest.state == RequestState.PENDING)
        for request in session.scalars(due.where(GroupRequest.due_at <= now).with_for_update()):
            request.state, request.decided_at = RequestState.EXPIRED, now
            expired += 1
            name = (
                request.spec.get("name")
                if request.kind == "create"
                else _group_name(session, request)
            )
            if request.origin == "outside":
                group = session.get(ManagedGroup, request.group_id) if request.group_id else None
                if group is not None:
                    group.reconcile_due_at = group.reconcile_due_at or now
                continue
            tell(
                session,
                request.requester,
                f"您的{KINDS[request.kind]} 申请{request.id}「{name}」"
                "超时未获审批，已自动关闭；如仍需要，请重新提交。",
                f"grq-expired:{request.id}",
                now,
            )
        waiting = due.where(GroupRequest.remind_at <= now, GroupRequest.due_at > now)
        for request in session.scalars(waiting.with_for_update()):
            request.remind_at = None
            reminded += 1
            until = request.due_at.astimezone(BEIJING)
            link = asking.link(request.id)
            text = (
                f"提醒：{KINDS[request.kind]} 申请{request.id} 仍在等待您审批，"
                f"{until:%m-%d %H:%M} 前未处理将自动关闭。回复“申请{request.id} 同意”或"
                f"“申请{request.id} 驳回 理由”。"
            )
            tell(
                session,
                request.approver,
                text + (f"\n{link}" if link else ""),
                f"grq-remind:{request.id}",
                now,
            )
    return {"reminded": reminded, "expired": expired}


# -- helpers --------------------------------------------------------------------------------


def tell(session: Session, userid: str, text: str, key: str, now: datetime) -> None:
    """A text from the app to one member, paced like every message to them."""
    pacing.tell(session, userid, text, key, now, ("group_request_text", userid))


def file_request(
    session: Session,
    kind: str,
    requester: str,
    approver: str,
    spec: dict[str, Any],
    note: str,
    now: datetime,
    asking: Asking,
    *,
    group: ManagedGroup | None = None,
    origin: str = "request",
) -> GroupRequest:
    """Store a request with its reminder and time-out, and its card's task_id."""
    policy = asking.policy
    request = GroupRequest(
        kind=kind,
        origin=origin,
        requester=requester,
        approver=approver,
        spec=spec,
        note=note,
        created_at=now,
        state=RequestState.PENDING,
        remind_at=now + policy.request_remind_after,
        due_at=now + policy.request_timeout,
        group_id=group.id if group is not None else None,
    )
    session.add(request)
    session.flush()
    request.task_id = f"{CARD_PREFIX}{request.id}x{secrets.token_hex(8)}"
    return request


def _card(
    session: Session,
    request: GroupRequest,
    now: datetime,
    asking: Asking,
    *,
    title: str,
    rows: list[tuple[str, str]],
    summary: str,
) -> None:
    contents: list[dict[str, Any]] = [{"keyname": k, "value": v[:30]} for k, v in rows][:5]
    link = asking.link(request.id)
    if link:
        contents.append({"keyname": "详情", "value": "在控制台查看", "type": 1, "url": link})
    until = request.due_at.astimezone(BEIJING)
    card = {
        "card_type": "button_interaction",
        "source": {"desc": "群管理审批"},
        "main_title": {"title": title, "desc": f"申请{request.id} · {until:%m-%d %H:%M} 前审批"},
        "sub_title_text": summary[:160],
        "horizontal_content_list": contents,
        "task_id": request.task_id,
        "button_list": [
            {"text": "同意", "style": 1, "key": APPROVE_KEY},
            {"text": "驳回", "style": 2, "key": REJECT_KEY},
        ],
    }
    enqueue(
        session,
        "message_send",
        {"msg": {"msgtype": "template_card", "template_card": card}, "touser": [request.approver]},
        f"grq-card:{request.id}",
        now=now,
        ref=("group_request", str(request.id)),
        not_before=pacing.slot_for(session, request.approver, now, "card"),
    )


def _check_decider(request: GroupRequest, decider: str) -> None:
    if request.state != RequestState.PENDING:
        raise RequestError(
            f"申请{request.id}{STATES.get(request.state, request.state)}，无需再审批。"
        )
    if decider != request.approver:
        raise RequestError(f"申请{request.id}不由您审批。")


def _pending_join(session: Session, group_id: int, userid: str) -> GroupRequest | None:
    query = select(GroupRequest).where(
        GroupRequest.group_id == group_id,
        GroupRequest.kind == "join",
        GroupRequest.requester == userid,
        GroupRequest.state == RequestState.PENDING,
    )
    return session.scalars(query).first()


def _active(session: Session, userid: str, role: str) -> Employee:
    person = _employee(session, userid)
    if person is None or person.status != EmployeeStatus.ACTIVE:
        raise RequestError(f"{role} {userid} 不是在职员工")
    return person


def _employee(session: Session, userid: str | None) -> Employee | None:
    if not userid:
        return None
    return session.scalars(select(Employee).where(Employee.userid == userid)).first()


def _name(session: Session, userid: str | None) -> str:
    person = _employee(session, userid)
    return person.display_name if person is not None else (userid or "—")


def _group_name(session: Session, request: GroupRequest) -> str:
    group = session.get(ManagedGroup, request.group_id) if request.group_id else None
    return group.name if group is not None else str(request.spec.get("chatid") or "")
