"""What the console's pages read, always narrowed to what the viewer may see (roles.Viewer)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, cast, exists, func, or_, select, text
from sqlalchemy.orm import Session

from wecom_app.clock import BEIJING
from wecom_app.console.roles import Viewer
from wecom_app.models import (
    Department,
    Employee,
    EmployeeStatus,
    GroupAudit,
    Hold,
    InboxEvent,
    ManagedGroup,
    Notice,
    NoticeDepartment,
    NoticeStatus,
    OutboxMessage,
    Receipt,
    ReceiptState,
    Tag,
)
from wecom_app.models.notices import OPEN_RECEIPT
from wecom_app.notices import status

PAGE = 50
BIG_NOTICE = 20_000  # counting more receipts than this is the worker's job (snapshots)
DEPARTMENT_ROWS = 50  # a notice's page lists the departments with most still to answer
RECENT = timedelta(days=30)  # "overdue now" looks this far back; 报表 keeps the rest


def beijing(at: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
    """A time as people here read it."""
    return at.astimezone(BEIJING).strftime(fmt) if at else ""


def _open_receipts() -> Any:
    """Receipts still waiting for an answer, written as the partial index's own predicate
    (constants, not parameters), so the database can use it."""
    return and_(
        text(
            OPEN_RECEIPT.replace("state", "notice_receipts.state").replace(
                "excluded", "notice_receipts.excluded"
            )
        ),
        Notice.status == NoticeStatus.ACTIVE,
        Notice.require_ack.is_(True),
    )


def my_pending(session: Session, viewer: Viewer) -> list[tuple[Notice, Receipt]]:
    """The viewer's notices still waiting for their answer, oldest deadline first."""
    query = (
        select(Notice, Receipt)
        .join(Receipt, Receipt.notice_id == Notice.id)
        .where(Receipt.employee_id == viewer.employee_id, _open_receipts())
        .order_by(Receipt.due_at.is_(None), Receipt.due_at, Notice.id)
        .limit(200)
    )
    return [(n, r) for n, r in session.execute(query).all()]


def my_unresolved(session: Session, viewer: Viewer) -> list[tuple[Notice, Receipt]]:
    """The viewer's tasks answered (收到 or a response) but not yet 已解决, soonest first."""
    query = (
        select(Notice, Receipt)
        .join(Receipt, Receipt.notice_id == Notice.id)
        .where(
            Receipt.employee_id == viewer.employee_id,
            Receipt.state == ReceiptState.ACKNOWLEDGED,
            Receipt.resolved_at.is_(None),
            Receipt.handed_over_at.is_(None),
            Receipt.excluded.is_(False),
            Notice.resolve_by.is_not(None),
            Notice.status == NoticeStatus.ACTIVE,
        )
        .order_by(Notice.resolve_by, Notice.id)
        .limit(200)
    )
    return [(n, r) for n, r in session.execute(query).all()]


def my_history(session: Session, viewer: Viewer, limit: int = 30) -> list[tuple[Notice, Receipt]]:
    """The viewer's latest notices, answered or not."""
    query = (
        select(Notice, Receipt)
        .join(Receipt, Receipt.notice_id == Notice.id)
        .where(Receipt.employee_id == viewer.employee_id)
        .order_by(Notice.id.desc())
        .limit(limit)
    )
    return [(n, r) for n, r in session.execute(query).all()]


def team_overdue(session: Session, viewer: Viewer, now: datetime, limit: int = 100) -> list[Any]:
    """People in the viewer's departments past their deadline without an answer (on the last
    RECENT days' notices)."""
    if not viewer.sees_others:
        return []
    query = (
        select(Notice.code, Notice.title, Employee.display_name, Receipt.due_at, Department.name)
        .join(Receipt, Receipt.notice_id == Notice.id)
        .join(Employee, Employee.id == Receipt.employee_id)
        .outerjoin(Department, Department.id == Receipt.department_id)
        .where(_open_receipts(), Receipt.due_at < now, Receipt.due_at >= now - RECENT)
        .order_by(Receipt.due_at)
        .limit(limit)
    )
    if viewer.scope is not None:
        query = query.where(Receipt.department_id.in_(viewer.scope))
    return list(session.execute(query).all())


