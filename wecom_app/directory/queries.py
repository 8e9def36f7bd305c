"""Reads over the mirror for the API, the CLI and other features (groups, notices, SLAs)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from wecom_app.directory.mirror import employee_by_userid
from wecom_app.models import Department, DepartmentMember, Employee, EmployeeStatus

__all__ = [
    "active_employees_in",
    "department_heads_of",
    "department_subtree_ids",
    "employee_by_userid",
    "employee_to_dict",
    "leaders_of",
    "list_departments",
    "list_employees",
]


def department_subtree_ids(session: Session, department_ids: int | Iterable[int]) -> set[int]:
    """The given departments and every live department below them."""
    roots = {department_ids} if isinstance(department_ids, int) else set(department_ids)
    children: dict[int, list[int]] = {}
    query = select(Department.id, Department.parent_id).where(Department.deleted.is_(False))
    for dept_id, parent_id in session.execute(query):
        children.setdefault(parent_id or 0, []).append(dept_id)
    found, stack = set(roots), list(roots)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def active_employees_in(
    session: Session, department_ids: Iterable[int], include_children: bool = True
) -> list[Employee]:
    """Active employees sitting in any of the departments (and below them, by default)."""
    ids = (
        department_subtree_ids(session, department_ids) if include_children else set(department_ids)
    )
    if not ids:
        return []
    member_of = select(DepartmentMember.employee_id).where(DepartmentMember.department_id.in_(ids))
    query = (
        select(Employee)
        .where(Employee.status == EmployeeStatus.ACTIVE, Employee.id.in_(member_of))
        .order_by(Employee.id)
    )
    return list(session.scalars(query))


def list_employees(
    session: Session,
    *,
    status: str | None = None,
    department: int | None = None,
    include_children: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> list[Employee]:
    """Employees filtered by status and department (optionally its subtree), by id."""
    query = select(Employee).order_by(Employee.id)
    if status:
        query = query.where(Employee.status == EmployeeStatus(status))
    if department is not None:
        ids = department_subtree_ids(session, department) if include_children else {department}
        member_of = select(DepartmentMember.employee_id).where(
            DepartmentMember.department_id.in_(ids)
        )
        query = query.where(Employee.id.in_(member_of))
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query.offset(offset)))


def list_departments(session: Session, include_deleted: bool = False) -> list[Department]:
    """Departments ordered by parent and WeCom's order (higher first, as WeCom sorts)."""
    query = select(Department).order_by(
        Department.parent_id, Department.order.desc(), Department.id
    )
    if not include_deleted:
        query = query.where(Department.deleted.is_(False))
    return list(session.scalars(query))


def leaders_of(employee: Employee, session: Session | None = None) -> list[Employee]:
    """Whom to escalate to: active direct leaders, else the heads of the main department."""
    session = session or object_session(employee)
    if session is None:
        raise ValueError("employee is not attached to a session; pass one")
    if employee.direct_leaders:
        query = select(Employee).where(
            Employee.userid.in_(employee.direct_leaders), Employee.status == EmployeeStatus.ACTIVE
        )
        found = list(session.scalars(query))
        if found:
            return found
    return department_heads_of(session, employee)


def department_heads_of(session: Session, employee: Employee) -> list[Employee]:
    """Active heads of the employee's main department, going up while they head it themselves."""
    dept = session.get(Department, employee.main_department) if employee.main_department else None
    for _ in range(64):
        if dept is None:
            return []
        heads = [u for u in dept.leaders or () if u != employee.userid]
        if heads:
            query = select(Employee).where(
                Employee.userid.in_(heads), Employee.status == EmployeeStatus.ACTIVE
            )
            found = list(session.scalars(query))
            if found:
                return found
        dept = session.get(Department, dept.parent_id) if dept.parent_id else None
    return []


def employee_to_dict(emp: Employee) -> dict[str, Any]:
    """An employee as the API and CLI show them."""
    return {
        "id": emp.id,
        "userid": emp.userid,
        "name": emp.name,
        "display_name": emp.display_name,
        "alias": emp.alias,
        "position": emp.position,
        "status": emp.status,
        "main_department": emp.main_department,
        "departments": emp.departments,
        "leader_in": emp.leader_in,
        "direct_leaders": emp.direct_leaders,
        "joined_at": emp.joined_at,
        "departed_at": emp.departed_at,
        "departed_source": emp.departed_source,
    }


def department_to_dict(dept: Department) -> dict[str, Any]:
    """A department as the API and CLI show it."""
    return {
        "id": dept.id,
        "name": dept.name,
        "parent_id": dept.parent_id,
        "order": dept.order,
        "leaders": dept.leaders,
        "deleted": dept.deleted,
    }
