"""SLA benchmark: a sweep over 1,000,000 open receipts of which 1% are due, then the overdue
report over 100,000 receipts. Prints time, queries per sweep and the claim query's plan.

Usage: scripts/bench_sla [--receipts N] [--due-percent P] [--report-receipts N]
PostgreSQL: WECOM_APP_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/bench_sla;
created if missing and wiped on every run).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, insert, text
from sqlalchemy.dialects import postgresql

from wecom_app.bench.common import fresh_postgres
from wecom_app.db import Database
from wecom_app.models import Department, Employee, Notice
from wecom_app.sla import export
from wecom_app.sla.calendar import WorkingCalendar
from wecom_app.sla.config import SlaConfig
from wecom_app.sla.policy import PolicyBook
from wecom_app.sla.reports import overdue_report
from wecom_app.sla.sweeper import claim_query, sweep_all

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 1, 6, 10, 30, tzinfo=SH).astimezone(UTC)  # a Tuesday morning
EMPLOYEES = 10_000
DEPARTMENTS = 100
CONFIG = SlaConfig(WorkingCalendar(), PolicyBook())
RECEIPT_COLUMNS = (
    "notice_id, employee_id, department_id, reason, batch, state, sent_at, acknowledged_at, "
    "late, excluded, due_at, next_action_at, reminded_count, escalation_level"
)


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    """Collect every statement the engine sends while inside the block."""
    seen: list[str] = []

    def count(_conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def load_org(db: Database) -> None:
    """Departments under a root, each with a leader; employees with a direct leader."""
    with db.begin() as s:
        s.execute(
            insert(Department),
            [
                {"id": d, "name": f"部门{d}", "parent_id": None if d == 1 else 1,
                 "leaders": [f"u{d:05d}"], "updated_at": NOW}
                for d in range(1, DEPARTMENTS + 1)
            ],
        )  # fmt: skip
        rows = []
        for i in range(EMPLOYEES):
            dept = i % DEPARTMENTS + 1
            rows.append(
                {"userid": f"u{i:05d}", "name": f"员工{i}", "display_name": f"部门{dept}-员工{i}",
                 "main_department": dept, "departments": [dept], "leader_in": [],
                 "direct_leaders": [f"u{dept:05d}"], "status": "active", "joined_at": NOW,
                 "updated_at": NOW}
            )  # fmt: skip
        s.execute(insert(Employee), rows)


def load_notices(db: Database, count: int, sent_at: datetime) -> None:
    """`count` notices with 30-minute SLAs, ids 1..count."""
    with db.begin() as s:
        s.execute(
            insert(Notice),
            [
                {"id": n, "code": str(n), "title": f"通知{n}", "body": "", "author": "bench",
                 "audience": {}, "sla_minutes": 30, "task_prefix": f"bench{n}",
                 "created_at": sent_at, "status": "active", "require_ack": True}
                for n in range(1, count + 1)
            ],
        )  # fmt: skip


def copy_receipts(db: Database, rows: Iterator[tuple[Any, ...]]) -> None:
    """Bulk-load receipts with COPY."""
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(f"COPY notice_receipts ({RECEIPT_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()
    settle(db)


def settle(db: Database) -> None:
    """VACUUM ANALYZE and CHECKPOINT, so the sweep does not pay for the bulk load's writes."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE notice_receipts"))
        conn.execute(text("CHECKPOINT"))


def sweep_rows(receipts: int, due_percent: float) -> Iterator[tuple[Any, ...]]:
    """Open receipts: `due_percent` of them at their first reminder, the rest later."""
    rng = random.Random(7)
    notices = receipts // EMPLOYEES
    due_every = max(1, round(100 / due_percent))
    for n in range(1, notices + 1):
        for e in range(1, EMPLOYEES + 1):
            if (n + e) % due_every == 0:  # different people in each notice
                sent = NOW - timedelta(minutes=16)
                next_at = NOW - timedelta(minutes=1)
            else:
                sent = NOW - timedelta(minutes=rng.randint(0, 14))
                next_at = NOW + timedelta(minutes=rng.randint(1, 600))
            due = sent + timedelta(minutes=30)
            yield (n, e, e % DEPARTMENTS + 1, "", 1, "sent", sent, None, False, False, due,
                   next_at, 0, 0)  # fmt: skip


