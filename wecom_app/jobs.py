"""Scheduled jobs: interval or daily, each slot claimed once across workers.

Features add their jobs to a `JobTable` from register(). A slot is claimed by inserting its
(job, slot) row; the row carries a lease that the running worker renews, so a slot whose worker
died (or stopped before finishing: `interrupted`) can be claimed again by the next worker,
while a slot that finished is never run twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from wecom_app.clock import BEIJING
from wecom_app.db import Database
from wecom_app.logs import working_on
from wecom_app.models import JobRun
from wecom_app.services import Services

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)


@dataclass
class JobContext:
    """What a running job gets: the services, and an event set when the worker is stopping.

    A job that loops over many items checks `stopping` between them and returns early; its
    slot is then left for the next worker.
    """

    services: Services
    stopping: threading.Event = field(default_factory=threading.Event)


Summary = dict[str, Any] | None
JobFn = Callable[[JobContext], Summary]


@dataclass(frozen=True)
class Job:
    """A job that runs every `every`, or once a day at `daily_at` (Asia/Shanghai)."""

    name: str
    fn: JobFn
    every: timedelta | None = None
    daily_at: time | None = None

    def __post_init__(self) -> None:
        if (self.every is None) == (self.daily_at is None):
            raise ValueError(f"job {self.name!r} needs exactly one of every= or daily_at=")

    def slot(self, now: datetime) -> str | None:
        """The time slot `now` falls in, or None when a daily job's hour has not come yet."""
        if self.every is not None:
            step = int(self.every.total_seconds())
            return str(int(now.timestamp()) // step * step)
        assert self.daily_at is not None
        local = now.astimezone(BEIJING)
        return local.date().isoformat() if local.time() >= self.daily_at else None


class JobTable:
    """The scheduled jobs of one deployment, by name."""

    def __init__(self, jobs: Iterable[Job] = ()) -> None:
        self._jobs: dict[str, Job] = {}
        for jb in jobs:
            self.add(jb)

    def add(self, jb: Job) -> None:
        """Add a job; a second job of the same name is refused."""
        if jb.name in self._jobs:
            raise ValueError(f"job {jb.name!r} registered twice")
        self._jobs[jb.name] = jb

    def replace(self, jb: Job) -> None:
        """Put a job in place of the one with its name (tests and tuning)."""
        self._jobs[jb.name] = jb

    def remove(self, name: str) -> None:
        """Drop a job by name."""
        self._jobs.pop(name, None)

    def names(self) -> list[str]:
        """Every job's name, in the order they were added."""
        return list(self._jobs)

    def __iter__(self) -> Any:
        return iter(list(self._jobs.values()))

    def __getitem__(self, name: str) -> Job:
        return self._jobs[name]


def claim_slot(db: Database, name: str, slot: str, now: datetime) -> int | None:
    """Claim (job, slot) for this worker: a new slot, or one whose worker died or stopped."""
    with db.begin() as session:
        insert = postgresql.insert if db.is_postgres else sqlite.insert
        won = session.execute(
            insert(JobRun)
            .values(
                name=name, slot=slot, started_at=now, status="running", leased_until=now + LEASE
            )
            .on_conflict_do_nothing(index_elements=["name", "slot"])
            .returning(JobRun.id)
        ).first()
        if won:
            return int(won[0])
        again = session.execute(
            update(JobRun)
            .where(
                JobRun.name == name,
                JobRun.slot == slot,
                or_(
                    JobRun.status == "interrupted",
                    (JobRun.status == "running") & (JobRun.leased_until < now),
                ),
            )
            .values(status="running", started_at=now, leased_until=now + LEASE, error=None)
            .returning(JobRun.id)
        ).first()
        return int(again[0]) if again else None


def due(jobs: JobTable, now: datetime) -> list[tuple[Job, str]]:
    """Jobs whose slot at `now` has come, with that slot."""
    found = []
    for jb in jobs:
        slot = jb.slot(now)
        if slot is not None:
            found.append((jb, slot))
    return found


def taken_slots(db: Database, pairs: list[tuple[str, str]], now: datetime) -> set[tuple[str, str]]:
    """Which of these (job, slot) pairs are finished or running under a live lease somewhere:
    a read, so that checking every second does not take the write lock every second."""
    if not pairs:
        return set()
    with db.read() as session:
        rows = session.execute(
            select(JobRun.name, JobRun.slot).where(
                JobRun.name.in_({n for n, _ in pairs}),
                JobRun.slot.in_({s for _, s in pairs}),
                or_(
                    JobRun.status.in_(("done", "failed")),
                    (JobRun.status == "running") & (JobRun.leased_until > now),
                ),
            )
        )
        return {(n, s) for n, s in rows}


def run_claimed(ctx: JobContext, jb: Job, run_id: int) -> str:
    """Run one claimed job, renewing its lease, and record how it ended; return the status
    (its log lines carry the id "job-<name>-<run>")."""
    with working_on(f"job-{jb.name}-{run_id}"):
        return _run_claimed(ctx, jb, run_id)


def _run_claimed(ctx: JobContext, jb: Job, run_id: int) -> str:
    db, clock = ctx.services.db, ctx.services.clock
    status, summary, error = "done", None, None
    beat = threading.Event()
    heartbeat = threading.Thread(
        target=_renew, args=(ctx, run_id, beat), name=f"lease-{jb.name}", daemon=True
    )
    heartbeat.start()
    try:
        summary = jb.fn(ctx)
    except Exception as exc:  # a job failing must not stop the worker
        log.exception("job %s failed", jb.name)
        status, error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        beat.set()
    if status == "done" and ctx.stopping.is_set():
        status = "interrupted"  # it returned early: the next worker runs the slot again
    with db.begin() as session:
        row = session.get(JobRun, run_id)
        if row is not None:
            row.status, row.summary, row.error = status, summary, error
            row.finished_at = clock.now()
    return status


def _renew(ctx: JobContext, run_id: int, done: threading.Event) -> None:
    """Extend a running job's lease until it ends."""
    every = LEASE.total_seconds() / 4
    while not done.wait(every):
        try:
            with ctx.services.db.begin() as session:
                session.execute(
                    update(JobRun)
                    .where(JobRun.id == run_id, JobRun.status == "running")
                    .values(leased_until=ctx.services.clock.now() + LEASE)
                )
        except Exception:  # the next beat tries again; the lease is long
            log.warning("could not renew the lease of job run %s", run_id, exc_info=True)


def run_due(ctx: JobContext, jobs: JobTable) -> list[str]:
    """Run, one after another, every job whose current slot nobody has claimed yet."""
    ran = []
    for jb, slot in due(jobs, ctx.services.clock.now()):
        run_id = claim_slot(ctx.services.db, jb.name, slot, ctx.services.clock.now())
        if run_id is None:
            continue
        ran.append(jb.name)
        run_claimed(ctx, jb, run_id)
    return ran
