"""A notice's ledger: counts by state and department, and every receipt with canonical names."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from wecom_app.models import Department, Employee, Notice, Receipt, ReceiptState

STATES = [s.value for s in ReceiptState]


def notice_dict(notice: Notice) -> dict[str, Any]:
    """The notice itself, as JSON."""
    return {
        "id": notice.id,
        "code": notice.code,
        "title": notice.title,
        "type": notice.type,
        "body": notice.body,
        "author": notice.author,
        "sender": notice.sender,
        "audience": notice.audience,
        "require_ack": notice.require_ack,
        "sla_minutes": notice.sla_minutes,
        "second_button": notice.second_button,
        "status": notice.status,
        "recipients": notice.recipients,
        "batches": notice.batches,
        "created_at": notice.created_at.isoformat(),
        "resolve_by": _iso(notice.resolve_by),
        "schedule_id": notice.schedule_id,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def receipts(
    session: Session, notice: Notice, limit: int | None = None, offset: int = 0
) -> list[dict[str, Any]]:
    """A notice's receipts (all, or a page) with the employee's canonical name and department."""
    rows = session.execute(
        select(Receipt, Employee.userid, Employee.display_name, Department.name)
        .join(Employee, Employee.id == Receipt.employee_id)
        .outerjoin(Department, Department.id == Receipt.department_id)
        .where(Receipt.notice_id == notice.id)
        .order_by(Receipt.department_id, Receipt.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return [
        {
            "userid": userid,
            "name": display_name,
            "department_id": r.department_id,
            "department": dept_name or "",
            "reason": r.reason,
            "state": r.state,
            "errcode": r.errcode,
            "sent_at": _iso(r.sent_at),
            "acknowledged_at": _iso(r.acknowledged_at),
            "channel": r.ack_channel,
            "late": r.late,
            "excluded": r.excluded,
            "response": r.response,
            "responded_at": _iso(r.responded_at),
            "resolved_at": _iso(r.resolved_at),
            "due_at": _iso(r.due_at),
        }
        for r, userid, display_name, dept_name in rows
    ]


TALLIES = ("counted", "excluded", "late", "overdue", "responded")


def summary(
    session: Session,
    notice: Notice,
    now: datetime,
    with_receipts: bool = True,
    page: tuple[int | None, int] = (None, 0),
) -> dict[str, Any]:
    """Counts by state (departed recipients apart), overdue and late, by department."""
    overdue = (Receipt.due_at < now) & (Receipt.state != ReceiptState.ACKNOWLEDGED)
    rows = session.execute(
        select(
            Receipt.department_id,
            Department.name,
            Receipt.state,
            Receipt.excluded,
            func.count(),
            func.sum(case((Receipt.late.is_(True), 1), else_=0)),
            func.sum(case((overdue, 1), else_=0)),
            func.sum(case((Receipt.response.is_not(None), 1), else_=0)),
        )
        .outerjoin(Department, Department.id == Receipt.department_id)
        .where(Receipt.notice_id == notice.id)
        .group_by(Receipt.department_id, Department.name, Receipt.state, Receipt.excluded)
    ).all()
    totals: Counter[str] = Counter({s: 0 for s in STATES})
    departments: dict[int | None, Counter[str]] = defaultdict(Counter)
    names: dict[int | None, str] = {}
    for dept, name, state, excluded, count, late, late_due, responded in rows:
        names[dept] = name or ""
        for bucket in (totals, departments[dept]):
            if excluded:
                bucket["excluded"] += count
                continue
            bucket[state] += count
            bucket["counted"] += count
            bucket["late"] += int(late or 0)
            bucket["responded"] += int(responded or 0)
            bucket["overdue"] += int(late_due or 0) if notice.require_ack else 0
    data: dict[str, Any] = {
        "notice": notice_dict(notice),
        "counts": {
            k: totals[k] for k in [*STATES, "counted", "excluded", "late", "overdue", "responded"]
        },
        "by_department": [
            {
                "department_id": dept,
                "department": names.get(dept, "") if dept is not None else "",
                "counted": c["counted"],
                "acknowledged": c[ReceiptState.ACKNOWLEDGED],
                "pending": c["counted"] - c[ReceiptState.ACKNOWLEDGED],
                "overdue": c["overdue"],
                "excluded": c["excluded"],
            }
            for dept, c in sorted(departments.items(), key=lambda kv: kv[0] or 0)
        ],
    }
    if with_receipts:
        data["receipts"] = receipts(session, notice, *page)
    return data
