"""Full sync: fetch the whole directory from WeCom, diff it with the mirror, apply in bulk.

Fetching happens before any write, so a WeCom error mid-fetch (after the client's bounded
retries) leaves the mirror untouched; applying happens in one transaction, so it lands whole
or not at all. One `user/list` per department (it is not recursive) plus `department/list` and
a few `user/list_id` pages is all it costs. One full sync runs at a time across every process
(`Database.exclusive`): a second one waits for the first, or with wait=False says one is
running and does nothing.
"""

from __future__ import annotations

import time as wall
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import delete, insert, select, true
from sqlalchemy.exc import IntegrityError

from wecom_app.clock import Clock
from wecom_app.db import Database
from wecom_app.directory import bulk
from wecom_app.directory.diff import (
    DeptRecord,
    DirectoryDiff,
    EmployeeRecord,
    MirrorEmployee,
    MirrorSnapshot,
    WeComSnapshot,
    diff,
)
from wecom_app.directory.mirror import dept_record_of, record_of
from wecom_app.directory.naming import NamingPolicy
from wecom_app.domain_events import DomainEvents
from wecom_app.errors import AppError
from wecom_app.jobs import JobContext
from wecom_app.models import Department, Tag, TagMember
from wecom_app.services import Services
from wecom_app.wecom.api import WeComApi

# Requests in flight while walking departments: enough to hide latency, far below WeCom's
# concurrency limit (45033).
FETCH_THREADS = 4

Progress = Callable[[list[DeptRecord]], AbstractContextManager[Iterable[DeptRecord]]]
LOCK = "directory_full_sync"


class SyncRunning(AppError):
    """Another full sync holds the lock."""

    def __init__(self) -> None:
        super().__init__("另一个全量同步正在进行，本次未执行")


@dataclass
class SyncReport:
    """What a full sync found and did."""

    counts: dict[str, int]
    api_calls: dict[str, int]
    dry_run: bool
    seconds: float
    departments: int
    employees: int
    tags: int = 0
    fetch_seconds: float = 0.0
    examples: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """As JSON-able data for `--json` and job summaries."""
        return {
            **self.counts,
            "api_calls": sum(self.api_calls.values()),
            "api_calls_by_path": self.api_calls,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 2),
            "fetch_seconds": round(self.fetch_seconds, 2),
            "wecom_departments": self.departments,
            "wecom_employees": self.employees,
            "wecom_tags": self.tags,
            "examples": self.examples,
        }


def fetch_snapshot(
    client: WeComApi,
    policy: NamingPolicy,
    *,
    use_list_id: bool,
    progress: Progress = nullcontext,
) -> WeComSnapshot:
    """Read departments and every department's members; display names follow the policy."""
    departments = {d.id: DeptRecord.from_wecom(d) for d in client.department_list()}
    employees = _members(client, list(departments.values()), progress)
    for userid, record in employees.items():
        employees[userid] = replace(record, display_name=policy.display_name(record, departments))
    known = set(client.iter_user_ids()) if use_list_id else set()
    return WeComSnapshot(departments, employees, known, fetch_tags(client))


def fetch_tags(client: WeComApi) -> dict[int, tuple[str, tuple[str, ...], tuple[int, ...]]]:
    """Every tag with its members and the departments it holds (tag/list, then tag/get each)."""
    found = {}
    for tag_id, name in client.tag_list():
        detail = client.tag_get(tag_id)
        found[tag_id] = (detail.name or name, detail.userids, detail.departments)
    return found


def replace_tags(
    session: Any, tags: dict[int, tuple[str, tuple[str, ...], tuple[int, ...]]]
) -> None:
    """Make the mirror's tags exactly WeCom's."""
    session.execute(delete(TagMember))
    session.execute(delete(Tag).where(Tag.id.not_in(list(tags)) if tags else true()))
    existing = {t.id: t for t in session.scalars(select(Tag))}
    for tag_id, (name, _, _) in tags.items():
        if tag_id in existing:
            existing[tag_id].name = name
        else:
            session.add(Tag(id=tag_id, name=name))
    rows = [
        {"tag_id": tag_id, "userid": userid, "department_id": None}
        for tag_id, (_, userids, _) in tags.items()
        for userid in dict.fromkeys(userids)
    ] + [
        {"tag_id": tag_id, "userid": None, "department_id": dept_id}
        for tag_id, (_, _, departments) in tags.items()
        for dept_id in dict.fromkeys(departments)
    ]
    if rows:
        session.execute(insert(TagMember), rows)


