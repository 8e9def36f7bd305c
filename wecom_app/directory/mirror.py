"""Reading and writing the mirror one employee at a time, with history and departure events.

Full syncs write in bulk (`sync.py`) but share `history_kinds` and `announce_departure` with the
incremental path here, so a departure is recorded and announced the same way from every source.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select
from sqlalchemy.orm import Session

from wecom_app.clock import Clock
from wecom_app.directory.diff import DeptRecord, EmployeeRecord
from wecom_app.domain_events import (
    DomainEvents,
    EmployeeChanged,
    EmployeeDeparted,
    EmployeeOutOfSight,
)
from wecom_app.models import Department, DepartmentMember, Employee, EmployeeHistory
from wecom_app.models import EmployeeStatus as Status

_STATUS_KINDS = {
    Status.ACTIVE: "reactivated",
    Status.DISABLED: "disabled",
    Status.NOT_ACTIVATED: "not_activated",
    Status.DEPARTED: "left",
}


def record_of(emp: Employee | Row[Any]) -> EmployeeRecord:
    """The plain record of an employee, from its ORM object or a row of its columns."""
    return EmployeeRecord(
        userid=emp.userid,
        name=emp.name,
        status=emp.status,
        wecom_status=emp.wecom_status,
        alias=emp.alias,
        position=emp.position,
        main_department=emp.main_department,
        departments=tuple(emp.departments or ()),
        leader_in=tuple(emp.leader_in or ()),
        direct_leaders=tuple(emp.direct_leaders or ()),
        display_name=emp.display_name,
    )


def dept_record_of(dept: Department) -> DeptRecord:
    """The plain record of a department row."""
    return DeptRecord(dept.id, dept.name, dept.parent_id, dept.order, tuple(dept.leaders or ()))


def load_departments(session: Session) -> dict[int, DeptRecord]:
    """Every live department as plain records."""
    query = select(Department).where(Department.deleted.is_(False))
    return {d.id: dept_record_of(d) for d in session.scalars(query)}


def history_kinds(old: EmployeeRecord, new: EmployeeRecord) -> list[str]:
    """Name what changed between two records of one person, in history's vocabulary."""
    fields = set(old.changed_fields(new))
    kinds = []
    if "userid" in fields:
        kinds.append("userid_changed")
    if "name" in fields:
        kinds.append("renamed")
    if fields & {"departments", "main_department"}:
        kinds.append("moved")
    if "status" in fields:
        kinds.append(_STATUS_KINDS.get(Status(new.status), "status_changed"))
    if not kinds and fields - {"display_name"}:
        kinds.append("updated")
    return kinds


def row_values(record: EmployeeRecord) -> dict[str, Any]:
    """Column values of an employee row for a record (without ids and times)."""
    return {
        "userid": record.userid,
        "name": record.name,
        "display_name": record.display_name,
        "alias": record.alias,
        "position": record.position,
        "main_department": record.main_department,
        "departments": list(record.departments),
        "leader_in": list(record.leader_in),
        "direct_leaders": list(record.direct_leaders),
        "status": record.status,
        "wecom_status": record.wecom_status,
    }


def membership_rows(employee_id: int, record: EmployeeRecord) -> list[dict[str, Any]]:
    """One department_members row per department the record sits in."""
    return [
        {"employee_id": employee_id, "department_id": d, "is_leader": d in record.leader_in}
        for d in dict.fromkeys(record.departments)
    ]


def announce_departure(
    session: Session,
    clock: Clock,
    events: DomainEvents,
    userid: str,
    at: datetime,
    source: str,
    cause: str | None,
) -> None:
    """Tell the rest of the app that someone left (call once per departure)."""
    departed = EmployeeDeparted(userid=userid, at=at, source=source, cause=cause)
    events.publish(session, clock, departed)


def employee_by_userid(session: Session, userid: str) -> Employee | None:
    """The employee row with this WeCom userid."""
    return session.scalars(select(Employee).where(Employee.userid == userid)).one_or_none()