def notices_for(
    session: Session,
    viewer: Viewer,
    *,
    kind: str | None = None,
    state: str | None = None,
    text: str | None = None,
    offset: int = 0,
) -> list[Notice]:
    """The notices the viewer may open, newest first, filtered."""
    query = select(Notice).order_by(Notice.id.desc())
    if viewer.scope is not None:
        if viewer.scope:
            mine = exists().where(
                NoticeDepartment.notice_id == Notice.id,
                NoticeDepartment.department_id.in_(viewer.scope),
            )
        else:
            mine = exists().where(
                Receipt.notice_id == Notice.id, Receipt.employee_id == viewer.employee_id
            )
        query = query.where(or_(Notice.sender == viewer.userid, mine))
    if kind:
        query = query.where(Notice.type == kind)
    if state:
        query = query.where(Notice.status == state)
    if text:
        query = query.where(Notice.title.contains(text, autoescape=True))
    return list(session.scalars(query.limit(PAGE).offset(offset)))


def may_open(session: Session, viewer: Viewer, notice: Notice) -> bool:
    """Whether the viewer may open this notice's page."""
    if viewer.scope is None or notice.sender == viewer.userid:
        return True
    if not viewer.scope:
        return False  # an employee's notices are on 我的
    query = select(NoticeDepartment.notice_id).where(
        NoticeDepartment.notice_id == notice.id, NoticeDepartment.department_id.in_(viewer.scope)
    )
    return session.scalar(query.limit(1)) is not None


def may_manage(viewer: Viewer, notice: Notice) -> bool:
    """Whether the viewer may chase or cancel this notice."""
    return viewer.admin or notice.sender == viewer.userid