def report_rows(receipts: int) -> Iterator[tuple[Any, ...]]:
    """Receipts of notices sent an hour ago: 70% on time, 15% late, 15% still silent."""
    rng = random.Random(11)
    notices = max(1, receipts // EMPLOYEES)
    sent = NOW - timedelta(minutes=60)
    due = sent + timedelta(minutes=30)
    for n in range(1, notices + 1):
        for e in range(1, min(EMPLOYEES, receipts) + 1):
            roll = rng.random()
            if roll < 0.85:
                minutes = rng.uniform(1, 29) if roll < 0.7 else rng.uniform(31, 59)
                acked = sent + timedelta(minutes=minutes)
                yield (n, e, e % DEPARTMENTS + 1, "", 1, "acknowledged", sent, acked,
                       minutes > 30, False, due, None, 0, 0)  # fmt: skip
            else:
                yield (n, e, e % DEPARTMENTS + 1, "", 1, "sent", sent, None, False, False, due,
                       NOW + timedelta(hours=1), 2, 1)  # fmt: skip


def explain_claim(db: Database) -> str:
    """EXPLAIN ANALYZE of the sweeper's claim query (rolled back)."""
    stmt = claim_query(NOW, postgres=True)
    sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    with db.begin() as s:
        plan = s.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")).scalars().all()
        s.rollback()
    return "\n".join(f"    {line}" for line in plan)


def bench_sweep(url: str, receipts: int, due_percent: float) -> None:
    fresh_postgres(url)
    db = Database(url)
    started = time.perf_counter()
    load_org(db)
    load_notices(db, receipts // EMPLOYEES, NOW - timedelta(minutes=16))
    copy_receipts(db, sweep_rows(receipts, due_percent))
    print(f"loaded {receipts:,} open receipts in {time.perf_counter() - started:.1f} s")
    print("claim query plan (before the sweep):")
    print(explain_claim(db))
    with counting(db) as statements:
        started = time.perf_counter()
        result = sweep_all(db, NOW, CONFIG)
        elapsed = time.perf_counter() - started
    print(f"sweep: {elapsed:.2f} s, {len(statements)} queries; {result}")
    with counting(db) as statements:
        started = time.perf_counter()
        idle = sweep_all(db, NOW, CONFIG)
        idle_elapsed = time.perf_counter() - started
    print(f"repeat sweep (nothing due): {idle_elapsed * 1000:.1f} ms, {len(statements)} queries,"
          f" {idle.claimed} claimed")  # fmt: skip
    ok = elapsed <= 2.0 and result.reminded == round(receipts * due_percent / 100)
    print(f"target ≤ 2 s with every due receipt reminded once: {'OK' if ok else 'MISSED'}")
    db.dispose()


def bench_report(url: str, receipts: int) -> None:
    fresh_postgres(url)
    db = Database(url)
    load_org(db)
    load_notices(db, max(1, receipts // EMPLOYEES), NOW - timedelta(minutes=60))
    copy_receipts(db, report_rows(receipts))
    with counting(db) as statements:
        started = time.perf_counter()
        with db.begin() as s:
            data = overdue_report(s, NOW, CONFIG)
        built = time.perf_counter() - started
    started = time.perf_counter()
    xlsx = export.to_xlsx(data)
    csv_text = export.to_csv(data)
    exported = time.perf_counter() - started
    t = data["totals"]
    print(
        f"overdue report over {t['recipients']:,} receipts: {built:.2f} s, {len(statements)} "
        f"queries; {t['late']:,} late, {t['overdue']:,} overdue, median {t['median_minutes']} "
        f"min, p90 {t['p90_minutes']} min; {len(data['violations']):,} violations"
    )
    print(f"exports: XLSX {len(xlsx) / 1e6:.1f} MB + CSV {len(csv_text) / 1e6:.1f} MB in "
          f"{exported:.2f} s")  # fmt: skip
    db.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=1_000_000)
    parser.add_argument("--due-percent", type=float, default=1.0)
    parser.add_argument("--report-receipts", type=int, default=100_000)
    args = parser.parse_args(argv)
    url = os.environ.get(
        "WECOM_APP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/bench_sla"
    )
    bench_sweep(url, args.receipts, args.due_percent)
    bench_report(url, args.report_receipts)


if __name__ == "__main__":
    main()
