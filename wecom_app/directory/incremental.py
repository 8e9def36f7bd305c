"""Incremental sync: one handler per change_contact ChangeType, plus subscribe/unsubscribe.

Member events are applied from a fresh `user/get`, not from the payload: since 2022 payloads
carry only UserID/Department, and reading the current state makes duplicated and out-of-order
events converge (an update before its create simply creates). The payload is used only when
WeCom cannot be asked. A disabled member (status 2) is not a departure: accounts are disabled
for leave too and can come back; they drop out of everything that counts active employees.

The reads happen in fetchers (`fetch_member`, `fetch_department`), which the inbox runs before
it opens the event's transaction; the handlers only write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from callbacks.dispatch import HandlerContext
from callbacks.events import Event, PartyChange, Subscription, TagChange, UserChange
from wecom_app.directory.diff import DeptRecord, EmployeeRecord
from wecom_app.directory.mirror import (
    depart,
    employee_by_userid,
    hide,
    record_of,
    save_employee,
)
from wecom_app.directory.naming import NamingPolicy
from wecom_app.directory.queries import department_subtree_ids
from wecom_app.domain_events import EmployeeRenamed
from wecom_app.errors import CredentialFailing, WeComError, WeComNetworkError
from wecom_app.models import Department, Employee, EmployeeHistory, EmployeeStatus, Tag, TagMember
from wecom_app.wecom.api import WeComApi
from wecom_app.wecom.types import Department as WeComDepartment
from wecom_app.wecom.types import User

log = logging.getLogger(__name__)

SOURCE = "change_contact"
USER_NOT_FOUND = 60111
OUTSIDE_VISIBILITY = 60011
ID_ONLY_FIELDS = frozenset({"UserID", "NewUserID", "Department"})


# Departments read to find who a vanished member became (a thin payload lists few)
MAX_NEARBY_DEPARTMENTS = 8


@dataclass(frozen=True)
class Lookup:
    """What WeCom said when asked: the thing, or the error it answered with.

    `nearby` holds the members of the departments an `update_user` named when its member was
    not found: where to look for the member under a new userid (see `_successor`).
    """

    found: Any = None
    error: WeComError | None = None
    nearby: tuple[User, ...] = ()


def _ask(call: Any, *args: Any) -> Lookup:
    """Run one read; WeCom's refusals become part of the answer, an outage propagates."""
    try:
        return Lookup(call(*args))
    except (WeComNetworkError, CredentialFailing):
        raise  # the inbox waits and asks again later
    except WeComError as exc:
        return Lookup(error=exc)


def member_of(event: Event) -> str:
    """The userid a member event is about (the new one after a rename)."""
    if isinstance(event, UserChange):
        return event.new_user_id or event.user_id
    return event.from_user


def fetch_member(client: WeComApi, event: Event) -> Lookup:
    """Read the member an event is about, before the event's transaction opens.

    An `update_user` about a member WeCom no longer knows, without `NewUserID`, is what a
    userid change can look like in a thin payload: the departments it names are read too, so
    the handler can find the member under their new userid.
    """
    lookup = _ask(client.user_get, member_of(event))
    if not _maybe_renamed(event, lookup):
        return lookup
    assert isinstance(event, UserChange)
    nearby: dict[str, User] = {}
    for dept_id in _departments_named(event)[:MAX_NEARBY_DEPARTMENTS]:
        listed = _ask(client.user_list, dept_id)
        for user in listed.found or ():
            nearby.setdefault(user.userid, user)
    return replace(lookup, nearby=tuple(nearby.values()))


def _maybe_renamed(event: Event, lookup: Lookup) -> bool:
    return (
        isinstance(event, UserChange)
        and event.change_type == "update_user"
        and not event.new_user_id
        and lookup.error is not None
        and lookup.error.errcode == USER_NOT_FOUND
    )


def _departments_named(event: UserChange) -> list[int]:
    text = str(event.fields.get("Department") or "")
    return [int(part) for part in text.split(",") if part.strip().isdigit()]


