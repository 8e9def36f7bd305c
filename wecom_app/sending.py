"""Sending queued writes: lease a row just before performing it, perform, record under the lease.

What the outcomes mean and which writes may be repeated is described in `wecom_app.outbox`;
this is the machinery that claims, renews, releases and records, for one worker.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from wecom_app import holds
from wecom_app.logs import working_on
from wecom_app.models import Hold, OutboxMessage, OutboxStatus
from wecom_app.outbox import (
    MAX_ATTEMPTS,
    Attempt,
    Claimed,
    OutboxKinds,
    Outcome,
    backoff,
    classify,
)
from wecom_app.services import Services

log = logging.getLogger(__name__)

ORPHANED = "工作进程在调用企业微信期间中断，无法确认是否已执行，未重发"
HOLDS_TTL = 1.0  # seconds a worker trusts its copy of the holds another worker may change


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
        """Perform and record one claimed row (its log lines carry the id "outbox-<id>")."""
        with working_on(f"outbox-{claimed.id}"):
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