def _members(
    client: WeComApi, departments: list[DeptRecord], progress: Progress
) -> dict[str, EmployeeRecord]:
    """Every department's direct members, a few requests in flight at once.

    Results are consumed in department order, so a member listed in several departments is
    taken from the first; the first error stops the walk and cancels what has not started.
    """
    employees: dict[str, EmployeeRecord] = {}
    pool = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="user-list")
    try:
        with progress(departments) as bar:
            pages = pool.map(lambda dept: client.user_list(dept.id), departments)
            for _dept, users in zip(bar, pages, strict=True):
                for user in users:
                    if user.userid not in employees:
                        employees[user.userid] = EmployeeRecord.from_user(user)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return employees


def load_mirror(session: Any) -> MirrorSnapshot:
    """Read the whole mirror as plain records (columns, not ORM objects, for speed)."""
    departments, deleted = {}, set()
    for dept in session.scalars(select(Department)):
        departments[dept.id] = dept_record_of(dept)
        if dept.deleted:
            deleted.add(dept.id)
    employees = {}
    for row in session.execute(select(*bulk.EMPLOYEE_COLUMNS)):
        employees[row.userid] = MirrorEmployee(row.id, record_of(row), row.updated_at)
    return MirrorSnapshot(departments, deleted, employees)


def run_full_sync(
    db: Database,
    client: WeComApi,
    clock: Clock,
    events: DomainEvents,
    policy: NamingPolicy,
    *,
    use_list_id: bool,
    dry_run: bool = False,
    progress: Progress = nullcontext,
) -> SyncReport:
    """Fetch, diff and (unless dry_run) apply in one transaction; WeCom errors change nothing."""
    started = wall.monotonic()
    calls_before = Counter(client.calls)
    fetched_at = clock.now()
    snapshot = fetch_snapshot(client, policy, use_list_id=use_list_id, progress=progress)
    fetched = wall.monotonic()
    changes = _apply(db, clock, events, snapshot, fetched_at, dry_run)
    calls = Counter(client.calls)
    calls.subtract(calls_before)
    return SyncReport(
        counts=changes.summary(),
        api_calls={path: n for path, n in sorted(calls.items()) if n},
        dry_run=dry_run,
        seconds=wall.monotonic() - started,
        departments=len(snapshot.departments),
        employees=len(snapshot.employees),
        tags=len(snapshot.tags),
        fetch_seconds=fetched - started,
        examples=_examples(changes),
    )


def _apply(
    db: Database,
    clock: Clock,
    events: DomainEvents,
    snapshot: WeComSnapshot,
    fetched_at: Any,
    dry_run: bool,
) -> DirectoryDiff:
    """Diff against the mirror and apply, in one transaction.

    A callback can add a department or a member between our read of the mirror and our
    insert; the transaction then fails on its unique key and is done again once, from a fresh
    read, so the sync lands whole instead of failing.
    """
    for tries_left in (1, 0):
        try:
            with db.begin() as session:
                changes = diff(load_mirror(session), snapshot, fetched_at)
                if not dry_run:
                    bulk.apply(session, clock, events, changes)
                    replace_tags(session, snapshot.tags)
                return changes
        except IntegrityError:
            if not tries_left:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _examples(changes: DirectoryDiff, limit: int = 20) -> dict[str, list[str]]:
    """A few userids per kind of change, so a dry run shows whom it would touch."""
    return {
        "added": [r.userid for r in changes.added[:limit]],
        "changed": [new.userid for _, new in changes.changed[:limit]],
        "departed": [m.record.userid for m in changes.departed[:limit]],
    }


def sync_services(
    services: Services,
    policy: NamingPolicy,
    *,
    dry_run: bool = False,
    progress: Progress = nullcontext,
    wait: bool = True,
) -> SyncReport:
    """Run a full sync with the app's database, client and clock, one at a time.

    With wait=False, raise SyncRunning at once when another sync holds the lock.
    """
    with services.db.exclusive(LOCK, wait=wait) as held:
        if not held:
            raise SyncRunning()
        return run_full_sync(
            services.db,
            services.client,
            services.clock,
            services.events,
            policy,
            use_list_id=bool(services.settings.secret("contacts_secret")),
            dry_run=dry_run,
            progress=progress,
        )


def nightly_full_sync(ctx: JobContext, *, policy: NamingPolicy) -> dict[str, Any]:
    """Repair whatever lost callbacks missed, every night at 02:00 (Asia/Shanghai)."""
    try:
        return sync_services(ctx.services, policy, wait=False).to_dict()
    except SyncRunning as exc:
        return {"skipped": str(exc)}
