"""Reads the groups feature needs from the database: the org snapshot and group lookups."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from wecom_app.errors import AppError
from wecom_app.groups.rules import OrgView, Person
from wecom_app.models import Department, Employee, EmployeeStatus, ManagedGroup, Tag, TagMember


class GroupNotFound(AppError):
    """No managed group has this chatid."""

    def __init__(self, chatid: str) -> None:
        super().__init__(f"没有受管群：{chatid}")
        self.chatid = chatid


def org_view(session: Session) -> OrgView:
    """Snapshot the mirror as plain data for rule evaluation."""
    view = OrgView()
    for dept_id, name, parent in session.execute(
        select(Department.id, Department.name, Department.parent_id).where(
            Department.deleted.is_(False)
        )
    ):
        view.departments[dept_id] = (name, parent)
    query = select(
        Employee.userid,
        Employee.status,
        Employee.departments,
        Employee.leader_in,
        Employee.display_name,
    )
    for userid, status, departments, leader_in, display_name in session.execute(query):
        view.people[userid] = Person(
            userid,
            status == EmployeeStatus.ACTIVE,
            tuple(departments or ()),
            tuple(leader_in or ()),
            display_name,
        )
    tag_users: dict[int, set[str]] = {}
    tag_depts: dict[int, set[int]] = {}
    for tag_id, tag_userid, tag_dept in session.execute(
        select(TagMember.tag_id, TagMember.userid, TagMember.department_id)
    ):
        if tag_userid:
            tag_users.setdefault(tag_id, set()).add(tag_userid)
        if tag_dept is not None:
            tag_depts.setdefault(tag_id, set()).add(tag_dept)
    for tag_id, name in session.execute(select(Tag.id, Tag.name)):
        view.tags[tag_id] = (
            name,
            frozenset(tag_users.get(tag_id, ())),
            frozenset(tag_depts.get(tag_id, ())),
        )
    return view


def group_by_chatid(session: Session, chatid: str, *, lock: bool = False) -> ManagedGroup:
    """The managed group with this chatid (row-locked on PostgreSQL if asked), or GroupNotFound."""
    query = select(ManagedGroup).where(ManagedGroup.chatid == chatid)
    if lock:
        query = query.with_for_update()
    group = session.scalars(query).first()
    if group is None:
        raise GroupNotFound(chatid)
    return group


def employee_ids(session: Session, userids: list[str | None]) -> list[int | None]:
    """Surrogate ids of employees by userid (None where unknown or not given)."""
    wanted = [u for u in userids if u]
    query = select(Employee.userid, Employee.id).where(Employee.userid.in_(wanted))
    found = {userid: id_ for userid, id_ in session.execute(query)}
    return [found.get(u) if u else None for u in userids]


def userids_of(session: Session, ids: list[int | None]) -> list[str | None]:
    """Userids of employees by surrogate id (None where unknown or not given)."""
    wanted = [i for i in ids if i is not None]
    query = select(Employee.id, Employee.userid).where(Employee.id.in_(wanted))
    found = {id_: userid for id_, userid in session.execute(query)}
    return [found.get(i) if i is not None else None for i in ids]


def display_names(session: Session, userids: list[str]) -> dict[str, str]:
    """Canonical 部门+姓名 names by userid."""
    query = select(Employee.userid, Employee.display_name).where(Employee.userid.in_(userids))
    return {u: n for u, n in session.execute(query)}