def fetch_department(client: WeComApi, event: PartyChange) -> Lookup:
    """Read a department whose event came without its name (thin payloads)."""
    if event.name is not None:
        return Lookup()
    return _ask(client.department_get, event.party_id)


def on_user_changed(ctx: HandlerContext, event: UserChange, *, policy: NamingPolicy) -> None:
    """A member was added or edited (maybe renamed, maybe removed by a new status)."""
    if event.new_user_id and event.new_user_id != event.user_id:
        _rename(ctx, event.user_id, event.new_user_id)
    elif (successor := _successor(ctx, event)) is not None:
        _rename(ctx, event.user_id, successor.userid, matched_by="name_and_department")
        _refresh_member(ctx, policy, successor.userid, SOURCE, departure_source="status",
                        fields={}, lookup=Lookup(successor))  # fmt: skip
        return
    _refresh_member(ctx, policy, member_of(event), SOURCE, departure_source="status",
                    fields=event.fields)  # fmt: skip


def _successor(ctx: HandlerContext, event: UserChange) -> User | None:
    """Who a member WeCom no longer knows became, when one person can be told apart.

    A userid change sent without `NewUserID` names the old userid, which `user/get` no longer
    finds, and the departments the member is in. The member is taken to be renamed when exactly
    one member of those departments is unknown to the mirror and has their name; anything less
    certain leaves them out of sight (never departed), for the nightly sync to settle.
    """
    lookup = ctx.fetched
    if not isinstance(lookup, Lookup) or not lookup.nearby:
        return None
    emp = employee_by_userid(ctx.session, event.user_id)
    if emp is None or emp.status == EmployeeStatus.DEPARTED:
        return None
    strangers = [
        user
        for user in lookup.nearby
        if user.name == emp.name and employee_by_userid(ctx.session, user.userid) is None
    ]
    if len(strangers) != 1:
        if strangers:
            log.warning("%s vanished and %d members named %s appeared: not guessing which",
                        event.user_id, len(strangers), emp.name)  # fmt: skip
        return None
    return strangers[0]


def on_user_deleted(ctx: HandlerContext, event: UserChange) -> None:
    """HR deleted a member: they left, announced once however often the event comes."""
    emp = employee_by_userid(ctx.session, event.user_id)
    if emp is None:
        log.info("delete_user for unknown member %s ignored", event.user_id)
        return
    depart(ctx.session, ctx.clock, ctx.events, emp, "delete_user", ctx.cause)


def on_subscribe(ctx: HandlerContext, event: Subscription, *, policy: NamingPolicy) -> None:
    """A member can now use the app: make sure the mirror knows them as they are."""
    _refresh_member(ctx, policy, event.from_user, "subscribe", departure_source="subscribe",
                    fields={})  # fmt: skip


def on_unsubscribe(ctx: HandlerContext, event: Subscription, *, policy: NamingPolicy) -> None:
    """A member lost the app: a departure only if WeCom confirms they are gone or left."""
    emp = _refresh_member(
        ctx, policy, event.from_user, "unsubscribe", departure_source="unsubscribe", fields={}
    )
    if emp is not None:
        _note(ctx, emp.id, "unsubscribed", "unsubscribe", {"status": emp.status})


def on_party_changed(ctx: HandlerContext, event: PartyChange, *, policy: NamingPolicy) -> None:
    """A department was added, renamed or moved; names derived from it follow."""
    session, now = ctx.session, ctx.clock.now()
    dept = session.get(Department, event.party_id)
    lookup: Lookup = ctx.fetched or Lookup()
    fresh: WeComDepartment | None = lookup.found
    if lookup.error is not None:
        log.warning("department %s: details unavailable (%s); the next full sync fills them",
                    event.party_id, lookup.error)  # fmt: skip
    name = event.name if event.name is not None else fresh.name if fresh else None
    if name is None:
        name = dept.name if dept else ""
    parent_id = event.parent_id
    if parent_id is None and fresh is not None:
        parent_id = fresh.parentid
    order = event.order if event.order is not None else fresh.order if fresh else None
    event = replace(event, parent_id=parent_id, order=order)
    if dept is None:
        dept = Department(id=event.party_id, name=name, leaders=[], order=0, updated_at=now)
        session.add(dept)
    renamed = dept.name != name or (
        event.parent_id is not None and dept.parent_id != event.parent_id
    )
    dept.name, dept.deleted, dept.updated_at = name, False, now
    if event.parent_id is not None:
        dept.parent_id = event.parent_id or None
    if event.order is not None:
        dept.order = event.order
    session.flush()
    if renamed:
        refresh_display_names(session, policy, department_subtree_ids(session, dept.id))


