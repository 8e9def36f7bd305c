"""Transactional outbox: every WeCom write is queued with its cause and performed once.

A write is queued (`enqueue`) in the transaction that decides it. A worker leases a row just
before performing it: a short transaction gives the row a fresh `lease_token` and moves
`next_attempt_at` a lease into the future; the call runs outside any transaction while a
heartbeat renews the lease; the outcome is recorded only under the same token, so a worker whose
lease ran out can neither record the row nor have it performed a second time by someone else.

The outbox is the only place writes are retried (the client sends a write once):

- done: WeCom accepted it; the kind's result handler updates the domain.
- retry: WeCom was unreachable (nothing sent) or refused for the moment (-1, a stale token):
  again after a backoff, at most MAX_ATTEMPTS attempts in all.
- no answer: the request went out and nothing came back. A kind that WeCom deduplicates (a card
  with its task_id, a group created with its chatid) or that is idempotent (member changes) is
  sent again, and the performer knows an earlier attempt may have landed. Anything else (a text
  to a group, a plain text message) is recorded `unknown` with what was sent, never repeated.
  A row found with an expired lease (its worker died mid-call) counts as no answer.
- hold: 45009 / 45033 / a refused secret: the row stays pending, its attempt not counted, and the
  lane or credential waits (`wecom_app.holds`).
- failed: WeCom refused it for good, attempts ran out, or the result handler itself failed.

Lanes pace writes under WeCom's hourly limits (e.g. 1000 group changes per hour per corp).
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from wecom_app import holds
from wecom_app.errors import (
    ConfigError,
    CredentialFailing,
    WeComError,
    WeComNoAnswer,
    WeComUnreachable,
)
from wecom_app.holds import HoldRequest
from wecom_app.models import Hold, OutboxMessage, OutboxStatus
from wecom_app.services import Services
from wecom_app.wecom.api import WeComApi

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
# Refusals that pass: WeCom busy, and tokens the client could not refresh in time.
RETRYABLE = frozenset({-1, 40014, 41001, 42001})
HOLDING = frozenset({holds.FREQUENCY_LIMIT, holds.CONCURRENCY_LIMIT})
GETTOKEN = "/cgi-bin/gettoken"
ORPHANED = "工作进程在调用企业微信期间中断，无法确认是否已执行，未重发"
HOLDS_TTL = 1.0  # seconds a worker trusts its copy of the holds another worker may change


@dataclass(frozen=True)
class Attempt:
    """What a performer knows about the attempt it makes."""

    number: int
    after_no_answer: bool  # an earlier attempt went out and got no answer: it may have landed


Performer = Callable[[WeComApi, dict[str, Any], Attempt], dict[str, Any] | None]


def never(_payload: dict[str, Any]) -> bool:
    """A write WeCom would perform twice if sent twice."""
    return False


def always(_payload: dict[str, Any]) -> bool:
    """A write that is safe to send again (idempotent, or deduplicated by WeCom)."""
    return True


@dataclass(frozen=True)
class Kind:
    """One kind of write: how to perform it, with which secret, and whether it may be repeated
    after an attempt that got no answer."""

    name: str
    perform: Performer
    credential: str = "app"
    repeatable: Callable[[dict[str, Any]], bool] = never


@dataclass(frozen=True)
class Lane:
    """A pacing rule: at most `limit` completed writes per `window` in this lane."""

    limit: int
    window: timedelta


@dataclass(frozen=True)
class Outcome:
    """What happened to one attempt."""

    status: str  # done, retry, failed, unknown, hold
    result: dict[str, Any] | None = None
    errcode: int | None = None
    error: str | None = None
    hold: HoldRequest | None = None
    no_answer: bool = False

    @property
    def ok(self) -> bool:
        """Whether WeCom accepted the write."""
        return self.status == "done"


ResultHandler = Callable[[Session, OutboxMessage, Outcome], None]


@dataclass
class OutboxKinds:
    """The kinds of write, their result handlers and the lanes that pace them."""

    kinds: dict[str, Kind] = field(default_factory=dict)
    results: dict[str, ResultHandler] = field(default_factory=dict)
    lanes: dict[str, Lane] = field(default_factory=dict)

    def add_kind(self, kind: Kind) -> None:
        """Add a kind of write; a second one of the same name is refused."""
        if kind.name in self.kinds:
            raise ValueError(f"outbox kind {kind.name!r} registered twice")
        self.kinds[kind.name] = kind

    def on_result(self, kind: str, fn: ResultHandler) -> None:
        """Say what to record in the domain when a write of this kind finishes."""
        if kind in self.results:
            raise ValueError(f"outbox result handler for {kind!r} registered twice")
        self.results[kind] = fn

    def add_lane(self, name: str, lane: Lane) -> None:
        """Pace a lane (a later call replaces its limit: tests and tuning)."""
        self.lanes[name] = lane


@dataclass(frozen=True)
class Claimed:
    """A row leased to this worker: what to perform, and the token to record it with."""

    id: int
    kind: str
    lane: str
    payload: dict[str, Any]
    token: str
    attempt: Attempt
    due: datetime  # when it was due before the lease: a hold puts it back in this place
    orphaned: bool = False  # found with an expired lease: its last attempt got no answer


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
            unanswered=0,
            created_at=now,
            next_attempt_at=not_before or now,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    return session.execute(stmt.returning(OutboxMessage.id)).first() is not None


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter: 5 s, 10 s, 20 s ... capped at 15 minutes."""
    base = min(5 * 2 ** max(attempts - 1, 0), 900)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))


