"""Applying a full sync's diff with bulk statements (executemany), not row-by-row ORM objects."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from wecom_app.clock import Clock
from wecom_app.directory.diff import DeptRecord, DirectoryDiff, EmployeeRecord, MirrorEmployee
from wecom_app.directory.mirror import (
    announce_departure,
    history_kinds,
    membership_rows,
    row_values,
)
from wecom_app.domain_events import DomainEvents, EmployeeRenamed
from wecom_app.models import Base, Department, DepartmentMember, Employee
from wecom_app.models import EmployeeStatus as Status

T = TypeVar("T")

SOURCE = "full_sync"
# Core tables, so inserts skip the ORM's per-row bulk bookkeeping.
TABLES = Base.metadata.tables
CHUNK = 2000

EMPLOYEE_COLUMNS = (
    Employee.id,
    Employee.userid,
    Employee.name,
    Employee.status,
    Employee.wecom_status,
    Employee.alias,
    Employee.position,
    Employee.main_department,
    Employee.departments,
    Employee.leader_in,
    Employee.direct_leaders,
    Employee.display_name,
    Employee.updated_at,
)


def apply(session: Session, clock: Clock, events: DomainEvents, changes: DirectoryDiff) -> None:
    """Write a diff to the mirror inside the caller's transaction."""
    now = clock.now()
    _apply_departments(session, changes, now)
    history: list[dict[str, Any]] = []
    departures: list[tuple[str, str]] = []
    _insert_added(session, changes.added, now, history)
    _update_changed(session, changes.changed + changes.renamed, now, history, departures)
    _mark_vanished(session, changes.departed, now, history, departures)
    for rows in _chunks(history):
        session.execute(insert(TABLES["employee_history"]), rows)
    for userid, source in departures:
        announce_departure(session, clock, events, userid, now, source, None)
    for old, new in changes.renamed:
        renamed = EmployeeRenamed(old_userid=old.record.userid, new_userid=new.userid, at=now)
        events.publish(session, clock, renamed)


def _dept_row(record: DeptRecord, now: datetime) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "parent_id": record.parent_id,
        "order": record.order,
        "leaders": list(record.leaders),
        "deleted": False,
        "updated_at": now,
    }


def _apply_departments(session: Session, changes: DirectoryDiff, now: datetime) -> None:
    if changes.departments_added:
        rows = [_dept_row(r, now) for r in changes.departments_added]
        for dept_rows in _chunks(rows):
            session.execute(insert(Department), dept_rows)
    if changes.departments_changed:
        session.execute(
            update(Department), [_dept_row(r, now) for r in changes.departments_changed]
        )
    for ids in _chunks(changes.departments_removed):
        session.execute(
            update(Department)
            .where(Department.id.in_(ids))
            .values(deleted=True, updated_at=now)
            .execution_options(synchronize_session=False)
        )


def _insert_added(
    session: Session, added: list[EmployeeRecord], now: datetime, history: list[dict[str, Any]]
) -> None:
    """Insert new employees, their memberships and a `joined` history row each.

    Plain executemany without RETURNING and with one key set for every row, so both drivers
    batch it into multi-row INSERTs; the new ids are read back in one query afterwards.
    """
    rows = []
    for record in added:
        gone = record.status == Status.DEPARTED  # seen first already gone: kept, not announced
        rows.append(
            row_values(record)
            | {
                "joined_at": now,
                "updated_at": now,
                "departed_at": now if gone else None,
                "departed_source": "status" if gone else None,
            }
        )
    for chunk in _chunks(rows):
        session.execute(insert(TABLES["employees"]), chunk)
    if not added:
        return
    new = {r.userid for r in added}
    ids = {
        userid: emp_id
        for emp_id, userid in session.execute(select(Employee.id, Employee.userid))
        if userid in new
    }
    members: list[dict[str, Any]] = []
    for record in added:
        emp_id = ids[record.userid]
        members.extend(membership_rows(emp_id, record))
        history.append(_history(emp_id, "joined", now, {"userid": record.userid}))
    for member_rows in _chunks(members):
        session.execute(insert(TABLES["department_members"]), member_rows)


def _update_changed(
    session: Session,
    changed: list[tuple[MirrorEmployee, EmployeeRecord]],
    now: datetime,
    history: list[dict[str, Any]],
    departures: list[tuple[str, str]],
) -> None:
    """Update changed employees by primary key; redo memberships of those who moved."""
    updates, moved, members = [], [], []
    for current, new in changed:
        old = current.record
        values = {"id": current.id, **row_values(new), "updated_at": now}
        if new.status == Status.DEPARTED and old.status != Status.DEPARTED:
            values |= {"departed_at": now, "departed_source": "status"}
            departures.append((new.userid, "status"))
        elif old.status == Status.DEPARTED and new.status != Status.DEPARTED:
            values |= {"departed_at": None, "departed_source": None}
        updates.append(values)
        fields = old.changed_fields(new)
        details: dict[str, Any] = {"changed": fields}
        if "userid" in fields:
            details |= {"old": old.userid, "new": new.userid, "by": "full_sync_pairing"}
        for kind in history_kinds(old, new):
            history.append(_history(current.id, kind, now, details))
        if {"departments", "main_department", "leader_in"} & set(fields):
            moved.append(current.id)
            members.extend(membership_rows(current.id, new))
    for chunk in _chunks(updates):
        session.execute(update(Employee), chunk)
    for ids in _chunks(moved):
        session.execute(
            delete(DepartmentMember)
            .where(DepartmentMember.employee_id.in_(ids))
            .execution_options(synchronize_session=False)
        )
    for rows in _chunks(members):
        session.execute(insert(TABLES["department_members"]), rows)


def _mark_vanished(
    session: Session,
    departed: list[MirrorEmployee],
    now: datetime,
    history: list[dict[str, Any]],
    departures: list[tuple[str, str]],
) -> None:
    """Employees no longer in the directory have left."""
    for chunk in _chunks(departed):
        session.execute(
            update(Employee)
            .where(Employee.id.in_([m.id for m in chunk]))
            .values(status=Status.DEPARTED, departed_at=now, departed_source=SOURCE, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    for member in departed:
        history.append(_history(member.id, "left", now, {"reason": "not in directory"}))
        departures.append((member.record.userid, SOURCE))


def _history(emp_id: int, kind: str, at: datetime, details: dict[str, Any]) -> dict[str, Any]:
    return {"employee_id": emp_id, "kind": kind, "at": at, "source": SOURCE, "details": details}


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