def on_party_deleted(ctx: HandlerContext, event: PartyChange) -> None:
    """A department was deleted (WeCom only deletes empty ones); kept, flagged deleted."""
    dept = ctx.session.get(Department, event.party_id)
    if dept is not None:
        dept.deleted, dept.updated_at = True, ctx.clock.now()


def fetch_tag(client: WeComApi, event: TagChange) -> Lookup:
    """Read the whole tag an `update_tag` is about: the event carries only the changes."""
    return _ask(client.tag_get, event.tag_id)


TAG_GONE = 40068  # invalid tagid: the tag was deleted


def on_tag_changed(ctx: HandlerContext, event: TagChange) -> None:
    """A tag changed: take its name and members from WeCom's answer, or apply the event's
    deltas when WeCom could not say."""
    session = ctx.session
    fetched = ctx.fetched if isinstance(ctx.fetched, Lookup) else Lookup()
    gone = TagMember.tag_id == event.tag_id
    if fetched.error is not None and fetched.error.errcode == TAG_GONE:
        session.execute(delete(TagMember).where(gone))
        session.execute(delete(Tag).where(Tag.id == event.tag_id))
        return
    tag = session.get(Tag, event.tag_id)
    if tag is None:
        tag = Tag(id=event.tag_id, name="")
        session.add(tag)
    if fetched.found is not None:
        detail = fetched.found
        tag.name = detail.name or tag.name
        session.execute(delete(TagMember).where(gone))
        for userid in dict.fromkeys(detail.userids):
            session.add(TagMember(tag_id=event.tag_id, userid=userid))
        for dept_id in dict.fromkeys(detail.departments):
            session.add(TagMember(tag_id=event.tag_id, department_id=dept_id))
        return
    if event.del_users:
        session.execute(delete(TagMember).where(gone, TagMember.userid.in_(event.del_users)))
    if event.del_parties:
        session.execute(
            delete(TagMember).where(gone, TagMember.department_id.in_(event.del_parties))
        )
    query = select(TagMember.userid, TagMember.department_id).where(gone)
    have = {(row[0], row[1]) for row in session.execute(query)}
    for userid in dict.fromkeys(event.add_users):
        if (userid, None) not in have:
            session.add(TagMember(tag_id=event.tag_id, userid=userid))
    for dept_id in dict.fromkeys(event.add_parties):
        if (None, dept_id) not in have:
            session.add(TagMember(tag_id=event.tag_id, department_id=dept_id))


def refresh_display_names(session: Session, policy: NamingPolicy, department_ids: set[int]) -> int:
    """Recompute display names of employees whose main department is among the given ones."""
    if not department_ids:
        return 0
    departments = _all_departments(session)
    query = select(Employee).where(Employee.main_department.in_(department_ids))
    changed = 0
    for emp in session.scalars(query):
        name = policy.display_name(record_of(emp), departments)
        if name != emp.display_name:
            emp.display_name = name
            changed += 1
    return changed