def classify(kind: Kind | None, payload: dict[str, Any], lane: str, exc: Exception) -> Outcome:
    """Turn a performer's failure into what the outbox does next (pure)."""
    if isinstance(exc, CredentialFailing):
        scope = holds.credential_scope(exc.credential)
        hold = HoldRequest(scope, exc.errcode, exc.reason, exc.retry_at)
        return Outcome("hold", errcode=exc.errcode, error=exc.reason, hold=hold)
    if isinstance(exc, WeComUnreachable):
        return Outcome("retry", errcode=exc.errcode, error=str(exc))
    if isinstance(exc, WeComNoAnswer):
        repeat = kind is not None and kind.repeatable(payload)
        return Outcome("retry" if repeat else "unknown", error=str(exc), no_answer=True)
    if isinstance(exc, WeComError):
        if exc.errcode in HOLDING:
            credential = kind.credential if kind else "app"
            scope = (
                holds.credential_scope(credential)
                if exc.api == GETTOKEN
                else holds.lane_scope(lane)
            )
            reason = _HOLD_REASONS[exc.errcode]
            hold = HoldRequest(scope, exc.errcode, reason)
            return Outcome("hold", errcode=exc.errcode, error=str(exc), hold=hold)
        status = "retry" if exc.errcode in RETRYABLE else "failed"
        return Outcome(status, errcode=exc.errcode, error=str(exc))
    if isinstance(exc, ConfigError):
        return Outcome("failed", error=str(exc))
    return Outcome("failed", error=f"{type(exc).__name__}: {exc}"[:2000])


_HOLD_REASONS = {
    holds.FREQUENCY_LIMIT: "企业微信接口调用超过频率限制（45009），暂停至限制窗口结束",
    holds.CONCURRENCY_LIMIT: "企业微信接口并发调用超过限制（45033），稍后继续",
}