def save_employee(
    session: Session,
    clock: Clock,
    events: DomainEvents,
    record: EmployeeRecord,
    *,
    source: str,
    departure_source: str | None = None,
    cause: str | None = None,
) -> Employee:
    """Create or update one employee from a record, writing history and announcing departures."""
    now = clock.now()
    emp = employee_by_userid(session, record.userid)
    if emp is None:
        emp = Employee(joined_at=now, updated_at=now, **row_values(record))
        session.add(emp)
        session.flush()
        _history(session, emp.id, "joined", now, source, {"userid": record.userid})
        _set_memberships(session, emp.id, record)
        if record.status == Status.ACTIVE:
            events.publish(session, clock, EmployeeChanged(record.userid, now, ("joined",)))
        if record.status == Status.DEPARTED:
            _depart(session, clock, events, emp, departure_source or source, cause, now,
                    announce=False)  # fmt: skip
        return emp
    old = record_of(emp)
    kinds = history_kinds(old, record)
    if not old.changed_fields(record):
        return emp
    values = row_values(record)
    leaving = record.status == Status.DEPARTED and old.status != Status.DEPARTED
    if leaving:
        values["status"] = old.status  # _depart sets it along with time and source
    for key, value in values.items():
        setattr(emp, key, value)
    emp.updated_at = now
    if record.status != Status.DEPARTED and old.status == Status.DEPARTED:
        emp.departed_at, emp.departed_source = None, None
    details = {"changed": old.changed_fields(record)}
    for kind in kinds:
        if kind != "left":
            _history(session, emp.id, kind, now, source, details)
    if set(details["changed"]) & {"departments", "main_department", "leader_in"}:
        _set_memberships(session, emp.id, record)
    if leaving:
        _depart(session, clock, events, emp, departure_source or source, cause, now)
        return emp
    what = tuple(label for label, keys in GROUP_RELEVANT if set(details["changed"]) & keys)
    if what:
        events.publish(session, clock, EmployeeChanged(emp.userid, now, what))
    return emp


# Changes that can change whom a managed group's rules take in
GROUP_RELEVANT = (
    ("moved", {"departments", "main_department"}),
    ("leader", {"leader_in"}),
    ("status", {"status"}),
)


def depart(
    session: Session,
    clock: Clock,
    events: DomainEvents,
    emp: Employee,
    source: str,
    cause: str | None = None,
) -> bool:
    """Mark an employee departed and announce it; False when they had already left."""
    if emp.status == Status.DEPARTED:
        return False
    _depart(session, clock, events, emp, source, cause, clock.now())
    return True


def hide(
    session: Session,
    clock: Clock,
    events: DomainEvents,
    emp: Employee,
    source: str,
    cause: str | None = None,
) -> bool:
    """Mark an employee out of the app's sight and say so (no departure); False when they
    already were, or have left."""
    if emp.status in (Status.DEPARTED, Status.OUT_OF_SIGHT):
        return False
    now = clock.now()
    emp.status, emp.updated_at = Status.OUT_OF_SIGHT, now
    _history(session, emp.id, "out_of_sight", now, source, {"cause": cause} if cause else {})
    events.publish(session, clock, EmployeeOutOfSight(emp.userid, now, source, cause))
    return True


def _depart(
    session: Session,
    clock: Clock,
    events: DomainEvents,
    emp: Employee,
    source: str,
    cause: str | None,
    now: datetime,
    *,
    announce: bool = True,
) -> None:
    emp.status, emp.departed_at, emp.departed_source = Status.DEPARTED, now, source
    emp.updated_at = now
    _history(session, emp.id, "left", now, source, {"cause": cause} if cause else {})
    if announce:
        announce_departure(session, clock, events, emp.userid, now, source, cause)


def _history(
    session: Session, employee_id: int, kind: str, at: datetime, source: str, details: Mapping
) -> None:
    session.add(
        EmployeeHistory(
            employee_id=employee_id, kind=kind, at=at, source=source, details=dict(details)
        )
    )


def _set_memberships(session: Session, employee_id: int, record: EmployeeRecord) -> None:
    session.execute(delete(DepartmentMember).where(DepartmentMember.employee_id == employee_id))
    rows = membership_rows(employee_id, record)
    if rows:
        session.execute(insert(DepartmentMember), rows)
