"""Figures too large to compute while a page waits, computed by the worker and read by pages.

A month's overdue report over a whole company walks every receipt through the working calendar
(`scripts/bench_console`: 21.6 s for 342,000 receipts), and the naming check reads every
employee (2 s at 100,000). A page asks for such a figure (`read_or_request`); the worker's
`console.snapshots` job (every few seconds) computes what was asked for and stores it; the page
shows the stored figure with the time it was computed, and asks again when it is older than
FRESH. A past month's report, once computed after the month ended, stays as it is.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from wecom_app.clock import BEIJING
from wecom_app.console.queries import progress, weekly
from wecom_app.directory import naming
from wecom_app.jobs import JobContext
from wecom_app.models import ConsoleSnapshot, Notice
from wecom_app.sla.config import SlaConfig
from wecom_app.sla.reports import overdue_report

FRESH = timedelta(minutes=10)
EVERY = timedelta(seconds=5)
NAMING = "naming"


def month_period(month: str | None, now: datetime) -> tuple[datetime, datetime, str]:
    """A calendar month in Beijing: the one named (YYYY-MM), or this one; (start, end, label)."""
    local = now.astimezone(BEIJING)
    year, number = local.year, local.month
    if month and len(month) == 7 and month[4] == "-" and month.replace("-", "").isdigit():
        year, number = int(month[:4]), int(month[5:])
        if not (2000 <= year <= 2100 and 1 <= number <= 12):
            year, number = local.year, local.month
    start = datetime(year, number, 1, tzinfo=BEIJING)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end, f"{year:04d}-{number:02d}"


def report_key(month: str, scope: frozenset[int] | None) -> str:
    """The snapshot of one month's report for one set of departments (None: everyone)."""
    return f"report:{month}:{_scope(scope)}"


NOTICE_FRESH = timedelta(seconds=15)


def notice_key(notice_id: int, scope: frozenset[int] | None) -> str:
    """The snapshot of a big notice's progress for one set of departments."""
    return f"notice:{notice_id}:{_scope(scope)}"


def weekly_key(scope: frozenset[int] | None) -> str:
    """The snapshot of the weekly acknowledgement figures for one set of departments."""
    return f"weekly:{_scope(scope)}"


def _scope(scope: frozenset[int] | None) -> str:
    if scope is None:
        return "all"
    return hashlib.sha1(",".join(map(str, sorted(scope))).encode()).hexdigest()[:20]


def read_or_request(
    session: Session, key: str, params: dict[str, Any], now: datetime, good_after: datetime
) -> ConsoleSnapshot:
    """The snapshot under `key`; asks the worker for a new one unless it was computed after
    `good_after`."""
    row = session.get(ConsoleSnapshot, key)
    if row is None:
        row = ConsoleSnapshot(key=key, params=params, requested_at=now)
        session.add(row)
        session.flush()
        return row
    fresh = row.computed_at is not None and row.computed_at >= good_after
    if not fresh and not pending(row):
        row.requested_at, row.params = now, params
    return row


def pending(row: ConsoleSnapshot) -> bool:
    """Whether the worker has yet to compute what was last asked for."""
    return row.requested_at is not None and (
        row.computed_at is None or row.requested_at > row.computed_at
    )


def _due() -> Any:
    """Snapshots asked for and not computed since: `pending`, as SQL."""
    return and_(
        ConsoleSnapshot.requested_at.is_not(None),
        or_(
            ConsoleSnapshot.computed_at.is_(None),
            ConsoleSnapshot.requested_at > ConsoleSnapshot.computed_at,
        ),
    )


def any_due(session: Session) -> bool:
    """Whether the worker has any snapshot to compute."""
    return session.scalar(select(ConsoleSnapshot.key).where(_due()).limit(1)) is not None


def compute_due(ctx: JobContext, *, sla: SlaConfig) -> dict[str, Any]:
    """The job: compute every snapshot a page asked for."""
    services = ctx.services
    with services.db.read() as session:
        due = list(
            session.execute(select(ConsoleSnapshot.key, ConsoleSnapshot.params).where(_due()))
        )
    done = 0
    for key, params in due:
        if ctx.stopping.is_set():
            break
        now = services.clock.now()
        started = time.perf_counter()
        with services.db.read() as session:
            shown, whole = _compute(session, key, params, now, sla)
        with services.db.begin() as session:
            row = session.get(ConsoleSnapshot, key)
            if row is not None:
                row.data, row.computed_at = shown, now
                row.seconds = round(time.perf_counter() - started, 3)
            if whole is not None:
                full = session.get(ConsoleSnapshot, full_key(key))
                if full is None:
                    full = ConsoleSnapshot(key=full_key(key), params=params)
                    session.add(full)
                full.data, full.computed_at, full.requested_at = whole, now, now
        done += 1
    return {"computed": done}


def full_key(key: str) -> str:
    """Where the whole of a snapshot is kept (downloads), beside what a page shows."""
    return f"{key}:full"


def read_full(session: Session, key: str) -> Any:
    """The whole of a computed snapshot (e.g. every violation of the month), or None."""
    row = session.get(ConsoleSnapshot, full_key(key))
    return row.data if row is not None else None


def _compute(
    session: Session, key: str, params: dict[str, Any], now: datetime, sla: SlaConfig
) -> tuple[Any, Any]:
    """(what the page shows, the whole): a page reads a few hundred rows however big the
    month was; downloads read the whole."""
    if key == NAMING:
        found = [d.to_dict() for d in naming.naming_report(naming.named_people(session))]
        return {"count": len(found), "first": found[:PAGE_ROWS]}, found
    if key.startswith("weekly:"):
        weeks = weekly(session, params.get("department_ids"), now)
        return weeks, weeks
    if key.startswith("notice:"):
        notice = session.get(Notice, params["notice_id"])
        shown = progress(session, notice, now, params.get("department_ids")) if notice else {}
        return shown, None
    start, end, _ = month_period(params.get("month"), now)
    scope = params.get("department_ids")
    report = overdue_report(session, min(end, now), sla, since=start, department_ids=scope)
    fines = report["fines"]
    shown = {
        "totals": report["totals"],
        "penalty_total": report["penalty_total"],
        "violation_count": len(report["violations"]),
        "violations": report["violations"][:PAGE_ROWS],
        "group_violations": report["group_violations"][:PAGE_ROWS],
        "fines_people": fines["people"][:PAGE_ROWS],
        "fines_departments": fines["departments"][:CHART_ROWS],
    }
    return shown, report


PAGE_ROWS = 200  # rows a page lists; the download has them all
CHART_ROWS = 30