class Outbox:
    """Claims, performs and records writes for one worker, with the kinds it was given."""

    def __init__(self, services: Services, kinds: OutboxKinds) -> None:
        self.services = services
        self.kinds = kinds
        self.db = services.db
        self.clock = services.clock
        self.lease = services.tuning.outbox_lease
        self.prints = holds.fingerprints(services.settings)
        self._held: list[Hold] = []
        self._held_until = 0.0  # time.monotonic() when the cached holds are to be read again

    # -- claiming ---------------------------------------------------------------------------

    def claim(self, limit: int = 1, *, only: int | None = None) -> list[Claimed]:
        """Lease up to `limit` due rows (or the row `only`), respecting lanes and holds.

        Lane budgets are counted only for the paced lanes among the rows found; a lane found
        exhausted is left out and the query asked again, so its backlog hides nothing else.
        """
        now = self.clock.now()
        with self.db.begin() as session:
            blocked_lanes, blocked_kinds = self._blocked(session, now)
            budgets: dict[str, int] = {}
            for _ in range(len(self.kinds.lanes) + 1):
                rows = self._due(session, now, limit, blocked_lanes, blocked_kinds, only)
                paced = {m.lane for m in rows if m.lane in self.kinds.lanes} - set(budgets)
                if paced:
                    budgets.update(self._budgets(session, now, paced))
                usable = []
                for msg in rows:
                    if msg.lane in budgets:
                        if budgets[msg.lane] <= 0:
                            continue
                        budgets[msg.lane] -= 1
                    usable.append(msg)
                exhausted = {m.lane for m in rows if budgets.get(m.lane, 1) <= 0}
                if usable or not exhausted - blocked_lanes:
                    return [self._lease(msg, now) for msg in usable]
                blocked_lanes |= exhausted
            return []

    def _due(
        self,
        session: Session,
        now: datetime,
        limit: int,
        blocked_lanes: set[str],
        blocked_kinds: set[str],
        only: int | None,
    ) -> list[OutboxMessage]:
        """Due rows outside the blocked lanes and kinds, oldest first, locked on PostgreSQL."""
        query = (
            select(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at <= now,
                OutboxMessage.attempts < MAX_ATTEMPTS,
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
        )
        if blocked_lanes:
            query = query.where(OutboxMessage.lane.not_in(blocked_lanes))
        if blocked_kinds:
            query = query.where(OutboxMessage.kind.not_in(blocked_kinds))
        if only is not None:
            query = query.where(OutboxMessage.id == only)
        if self.db.is_postgres:
            query = query.with_for_update(skip_locked=True)
        return list(session.scalars(query))

    def _lease(self, msg: OutboxMessage, now: datetime) -> Claimed:
        """Give one row to this worker."""
        orphaned = msg.lease_token is not None  # the last holder never recorded its call
        if orphaned:
            msg.unanswered += 1
        token = secrets.token_hex(16)
        due = msg.next_attempt_at
        msg.lease_token, msg.next_attempt_at = token, now + self.lease
        msg.attempts += 1
        msg.last_attempt_at = now
        attempt = Attempt(msg.attempts, after_no_answer=msg.unanswered > 0)
        payload = dict(msg.payload)
        return Claimed(msg.id, msg.kind, msg.lane, payload, token, attempt, due, orphaned)

    def _holds(self, session: Session) -> list[Hold]:
        """Every hold row, read at most once per HOLDS_TTL (they change rarely)."""
        if self._held_until < time.monotonic():
            self._held = holds.all_holds(session)
            for hold in self._held:
                session.expunge(hold)
            self._held_until = time.monotonic() + HOLDS_TTL
        return self._held

    def _forget_holds(self) -> None:
        self._held_until = 0.0

    def _blocked(self, session: Session, now: datetime) -> tuple[set[str], set[str]]:
        """Lanes and kinds that live holds keep waiting."""
        lanes: set[str] = set()
        credentials: set[str] = set()
        live = [h for h in self._holds(session) if h.until > now]
        for hold in holds.applying(live, self.prints):
            kind, _, name = hold.scope.partition(":")
            (lanes if kind == "lane" else credentials).add(name)
        kinds = {k.name for k in self.kinds.kinds.values() if k.credential in credentials}
        return lanes, kinds

    def _budgets(self, session: Session, now: datetime, lanes: set[str]) -> dict[str, int]:
        """How many more writes each of these paced lanes may start now: done in its window
        and in flight right now both count.

        Two grouped, index-backed counts for all lanes of one window length: finished in the
        window (done_at), and leased right now (status, next_attempt_at); the leased ones are
        few. One OR over both used neither index.
        """
        paced = {name: self.kinds.lanes[name] for name in lanes}
        budgets = {name: lane.limit for name, lane in paced.items()}
        by_window: dict[timedelta, list[str]] = {}
        for name, lane in paced.items():
            by_window.setdefault(lane.window, []).append(name)
        for window, names in by_window.items():
            done = session.execute(
                select(OutboxMessage.lane, func.count())
                .where(OutboxMessage.done_at > now - window, OutboxMessage.lane.in_(names))
                .group_by(OutboxMessage.lane)
            )
            for name, count in done:
                budgets[name] -= count
        in_flight = session.execute(
            select(OutboxMessage.lane, func.count())
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at > now,
                OutboxMessage.lease_token.is_not(None),
                OutboxMessage.lane.in_(list(paced)),
            )
            .group_by(OutboxMessage.lane)
        )
        for name, count in in_flight:
            if name in budgets:
                budgets[name] -= count
        return {name: max(0, left) for name, left in budgets.items()}

    def renew(self, tokens: Iterable[str]) -> int:
        """Extend the leases of rows still in flight; return how many were extended."""
        wanted = list(tokens)
        if not wanted:
            return 0
        with self.db.begin() as session:
            result = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.lease_token.in_(wanted),
                    OutboxMessage.status == OutboxStatus.PENDING,
                )
                .values(next_attempt_at=self.clock.now() + self.lease)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def release(self, claimed: Iterable[Claimed]) -> None:
        """Give back rows claimed but not started (a stopping worker): not an attempt."""
        with self.db.begin() as session:
            for item in claimed:
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == item.id, OutboxMessage.lease_token == item.token)
                    .values(
                        lease_token=None,
                        next_attempt_at=item.due,
                        attempts=OutboxMessage.attempts - 1,
                    )
                )

    # -- performing and recording -----------------------------------------------------------

    def perform(self, claimed: Claimed) -> Outcome:
        """Make the call for one claimed row and classify what happened."""
        kind = self.kinds.kinds.get(claimed.kind)
        if claimed.orphaned and not (kind and kind.repeatable(claimed.payload)):
            return Outcome("unknown", error=ORPHANED, no_answer=True)
        if kind is None:
            return Outcome("failed", error=f"no performer for kind {claimed.kind!r}")
        try:
            result = kind.perform(self.services.client, claimed.payload, claimed.attempt)
        except Exception as exc:  # every failure is classified; none escapes the worker
            return classify(kind, claimed.payload, claimed.lane, exc)
        return Outcome("done", result=result or {})

    def record(self, claimed: Claimed, outcome: Outcome) -> bool:
        """Store an attempt's outcome under its lease; False when the lease was lost."""
        if outcome.status != "done":
            level = logging.INFO if outcome.status == "hold" else logging.WARNING
            log.log(level, "outbox %s %s attempt %s: %s %s", claimed.id, claimed.kind,
                    claimed.attempt.number, outcome.status, outcome.error)  # fmt: skip
        try:
            return self._record(claimed, outcome)
        except Exception as exc:  # a result handler failed: the write is over, say so
            log.exception("outbox %s: recording the outcome failed", claimed.id)
            self._fail_recording(claimed, exc)
            return True

    def _record(self, claimed: Claimed, outcome: Outcome) -> bool:
        now = self.clock.now()
        with self.db.begin() as session:
            msg = session.get(OutboxMessage, claimed.id, with_for_update=self.db.is_postgres)
            if msg is None or msg.lease_token != claimed.token:
                log.warning("outbox %s: lease lost before recording; left to its holder",
                            claimed.id)  # fmt: skip
                return False
            msg.lease_token = None
            msg.errcode, msg.last_error = outcome.errcode, outcome.error
            if outcome.no_answer:
                msg.unanswered += 0 if claimed.orphaned else 1
            status = outcome.status
            if status == "retry" and msg.attempts >= MAX_ATTEMPTS:
                status = "failed"
            if status == "hold":
                assert outcome.hold is not None
                holds.place(session, outcome.hold, now, self.prints)
                self._forget_holds()
                msg.attempts -= 1  # WeCom asked us to wait: not an attempt
                # The hold keeps the whole lane waiting; the row keeps its place in the queue,
                # so writes to one group still go in the order they were decided.
                msg.next_attempt_at = claimed.due
                return True
            if status == "retry":
                msg.next_attempt_at = now + backoff(msg.attempts)
                return True
            msg.status = {"done": OutboxStatus.DONE, "unknown": OutboxStatus.UNKNOWN}.get(
                status, OutboxStatus.FAILED
            )
            msg.done_at = now
            if status == "done":
                msg.result = outcome.result
                self._clear_holds(session, msg, now)
            handler = self.kinds.results.get(msg.kind)
            if handler is not None:
                handler(session, msg, outcome if status == outcome.status else _final(outcome))
            return True

    def _clear_holds(self, session: Session, msg: OutboxMessage, now: datetime) -> None:
        """A success ends the holds of its lane and credential that have run out."""
        kind = self.kinds.kinds.get(msg.kind)
        scopes = {holds.lane_scope(msg.lane)}
        if kind is not None:
            scopes.add(holds.credential_scope(kind.credential))
        if any(h.scope in scopes for h in self._held):
            holds.clear(session, list(scopes), now)
            self._forget_holds()

    def _fail_recording(self, claimed: Claimed, exc: Exception) -> None:
        """Mark a row failed because recording its outcome raised (its handler is not rerun)."""
        with self.db.begin() as session:
            msg = session.get(OutboxMessage, claimed.id, with_for_update=self.db.is_postgres)
            if msg is None or msg.lease_token != claimed.token:
                return
            msg.lease_token, msg.status, msg.done_at = None, OutboxStatus.FAILED, self.clock.now()
            msg.last_error = f"结果处理失败：{type(exc).__name__}: {exc}"[:2000]

    def run(self, claimed: Claimed) -> Outcome:
        """Perform and record one claimed row."""
        outcome = self.perform(claimed)
        self.record(claimed, outcome)
        return outcome

    def drain(self, limit: int = 50) -> int:
        """Claim and run due writes one at a time, up to `limit`; return how many were run."""
        done = 0
        while done < limit:
            batch = self.claim(1)
            if not batch:
                break
            self.run(batch[0])
            done += 1
        return done

    def perform_now(self, msg_id: int) -> Outcome | None:
        """Run one queued row at once (a CLI waiting for its write); None if it is not due."""
        batch = self.claim(1, only=msg_id)
        return self.run(batch[0]) if batch else None


def _final(outcome: Outcome) -> Outcome:
    """A retry that ran out of attempts, as its result handler sees it."""
    return Outcome("failed", errcode=outcome.errcode, error=outcome.error)
