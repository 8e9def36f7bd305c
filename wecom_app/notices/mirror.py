"""Read the org-chart mirror into the plain `Directory` that audience resolution works on."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from wecom_app.models import (
    Department,
    Employee,
    EmployeeStatus,
    GroupMember,
    ManagedGroup,
    Tag,
    TagMember,
)
from wecom_app.notices.audience import Directory, Person


def load_directory(session: Session) -> Directory:
    """Snapshot departments, employees and tags from the mirror (columns only, no ORM objects)."""
    parents: dict[int, int | None] = {}
    names: dict[int, str] = {}
    leaders: dict[int, list[str]] = {}
    for dept_id, parent, name, heads in session.execute(
        select(Department.id, Department.parent_id, Department.name, Department.leaders).where(
            Department.deleted.is_(False)
        )
    ):
        parents[dept_id], names[dept_id] = parent, name
        if heads:
            leaders[dept_id] = list(heads)
    people = [
        Person(
            id=emp_id,
            userid=userid,
            active=status == EmployeeStatus.ACTIVE,
            departments=tuple(departments or ()),
            main_department=main,
        )
        for emp_id, userid, status, departments, main in session.execute(
            select(
                Employee.id,
                Employee.userid,
                Employee.status,
                Employee.departments,
                Employee.main_department,
            ).order_by(Employee.id)
        )
    ]
    tag_users: dict[int, set[str]] = defaultdict(set)
    tag_departments: dict[int, set[int]] = defaultdict(set)
    for tag_id in session.scalars(select(Tag.id)):
        tag_users[tag_id] = set()
    for tag_id, userid, member_dept in session.execute(
        select(TagMember.tag_id, TagMember.userid, TagMember.department_id)
    ):
        if userid:
            tag_users[tag_id].add(userid)
        if member_dept:
            tag_departments[tag_id].add(member_dept)
        tag_users.setdefault(tag_id, set())
    groups: dict[str, tuple[str, set[str]]] = {
        chatid: (name, set())
        for chatid, name in session.execute(select(ManagedGroup.chatid, ManagedGroup.name))
    }
    for chatid, userid in session.execute(
        select(ManagedGroup.chatid, GroupMember.userid).join(
            GroupMember, GroupMember.group_id == ManagedGroup.id
        )
    ):
        groups[chatid][1].add(userid)
    return Directory(
        parents, names, people, dict(tag_users), dict(tag_departments), groups, leaders
    )
