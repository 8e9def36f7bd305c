"""Scheduled jobs for the worker: interval or daily, each slot claimed once across workers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.dialects import postgresql, sqlite

from wecom_app.clock import Clock
from wecom_app.db import Database
from wecom_app.models import JobRun

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")

JobFn = Callable[[Any], dict[str, Any] | None]


@dataclass
class Job:
    """A job that runs every `every`, or once a day at `daily_at` (Asia/Shanghai)."""

    name: str
    fn: JobFn
    every: timedelta | None = None
    daily_at: time | None = None

    def slot(self, now: datetime) -> str | None:
        """The time slot `now` falls in, or None when a daily job's hour has not come yet."""
        if self.every is not None:
            step = int(self.every.total_seconds())
            return str(int(now.timestamp()) // step * step)
        assert self.daily_at is not None
        local = now.astimezone(SHANGHAI)
        return local.date().isoformat() if local.time() >= self.daily_at else None


JOBS: dict[str, Job] = {}


def job(
    name: str, *, every: timedelta | None = None, daily_at: time | None = None
) -> Callable[[JobFn], JobFn]:
    """Register a scheduled job; `fn(services)` returns a JSON-able summary."""

    def register(fn: JobFn) -> JobFn:
        if name in JOBS:
            raise RuntimeError(f"job {name!r} registered twice")
        JOBS[name] = Job(name, fn, every, daily_at)
        return fn

    return register


def claim_slot(db: Database, name: str, slot: str, now: datetime) -> int | None:
    """Insert the (job, slot) row; return its id if this worker won it, else None."""
    with db.begin() as session:
        insert = postgresql.insert if db.is_postgres else sqlite.insert
        won = session.execute(
            insert(JobRun)
            .values(name=name, slot=slot, started_at=now, status="running")
            .on_conflict_do_nothing(index_elements=["name", "slot"])
            .returning(JobRun.id)
        ).first()
        return won[0] if won else None


def run_due(db: Database, clock: Clock, services: Any, only: set[str] | None = None) -> list[str]:
    """Run every job whose current slot nobody has claimed yet; return the names run."""
    ran = []
    for name, jb in JOBS.items():
        if only is not None and name not in only:
            continue
        now = clock.now()
        slot = jb.slot(now)
        if slot is None:
            continue
        run_id = claim_slot(db, name, slot, now)
        if run_id is None:
            continue
        ran.append(name)
        _run(db, clock, services, jb, run_id)
    return ran


def _run(db: Database, clock: Clock, services: Any, jb: Job, run_id: int) -> None:
    """Run one claimed job and record how it ended."""
    status, summary, error = "done", None, None
    try:
        summary = jb.fn(services)
    except Exception as exc:  # a job failing must not stop the worker
        log.exception("job %s failed", jb.name)
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    with db.begin() as session:
        row = session.get(JobRun, run_id)
        if row is not None:
            row.status, row.summary, row.error = status, summary, error
            row.finished_at = clock.now()