def notice_page(
    session: Session,
    viewer: Viewer,
    notice: Notice,
    now: datetime,
    offset: int = 0,
    counted: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A notice's progress by department (`counted`, when a snapshot has it) and its receipts,
    within the viewer's scope."""
    shown = counted or progress(session, notice, now, scope_for(viewer, notice))
    rows = session.execute(_receipts(viewer, notice).limit(PAGE * 4).offset(offset)).all()
    return {**shown, "receipts": rows, "more": len(rows) == PAGE * 4}


def scope_for(viewer: Viewer, notice: Notice) -> frozenset[int] | None:
    """Whose receipts of this notice the viewer sees: all (its sender, administrators), or
    those of their departments."""
    return None if notice.sender == viewer.userid else viewer.scope


def progress(
    session: Session, notice: Notice, now: datetime, scope: Iterable[int] | None
) -> dict[str, Any]:
    """Counts and the departments with most still to answer, for everyone or some departments
    (plain data: a snapshot keeps it as it is)."""
    data = status.summary(session, notice, now, with_receipts=False)
    departments = data["by_department"]
    counts = data["counts"]
    if scope is not None:
        inside = set(scope)
        departments = [d for d in departments if d["department_id"] in inside]
        totals: Counter[str] = Counter()
        for d in departments:
            for key in ("counted", "acknowledged", "pending", "overdue", "excluded"):
                totals[key] += d[key]
        counts = dict(totals)
    departments.sort(key=lambda d: (-d["pending"], -d["counted"]))
    return {
        "counts": counts,
        "by_department": departments[:DEPARTMENT_ROWS],
        "more_departments": max(0, len(departments) - DEPARTMENT_ROWS),
    }


def export_rows(session: Session, viewer: Viewer, notice: Notice) -> list[Any]:
    """Every receipt of a notice the viewer may see, for the CSV download."""
    return list(session.execute(_receipts(viewer, notice)).all())


def _receipts(viewer: Viewer, notice: Notice) -> Any:
    """A notice's receipts with names and departments: all of them for its sender and
    administrators, those of the viewer's departments for a leader."""
    query = (
        select(Receipt, Employee.userid, Employee.display_name, Department.name)
        .join(Employee, Employee.id == Receipt.employee_id)
        .outerjoin(Department, Department.id == Receipt.department_id)
        .where(Receipt.notice_id == notice.id)
        .order_by(Receipt.department_id, Receipt.id)
    )
    if notice.sender != viewer.userid and viewer.scope is not None:
        query = query.where(Receipt.department_id.in_(viewer.scope))
    return query


@dataclass(frozen=True)
class Branch:
    """A department in the console's tree, loaded one level at a time."""

    id: int
    name: str
    children: int  # live sub-departments
    members: int  # active employees whose main department it is
    parent: str = ""  # the parent's name, for a search result


PICKS = 20  # a search in the pickers shows at most this many matches


def _branches(session: Session, where: Any, limit: int | None = None) -> list[Branch]:
    child = Department.__table__.alias("child")
    children = (
        select(func.count())
        .select_from(child)
        .where(child.c.parent_id == Department.id, child.c.deleted.is_(False))
        .scalar_subquery()
    )
    members = (
        select(func.count())
        .select_from(Employee)
        .where(Employee.status == EmployeeStatus.ACTIVE, Employee.main_department == Department.id)
        .scalar_subquery()
    )
    parent = Department.__table__.alias("parent")
    query = (
        select(Department.id, Department.name, children, members, parent.c.name)
        .outerjoin(parent, parent.c.id == Department.parent_id)
        .where(Department.deleted.is_(False), where)
        .order_by(Department.order.desc(), Department.id)
        .limit(limit)
    )
    return [Branch(i, n, c, m, p or "") for i, n, c, m, p in session.execute(query)]


def tree_roots(session: Session, viewer: Viewer) -> list[Branch]:
    """Where the viewer's tree starts: the company's top departments for an administrator,
    the topmost of the departments they lead for a leader, nothing for anyone else."""
    if viewer.scope is None:
        live = select(Department.id).where(Department.deleted.is_(False))
        return _branches(
            session, or_(Department.parent_id.is_(None), Department.parent_id.not_in(live))
        )
    scope = viewer.scope
    tops = [d for d in viewer.led if d in scope]
    if not tops:
        return []
    parents = {
        dept: parent
        for dept, parent in session.execute(
            select(Department.id, Department.parent_id).where(Department.id.in_(tops))
        )
    }
    return _branches(session, Department.id.in_([d for d in tops if parents.get(d) not in scope]))


def tree_children(session: Session, viewer: Viewer, department_id: int) -> list[Branch]:
    """One department's sub-departments, if the viewer may see it."""
    if not viewer.sees_department(department_id):
        return []
    return _branches(session, Department.parent_id == department_id)


def tree_path(session: Session, department_id: int, stop: Iterable[int] = ()) -> list[int]:
    """The department and its ancestors up to the top (or to a department in `stop`), top
    first: the branches a page opens to show it."""
    tops, path = set(stop), []
    current: int | None = department_id
    while current is not None and current not in path:
        path.append(current)
        if current in tops:
            break
        current = session.scalar(select(Department.parent_id).where(Department.id == current))
    return path[::-1]


def open_tree(session: Session, viewer: Viewer, shown: Iterable[int]) -> dict[str, Any]:
    """The roots and, for each department on the way to one that is shown, its children:
    what a page renders so that the shown departments are visible without a click."""
    roots = tree_roots(session, viewer)
    tops = {b.id for b in roots}
    opened: dict[int, list[Branch]] = {}
    for dept in shown:
        if not viewer.sees_department(dept):
            continue
        for ancestor in tree_path(session, dept, tops)[:-1]:
            if ancestor not in opened:
                opened[ancestor] = tree_children(session, viewer, ancestor)
    return {"roots": roots, "opened": opened}


def find_departments(session: Session, viewer: Viewer, text_: str) -> list[Branch]:
    """Departments whose name holds the text, among those the viewer may see."""
    where = Department.name.contains(text_, autoescape=True)
    if viewer.scope is not None:
        where = and_(where, Department.id.in_(viewer.scope))
    return _branches(session, where, PICKS)


def find_departments_by_id(session: Session, ids: Iterable[int]) -> list[Branch]:
    """These departments, as the tree shows them."""
    return _branches(session, Department.id.in_(list(ids)))


def named_people(session: Session, viewer: Viewer, userids: Iterable[str]) -> list[Employee]:
    """The active employees with these accounts that the viewer may address, in that order."""
    wanted = [u for u in dict.fromkeys(userids) if u]
    if not wanted:
        return []
    rows = session.scalars(
        select(Employee).where(
            Employee.userid.in_(wanted), Employee.status == EmployeeStatus.ACTIVE
        )
    )
    found = {e.userid: e for e in rows if viewer.sees_department(e.main_department)}
    return [found[u] for u in wanted if u in found]


def find_people(session: Session, viewer: Viewer, text_: str) -> list[Employee]:
    """Active employees whose name, 部门+姓名 or account holds the text, among those the viewer
    may see (by main department)."""
    like = [
        column.contains(text_, autoescape=True)
        for column in (Employee.name, Employee.display_name, Employee.userid)
    ]
    query = select(Employee).where(Employee.status == EmployeeStatus.ACTIVE, or_(*like))
    if viewer.scope is not None:
        query = query.where(Employee.main_department.in_(viewer.scope))
    return list(session.scalars(query.order_by(Employee.display_name).limit(PICKS)))


def tags(session: Session) -> list[tuple[int, str]]:
    """Every mirrored tag, by name."""
    return [(t.id, t.name) for t in session.scalars(select(Tag).order_by(Tag.name))]


def dashboard(session: Session, viewer: Viewer, now: datetime) -> dict[str, Any]:
    """The figures of 总览, within the viewer's scope."""
    start_of_day = now.astimezone(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
    today = [n for n in notices_for(session, viewer) if n.created_at >= start_of_day]
    shown = []
    for notice in today[:10]:
        counts = progress(session, notice, now, scope_for(viewer, notice))["counts"]
        shown.append((notice, counts.get("acknowledged", 0), counts.get("counted", 0)))
    return {
        "today": shown,
        "overdue_by_department": overdue_by_department(session, viewer, now),
        "departures": departures(session, now) if viewer.admin else [],
        "drift": drifting_groups(session) if viewer.admin else [],
        "health": health(session, now) if viewer.admin else None,
    }


def overdue_by_department(session: Session, viewer: Viewer, now: datetime) -> list[Any]:
    """(department, count) of people overdue right now on the last RECENT days' notices, most
    first (older misses are in 报表)."""
    query = (
        select(Department.name, func.count())
        .select_from(Receipt)
        .join(Notice, Notice.id == Receipt.notice_id)
        .outerjoin(Department, Department.id == Receipt.department_id)
        .where(_open_receipts(), Receipt.due_at < now, Receipt.due_at >= now - RECENT)
        .group_by(Department.name)
        .order_by(func.count().desc())
        .limit(15)
    )
    if viewer.scope is not None:
        query = query.where(Receipt.department_id.in_(viewer.scope))
    return [(name or "（无部门）", count) for name, count in session.execute(query).all()]


def weekly(
    session: Session, scope: Iterable[int] | None, now: datetime, weeks: int = 8
) -> list[dict]:
    """Per week (Beijing, Monday first): acknowledgement rate and median response minutes.

    The database counts receipts per notice and whole minute from delivery to answer, so the
    page reads a few thousand rows however many receipts there are; the median is the minute
    in which the middle answer fell.
    """
    local = now.astimezone(BEIJING)
    monday = (local - timedelta(days=local.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    start = monday - timedelta(weeks=weeks - 1)
    week_of = {
        notice_id: (created.astimezone(BEIJING) - start).days // 7
        for notice_id, created in session.execute(
            select(Notice.id, Notice.created_at).where(
                Notice.created_at >= start,
                Notice.require_ack.is_(True),
                Notice.status == NoticeStatus.ACTIVE,
            )
        )
    }
    totals, answers = [0] * weeks, [0] * weeks
    histograms: list[Counter[int]] = [Counter() for _ in range(weeks)]
    if week_of:
        minute = _whole_minutes(session, Receipt.acknowledged_at, Receipt.sent_at)
        query = (
            select(Receipt.notice_id, minute, func.count(), func.count(Receipt.acknowledged_at))
            .where(Receipt.notice_id.in_(list(week_of)), Receipt.excluded.is_(False))
            .group_by(Receipt.notice_id, minute)
        )
        if scope is not None:
            query = query.where(Receipt.department_id.in_(list(scope)))
        for notice_id, minutes, total, answered in session.execute(query):
            index = week_of[notice_id]
            if not 0 <= index < weeks:
                continue
            totals[index] += total
            answers[index] += answered
            if minutes is not None and answered:
                histograms[index][max(0, int(minutes))] += answered
    return [
        {
            "week": (start + timedelta(weeks=i)).strftime("%m-%d"),
            "rate": round(100 * acked / n, 1) if n else None,
            "median_minutes": _median_minute(histogram),
            "receipts": n,
        }
        for i, (n, acked, histogram) in enumerate(zip(totals, answers, histograms, strict=True))
    ]


def _whole_minutes(session: Session, later: Any, earlier: Any) -> Any:
    """Whole minutes between two timestamps, in the database's own arithmetic."""
    if session.get_bind().dialect.name == "postgresql":
        return func.floor(func.extract("epoch", later - earlier) / 60)
    return cast((func.julianday(later) - func.julianday(earlier)) * 1440, Integer)


def _median_minute(histogram: Counter[int]) -> float | None:
    total = sum(histogram.values())
    if not total:
        return None
    seen = 0
    for minute in sorted(histogram):
        seen += histogram[minute]
        if seen * 2 >= total:
            return float(minute)
    return None  # pragma: no cover - the loop always reaches half


def departures(session: Session, now: datetime, days: int = 30) -> list[dict[str, Any]]:
    """Who left lately, and how long until they were out of every managed group."""
    people = session.execute(
        select(Employee.id, Employee.userid, Employee.display_name, Employee.departed_at)
        .where(
            Employee.status == EmployeeStatus.DEPARTED,
            Employee.departed_at >= now - timedelta(days=days),
        )
        .order_by(Employee.departed_at.desc())
        .limit(50)
    ).all()
    audits: dict[str, list[Any]] = {}
    if people:
        query = select(GroupAudit.userid, GroupAudit.at, GroupAudit.outcome, GroupAudit.done_at)
        for row in session.execute(
            query.where(
                GroupAudit.userid.in_([p.userid for p in people]),
                GroupAudit.action == "remove",
                GroupAudit.at >= min(p.departed_at for p in people),
            )
        ):
            audits.setdefault(row.userid, []).append(row)
    out = []
    for _, userid, name, left_at in people:
        removals = [(r.outcome, r.done_at) for r in audits.get(userid, ()) if r.at >= left_at]
        pending = any(o == "queued" for o, _ in removals)
        done = [d for o, d in removals if o == "applied" and d]
        ready = done and left_at is not None and not pending
        took = (max(done) - left_at).total_seconds() if ready and left_at else None
        out.append(
            {
                "name": name,
                "left_at": beijing(left_at),
                "groups": len(removals),
                "pending": pending,
                "seconds": round(took, 1) if took is not None else None,
            }
        )
    return out


def drifting_groups(session: Session) -> list[ManagedGroup]:
    """Managed groups whose last check found changes made outside the app."""
    groups = session.scalars(select(ManagedGroup).where(ManagedGroup.drift.is_not(None)))
    return [g for g in groups if g.drift]


def health(session: Session, now: datetime) -> dict[str, Any]:
    """The system at a glance: inbox lag, outbox queue, holds."""
    oldest = session.scalar(
        select(func.min(InboxEvent.received_at)).where(InboxEvent.status == "pending")
    )
    queued = session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
    )
    holds = list(session.scalars(select(Hold).where(Hold.until > now)))
    return {
        "inbox_lag_seconds": round((now - oldest).total_seconds()) if oldest else 0,
        "outbox_pending": queued or 0,
        "holds": [(h.scope, h.reason) for h in holds],
    }
