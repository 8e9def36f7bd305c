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
This module says what a write is and how it is queued; `wecom_app.sending.Outbox` sends them.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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
from wecom_app.models import OutboxMessage, OutboxStatus
from wecom_app.wecom.api import WeComApi

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
# Refusals that pass: WeCom busy, and tokens the client could not refresh in time.
RETRYABLE = frozenset({-1, 40014, 41001, 42001})
HOLDING = frozenset({holds.FREQUENCY_LIMIT, holds.CONCURRENCY_LIMIT})
GETTOKEN = "/cgi-bin/gettoken"


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
