"""Overdue and late acknowledgements as of any time, for HR and managers.

As of time T, a counted receipt (acknowledgement required, recipient not departed, card
delivered by T) is exactly one of: **on time** (acknowledged by T, not after its deadline),
**late** (acknowledged by T, after its deadline), **overdue** (deadline passed, not acknowledged
by T) or **pending** (deadline still ahead). Response times and lateness are counted in working
time, like the SLA itself: a notice sent at 21:50 and acknowledged at 07:40 took 20 minutes.
Every late or overdue receipt is a violation, priced by its notice type's policy; a cancelled
notice counts for nobody.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from wecom_app.groups.conduct import ledger
from wecom_app.models import (
    Department,
    Employee,
    Handover,
    Notice,
    NoticeStatus,
    Receipt,
    ReceiptState,
)
from wecom_app.sla.config import SlaConfig

ON_TIME, LATE, OVERDUE, PENDING = "on_time", "late", "overdue", "pending"


@dataclass
class Group:
    """Counts and response-time statistics for one notice, department or person."""

    key: str
    name: str
    recipients: int = 0
    on_time: int = 0
    late: int = 0
    overdue: int = 0
    pending: int = 0
    median_minutes: float | None = None
    p90_minutes: float | None = None
    responses: list[float] = field(default_factory=list, repr=False)

    def count(self, outcome: str, response: float | None) -> None:
        """Add one receipt's outcome (and response minutes, when acknowledged)."""
        self.recipients += 1
        setattr(self, outcome, getattr(self, outcome) + 1)
        if response is not None:
            self.responses.append(response)

    def finish(self) -> dict[str, Any]:
        """The group as plain data, with its statistics."""
        if self.responses:
            self.median_minutes = round(statistics.median(self.responses), 1)
            self.p90_minutes = round(percentile(self.responses, 0.9), 1)
        return {
            "key": self.key,
            "name": self.name,
            "recipients": self.recipients,
            "on_time": self.on_time,
            "late": self.late,
            "overdue": self.overdue,
            "pending": self.pending,
            "median_minutes": self.median_minutes,
            "p90_minutes": self.p90_minutes,
        }


@dataclass(frozen=True)
class Violation:
    """One late or overdue acknowledgement, as HR's ledger lists it."""

    userid: str
    name: str
    department: str
    notice_id: int
    notice_code: str | None
    notice_title: str
    notice_type: str
    sent_at: datetime
    due_at: datetime
    acknowledged_at: datetime | None
    status: str  # late | overdue (the answer); resolved_late | unresolved (a task's 已解决)
    late_minutes: float
    penalty: Decimal
    currency: str


