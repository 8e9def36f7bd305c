"""Transactional outbox: enqueue WeCom writes with their cause, perform them later, exactly once.

Claiming is lease-based: a worker moves a due row's `next_attempt_at` a lease into the future in
a short transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL), performs the call outside any
transaction, then records the outcome. A worker that dies mid-call leaves the row to come due
again after the lease; WeCom's duplicate check and our idempotency keys keep that from doubling.
Lanes pace writes under WeCom's hourly limits (e.g. 1000 group changes per hour per corp).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from wecom_app.clock import Clock
from wecom_app.db import Database
from wecom_app.errors import WeComError, WeComNetworkError
from wecom_app.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 10
RETRYABLE = {-1, 45009, 45033, 42001, 40014}

Performer = Callable[[Any, dict[str, Any]], dict[str, Any] | None]
ResultHandler = Callable[[Session, OutboxMessage, "Outcome"], None]
_PERFORMERS: dict[str, Performer] = {}
_RESULT_HANDLERS: dict[str, ResultHandler] = {}


@dataclass(frozen=True)
class Lane:
    """A pacing rule: at most `limit` completed writes per `window` in this lane."""

    limit: int
    window: timedelta


LANES: dict[str, Lane] = {"appchat": Lane(950, timedelta(hours=1))}


@dataclass(frozen=True)
class Outcome:
    """What happened to one attempt: the result, or the error and whether it is final."""

    ok: bool
    result: dict[str, Any] | None = None
    errcode: int | None = None
    error: str | None = None
    final: bool = True


def performer(kind: str) -> Callable[[Performer], Performer]:
    """Register the function that performs one kind of write with the WeCom client."""

    def register(fn: Performer) -> Performer:
        if kind in _PERFORMERS:
            raise RuntimeError(f"outbox kind {kind!r} registered twice")
        _PERFORMERS[kind] = fn
        return fn

    return register


def on_result(kind: str) -> Callable[[ResultHandler], ResultHandler]:
    """Register what to record in the domain when a write of this kind finishes."""

    def register(fn: ResultHandler) -> ResultHandler:
        if kind in _RESULT_HANDLERS:
            raise RuntimeError(f"outbox result handler for {kind!r} registered twice")
        _RESULT_HANDLERS[kind] = fn
        return fn

    return register


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    key: str,
    *,
    now: datetime,
    lane: str = "default",
    ref: tuple[str, str] | None = None,
    not_before: datetime | None = None,
) -> bool:
    """Queue a write unless one with the same idempotency key exists; return whether it is new."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(OutboxMessage)
        .values(
            kind=kind,
            lane=lane,
            idempotency_key=key[:255],
            payload=payload,
            ref_type=ref[0] if ref else None,
            ref_id=ref[1] if ref else None,
            status=OutboxStatus.PENDING,
            attempts=0,
            created_at=now,
            next_attempt_at=not_before or now,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    return session.execute(stmt.returning(OutboxMessage.id)).first() is not None


def claim(db: Database, clock: Clock, batch: int = 50) -> list[OutboxMessage]:
    """Lease up to `batch` due messages to this worker, respecting lane limits."""
    now = clock.now()
    with db.begin() as session:
        budgets = {name: _lane_budget(session, name, lane, now) for name, lane in LANES.items()}
        # An exhausted lane's backlog must not hide other writes queued behind it.
        exhausted = [name for name, left in budgets.items() if left <= 0]
        query = (
            select(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at <= now,
                OutboxMessage.lane.not_in(exhausted),
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(batch)
        )
        if db.is_postgres:
            query = query.with_for_update(skip_locked=True)
        claimed = []
        for msg in session.scalars(query):
            if msg.lane in budgets:
                if budgets[msg.lane] <= 0:
                    continue
                budgets[msg.lane] -= 1
            msg.next_attempt_at = now + LEASE
            msg.attempts += 1
            claimed.append(msg)
        return claimed


def _lane_budget(session: Session, name: str, lane: Lane, now: datetime) -> int:
    """How many more writes the lane may start now: done or in flight in the window count.

    Two index-backed counts: finished in the window (lane, done_at), and leased right now
    (status, next_attempt_at) — the latter are few, and one OR over both used neither index.
    """
    done = session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.lane == name, OutboxMessage.done_at > now - lane.window)
    )
    in_flight = session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.next_attempt_at > now,
            OutboxMessage.lane == name,
            OutboxMessage.attempts > 0,
        )
    )
    return max(0, lane.limit - (done or 0) - (in_flight or 0))


def perform(client: Any, msg: OutboxMessage) -> Outcome:
    """Run one message's performer and classify what happened."""
    fn = _PERFORMERS.get(msg.kind)
    if fn is None:
        return Outcome(False, errcode=None, error=f"no performer for kind {msg.kind!r}")
    try:
        return Outcome(True, result=fn(client, msg.payload) or {})
    except WeComNetworkError as exc:
        return Outcome(False, errcode=exc.errcode, error=str(exc), final=False)
    except WeComError as exc:
        return Outcome(
            False, errcode=exc.errcode, error=str(exc), final=exc.errcode not in RETRYABLE
        )


def record(db: Database, clock: Clock, msg_id: int, outcome: Outcome) -> None:
    """Store an attempt's outcome and let the domain react, in one transaction."""
    now = clock.now()
    with db.begin() as session:
        msg = session.get(OutboxMessage, msg_id, with_for_update=db.is_postgres)
        if msg is None or msg.status != OutboxStatus.PENDING:
            return
        msg.errcode, msg.last_error = outcome.errcode, outcome.error
        if outcome.ok:
            msg.status, msg.done_at, msg.result = OutboxStatus.DONE, now, outcome.result
        elif outcome.final or msg.attempts >= MAX_ATTEMPTS:
            msg.status, msg.done_at = OutboxStatus.FAILED, now
        else:
            msg.next_attempt_at = now + backoff(msg.attempts)
            return
        handler = _RESULT_HANDLERS.get(msg.kind)
        if handler is not None:
            handler(session, msg, outcome)


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter: 5 s, 10 s, 20 s ... capped at 15 minutes."""
    base = min(5 * 2 ** max(attempts - 1, 0), 900)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))


def drain(db: Database, client: Any, clock: Clock, batch: int = 50) -> int:
    """Claim, perform and record one batch of due writes; return how many were attempted."""
    messages = claim(db, clock, batch)
    for msg in messages:
        outcome = perform(client, msg)
        if not outcome.ok:
            log.warning(
                "outbox %s %s attempt %s failed: %s", msg.id, msg.kind, msg.attempts, outcome.error
            )
        record(db, clock, msg.id, outcome)
    return len(messages)