def _refresh_member(
    ctx: HandlerContext,
    policy: NamingPolicy,
    userid: str,
    source: str,
    *,
    departure_source: str,
    fields: dict[str, Any],
    lookup: Lookup | None = None,
) -> Employee | None:
    """Bring one member's row up to date with what WeCom said; None when we know nothing."""
    session = ctx.session
    lookup = lookup or ctx.fetched or Lookup(error=WeComError(-1, "not fetched"))
    if lookup.error is None:
        record = EmployeeRecord.from_user(lookup.found)
    else:
        exc = lookup.error
        if exc.errcode == USER_NOT_FOUND:
            # 60111 is also what a member outside the app's visibility gets: not proof of a
            # departure (a delete, status 5 or the nightly user/list_id is), so out of sight
            emp = employee_by_userid(session, userid)
            if emp is not None:
                hide(session, ctx.clock, ctx.events, emp, source, ctx.cause)
            return emp
        fallback = _record_from_payload(session, userid, fields)
        if fallback is None:
            if exc.errcode == OUTSIDE_VISIBILITY:
                log.info("member %s is outside the app's visibility; left as is", userid)
                return employee_by_userid(session, userid)
            raise exc
        record = fallback
    record = replace(record, display_name=_display_name(session, policy, record))
    return save_employee(
        session, ctx.clock, ctx.events, record, source=source,
        departure_source=departure_source, cause=ctx.cause,
    )  # fmt: skip


def _rename(ctx: HandlerContext, old: str, new: str, matched_by: str = "NewUserID") -> None:
    """Move a userid to its new value, keeping the surrogate id and everything attached."""
    session, now = ctx.session, ctx.clock.now()
    emp = employee_by_userid(session, old)
    if emp is None:
        return  # already renamed (a repeated event) or never seen: user_get creates it
    if employee_by_userid(session, new) is not None:
        log.warning("rename %s → %s: the new userid already exists; keeping both rows", old, new)
        return
    emp.userid, emp.updated_at = new, now
    for member in session.scalars(select(TagMember).where(TagMember.userid == old)):
        member.userid = new
    _note(ctx, emp.id, "userid_changed", SOURCE, {"old": old, "new": new, "by": matched_by})
    session.flush()
    ctx.events.publish(session, ctx.clock, EmployeeRenamed(old_userid=old, new_userid=new, at=now))


def _record_from_payload(
    session: Session, userid: str, fields: dict[str, Any]
) -> EmployeeRecord | None:
    """An old-style payload's fields laid over what the mirror has; None if too little."""
    if not set(fields) - ID_ONLY_FIELDS:
        return None  # a post-2022 payload: nothing to go by
    emp = employee_by_userid(session, userid)
    if emp is None and "Name" not in fields:
        return None
    base = record_of(emp) if emp is not None else EmployeeRecord(userid, "", "active")
    data = {
        "userid": userid,
        "name": fields.get("Name", base.name),
        "department": fields.get("Department", ",".join(map(str, base.departments))),
        "main_department": fields.get("MainDepartment", base.main_department),
        "is_leader_in_dept": fields.get("IsLeaderInDept", _leader_flags(base)),
        "direct_leader": _split(fields["DirectLeader"]) if "DirectLeader" in fields
        else list(base.direct_leaders),
        "position": fields.get("Position", base.position),
        "alias": fields.get("Alias", base.alias),
        "status": fields.get("Status", base.wecom_status or 1),
    }  # fmt: skip
    return EmployeeRecord.from_user(User.from_api(data))


def _leader_flags(record: EmployeeRecord) -> str:
    return ",".join("1" if d in record.leader_in else "0" for d in record.departments)


def _split(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def _display_name(session: Session, policy: NamingPolicy, record: EmployeeRecord) -> str:
    """The canonical name, reading only the main department and its ancestors."""
    chain: dict[int, DeptRecord] = {}
    dept_id = record.main_department
    for _ in range(64):
        dept = session.get(Department, dept_id) if dept_id else None
        if dept is None or dept.id in chain:
            break
        chain[dept.id] = DeptRecord(dept.id, dept.name, dept.parent_id, dept.order)
        dept_id = dept.parent_id
    return policy.display_name(record, chain)


def _all_departments(session: Session) -> dict[int, DeptRecord]:
    query = select(Department.id, Department.name, Department.parent_id, Department.order)
    return {
        row.id: DeptRecord(row.id, row.name, row.parent_id, row.order)
        for row in session.execute(query)
    }


def _note(
    ctx: HandlerContext, emp_id: int, kind: str, source: str, details: dict[str, Any]
) -> None:
    ctx.session.add(EmployeeHistory(employee_id=emp_id, kind=kind, at=ctx.clock.now(),
                                    source=source, details=details))  # fmt: skip