VIOLATION_FIELDS = tuple(f.name for f in fields(Violation))


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty collection."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def overdue_report(
    session: Session,
    as_of: datetime,
    config: SlaConfig,
    notice_id: int | None = None,
    *,
    since: datetime | None = None,
    department_ids: Iterable[int] | None = None,
) -> dict[str, Any]:
    """Overdue and late acknowledgements by notice, department and person, and the ledger;
    `since` keeps receipts delivered from then on, `department_ids` those of these departments."""
    cal = config.calendar
    departments = {i: n for i, n in session.execute(select(Department.id, Department.name))}
    by_notice: dict[int, Group] = {}
    by_department: dict[int | None, Group] = {}
    by_person: dict[str, Group] = {}
    totals = Group("all", "全部")
    violations: list[Violation] = []
    tasks: dict[str, dict[str, Any]] = {}
    for r in _rows(session, as_of, notice_id, since, department_ids):
        outcome = _outcome(r.due_at, r.acknowledged_at, as_of)
        acked = r.acknowledged_at is not None and r.acknowledged_at <= as_of
        response = (
            _minutes(cal.working_time_between(r.sent_at, r.acknowledged_at)) if acked else None
        )
        dept_name = departments.get(r.department_id, "") if r.department_id else ""
        for group in (
            totals,
            _group(by_notice, r.notice_id, f"#{r.code or r.notice_id}", r.title),
            _group(by_department, r.department_id, str(r.department_id or ""), dept_name),
            _group(by_person, r.userid, r.userid, r.display_name),
        ):
            group.count(outcome, response)
        if outcome in (LATE, OVERDUE):
            end = r.acknowledged_at if outcome == LATE else as_of
            policy = config.policies.for_type(r.type)
            violations.append(
                Violation(
                    r.userid, r.display_name, dept_name, r.notice_id, r.code, r.title,
                    policy.label or r.type, r.sent_at, r.due_at,
                    r.acknowledged_at if acked else None, outcome,
                    _minutes(cal.working_time_between(r.due_at, end)),
                    policy.penalty, policy.currency,
                )
            )  # fmt: skip
        if r.resolve_by is not None:
            _count_task(tasks, r, dept_name, outcome, as_of)
        unresolved = _unresolved(r, as_of)
        if unresolved is not None:
            status_, end = unresolved
            policy = config.policies.for_type(r.type)
            violations.append(
                Violation(
                    r.userid, r.display_name, dept_name, r.notice_id, r.code, r.title,
                    policy.label or r.type, r.sent_at, r.resolve_by,
                    r.resolved_at if status_ == RESOLVED_LATE else None, status_,
                    _minutes(cal.working_time_between(r.resolve_by, end)),
                    policy.penalty, policy.currency,
                )
            )  # fmt: skip
    passed_on = _handovers(session, as_of, notice_id, since, department_ids)
    people_passing: dict[str, dict[str, Any]] = {}
    for h in passed_on:
        policy = config.policies.for_type(h.type)
        dept = departments.get(h.main_department, "")
        person = people_passing.setdefault(h.userid, {"userid": h.userid, "name": h.display_name,
                                                      "department": dept, "handovers": 0,
                                                      "shirking": 0})  # fmt: skip
        person["handovers"] += 1
        if h.shirking:
            person["shirking"] += 1
            violations.append(
                Violation(
                    h.userid, h.display_name, dept,
                    h.notice_id, h.code, h.title, policy.label or h.type, h.at, h.at, None,
                    SHIRKING, 0.0, policy.shirking_penalty, policy.currency,
                )
            )  # fmt: skip
    violations.sort(key=lambda v: (v.due_at, v.notice_id, v.department, v.userid))
    people = [g for g in by_person.values() if g.late or g.overdue]
    conduct_rows = _conduct(session, as_of, since, department_ids, departments)
    fined = [
        Fine(c["name"], c["department"], Decimal(c["penalty"]))
        for c in conduct_rows
        if not c["withdrawn_at"] and Decimal(c["penalty"]) > 0
    ]
    charged: list[Violation | Fine] = [*violations, *fined]
    return {
        "as_of": as_of.isoformat(),
        "since": since.isoformat() if since else None,
        "timezone": cal.timezone,
        "totals": totals.finish(),
        "by_notice": [g.finish() for g in by_notice.values()],
        "by_department": [g.finish() for g in sorted(by_department.values(), key=_worst)],
        "by_person": [g.finish() for g in sorted(people, key=_worst)],
        "violations": [_violation_dict(v) for v in violations],
        "tasks": sorted(tasks.values(), key=lambda t: (t["resolved"] - t["tasks"], t["userid"])),
        "handovers": sorted(
            people_passing.values(), key=lambda p: (-p["shirking"], -p["handovers"])
        ),
        "group_violations": conduct_rows,
        "fines": fines(charged),
        "penalty_total": str(sum((v.penalty for v in charged), Decimal(0))),
    }


TASK_FIELDS = ("tasks", "answered", "on_time", "responded", "resolved", "resolved_on_time")


def _count_task(
    tasks: dict[str, dict[str, Any]], r: Any, department: str, outcome: str, as_of: datetime
) -> None:
    """One person's tasks: given, answered (on time), responded, resolved (on time); a task
    passed on counts as answered, and as resolved when its new owner resolves it is theirs."""
    person = tasks.setdefault(r.userid, {"userid": r.userid, "name": r.display_name,
                                         "department": department,
                                         **dict.fromkeys(TASK_FIELDS, 0)})  # fmt: skip
    person["tasks"] += 1
    if outcome in (ON_TIME, LATE):
        person["answered"] += 1
        person["on_time"] += outcome == ON_TIME
    if r.responded_at is not None and r.responded_at <= as_of:
        person["responded"] += 1
    if r.resolved_at is not None and r.resolved_at <= as_of:
        person["resolved"] += 1
        person["resolved_on_time"] += r.resolved_at <= r.resolve_by


@dataclass(frozen=True)
class Fine:
    """A penalty outside the notice ledger: a breach of a group's rules (groups.conduct)."""

    name: str
    department: str
    penalty: Decimal


def _conduct(
    session: Session, as_of: datetime, since: datetime | None,
    department_ids: Iterable[int] | None, departments: dict[int, str],
) -> list[dict[str, Any]]:  # fmt: skip
    """The group conduct ledger of the period, each entry with the person's department."""
    rows = ledger(session, since=since, until=as_of)
    mains = dict(session.execute(select(Employee.userid, Employee.main_department)).all())
    wanted = set(department_ids) if department_ids is not None else None
    found = []
    for row in rows:
        main = mains.get(row["userid"])
        if wanted is not None and main not in wanted:
            continue
        found.append({**row, "department": departments.get(main, "") if main else ""})
    return found


def fines(violations: Iterable[Violation | Fine]) -> dict[str, list[list[Any]]]:
    """Penalty totals per person and per department, largest first: [name, 元, violations]."""
    people: dict[str, list[Any]] = {}
    departments: dict[str, list[Any]] = {}
    for v in violations:
        where = v.department or "（无部门）"
        for bucket in (people.setdefault(v.name, [Decimal(0), 0]),
                       departments.setdefault(where, [Decimal(0), 0])):  # fmt: skip
            bucket[0] += v.penalty
            bucket[1] += 1

    def ranked(table: dict[str, list[Any]]) -> list[list[Any]]:
        order = sorted(table.items(), key=lambda item: (-item[1][0], -item[1][1]))
        return [[name, str(amount), count] for name, (amount, count) in order]

    return {"people": ranked(people), "departments": ranked(departments)}


def _rows(
    session: Session,
    as_of: datetime,
    notice_id: int | None,
    since: datetime | None = None,
    department_ids: Iterable[int] | None = None,
) -> Any:
    """Counted receipts delivered by `as_of`, with their notice and person."""
    query = (
        select(
            Receipt.notice_id,
            Receipt.department_id,
            Receipt.sent_at,
            Receipt.due_at,
            Receipt.acknowledged_at,
            Receipt.resolved_at,
            Receipt.handed_over_at,
            Receipt.responded_at,
            Notice.resolve_by,
            Notice.code,
            Notice.title,
            Notice.type,
            Employee.userid,
            Employee.display_name,
        )
        .join(Notice, Notice.id == Receipt.notice_id)
        .join(Employee, Employee.id == Receipt.employee_id)
        .where(
            Notice.require_ack.is_(True),
            Notice.status != NoticeStatus.CANCELLED,  # a cancelled notice charges nobody
            Receipt.excluded.is_(False),
            Receipt.state.in_([ReceiptState.SENT, ReceiptState.ACKNOWLEDGED]),
            Receipt.sent_at <= as_of,
            Receipt.due_at.is_not(None),
        )
        .order_by(Receipt.notice_id, Receipt.id)
    )
    if notice_id is not None:
        query = query.where(Receipt.notice_id == notice_id)
    if since is not None:
        query = query.where(Receipt.sent_at >= since)
    if department_ids is not None:
        query = query.where(Receipt.department_id.in_(list(department_ids)))
    return session.execute(query.execution_options(yield_per=5000))


RESOLVED_LATE, UNRESOLVED, SHIRKING = "resolved_late", "unresolved", "shirking"


def _handovers(
    session: Session,
    as_of: datetime,
    notice_id: int | None,
    since: datetime | None,
    department_ids: Iterable[int] | None,
) -> list[Any]:
    """Hand-overs made by `as_of`, with the giver and the task."""
    query = (
        select(Handover.at, Handover.shirking, Handover.notice_id, Notice.code, Notice.title,
               Notice.type, Employee.userid, Employee.display_name, Employee.main_department)
        .join(Notice, Notice.id == Handover.notice_id)
        .join(Employee, Employee.id == Handover.from_employee_id)
        .where(Handover.at <= as_of, Notice.status != NoticeStatus.CANCELLED)
        .order_by(Handover.id)
    )  # fmt: skip
    if notice_id is not None:
        query = query.where(Handover.notice_id == notice_id)
    if since is not None:
        query = query.where(Handover.at >= since)
    if department_ids is not None:
        query = query.where(Employee.main_department.in_(list(department_ids)))
    return list(session.execute(query))


def _unresolved(r: Any, as_of: datetime) -> tuple[str, datetime] | None:
    """A task not 已解决 by its resolve_by (as of `as_of`): its status and when it ended."""
    if r.resolve_by is None or r.resolve_by >= as_of:
        return None
    if r.handed_over_at is not None and r.handed_over_at <= as_of:
        return None  # passed on: the new owner resolves it
    if r.resolved_at is not None and r.resolved_at <= as_of:
        return (RESOLVED_LATE, r.resolved_at) if r.resolved_at > r.resolve_by else None
    return UNRESOLVED, as_of


def _outcome(due: datetime, acked: datetime | None, as_of: datetime) -> str:
    if acked is not None and acked <= as_of:
        return LATE if acked > due else ON_TIME
    return OVERDUE if due < as_of else PENDING


def _group(groups: dict[Any, Group], ident: Any, key: str, name: str) -> Group:
    group = groups.get(ident)
    if group is None:
        group = groups[ident] = Group(key, name)
    return group


def _worst(group: Group) -> tuple[int, int, str]:
    return (-group.overdue, -group.late, group.key)


def _minutes(delta: Any) -> float:
    return round(delta.total_seconds() / 60, 1)


def _violation_dict(v: Violation) -> dict[str, Any]:
    data = {f: getattr(v, f) for f in VIOLATION_FIELDS}
    for key in ("sent_at", "due_at", "acknowledged_at"):
        data[key] = data[key].isoformat() if data[key] else None
    data["penalty"] = str(v.penalty)
    return data
