"""Drain the inbox: lease pending events, fetch what their handlers need, handle each in its
own transaction, record the outcome.

Steps for one event, none of them holding a transaction across a WeCom call:

1. claim: a short transaction leases a few pending events to this worker (a token and a lease
   time in `available_at`; `FOR UPDATE SKIP LOCKED` on PostgreSQL);
2. fetch: if the event's route names a fetcher, it asks WeCom now, outside any transaction.
   WeCom unreachable, unanswering or refusing our secret is not the event's fault: the event
   waits (its attempt not counted) and, for a while, so do other events that need WeCom, so an
   outage never holds up events that do not (acks, departures);
3. handle: one transaction re-checks the lease, runs the handler, marks the event done. A
   handler that raises rolls back only its own event, which is retried with backoff and
   `failed` after MAX_ATTEMPTS.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from callbacks.dispatch import HandlerContext, HandlerTable
from callbacks.events import Event, TextMessage, parse_event
from callbacks.xmlparse import parse_xml
from wecom_app.errors import AppError, CredentialFailing, WeComNetworkError
from wecom_app.logs import working_on
from wecom_app.models import InboxEvent, InboxStatus
from wecom_app.services import Services

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
REDACTED = "<xml><Redacted>anonymous</Redacted></xml>"  # what an anonymous answer's row keeps
WECOM_AWAY = timedelta(seconds=15)  # how long events needing WeCom wait after it failed us


@dataclass(frozen=True)
class Claimed:
    """An inbox event leased to this worker."""

    id: int
    channel: str
    raw_xml: str
    received_at: datetime
    token: str


class InboxProcessor:
    """Handles inbox events for one worker, with the dispatch table it was given."""

    def __init__(self, services: Services, handlers: HandlerTable) -> None:
        self.services = services
        self.handlers = handlers
        self.db = services.db
        self.clock = services.clock
        self._wecom_away_until: datetime | None = None

    def claim(self, limit: int) -> list[Claimed]:
        """Lease up to `limit` pending events that are due, oldest first."""
        now = self.clock.now()
        token = secrets.token_hex(16)
        with self.db.begin() as session:
            query = (
                select(InboxEvent)
                .where(
                    InboxEvent.status == InboxStatus.PENDING,
                    or_(InboxEvent.available_at.is_(None), InboxEvent.available_at <= now),
                )
                .order_by(InboxEvent.id)
                .limit(limit)
            )
            if self.db.is_postgres:
                query = query.with_for_update(skip_locked=True)
            rows = list(session.scalars(query))
            for row in rows:
                row.lease_token = token
                row.available_at = now + self.services.tuning.inbox_lease
            return [Claimed(r.id, r.channel, r.raw_xml, r.received_at, token) for r in rows]

    def run_pending(self, limit: int | None = None) -> int:
        """Claim and handle one batch of due events; return how many were claimed."""
        batch = self.claim(limit or self.services.tuning.inbox_batch)
        for item in batch:
            self.process(item)
        return len(batch)

    def process(self, item: Claimed) -> str:
        """Fetch, handle and record one event; return what became of it (its log lines carry
        the id "inbox-<id>")."""
        with working_on(f"inbox-{item.id}"):
            return self._process(item)

    def _process(self, item: Claimed) -> str:
        try:
            event = parse_event(item.channel, parse_xml(item.raw_xml.encode("utf-8")))
        except AppError as exc:  # stored, but it will never parse: nothing to retry
            return self._finish(item, InboxStatus.FAILED, f"{type(exc).__name__}: {exc}")
        route = self.handlers.route_for(event)
        if route is None:
            log.warning("no handler for %s (inbox %s); kept as unhandled", event.route, item.id)
            return self._finish(item, InboxStatus.UNHANDLED, None)
        fetched: Any = None
        if route.fetch is not None:
            now = self.clock.now()
            if self._wecom_away_until is not None and now < self._wecom_away_until:
                return self._defer(item, self._wecom_away_until, "企业微信暂不可用，稍后处理")
            try:
                fetched = route.fetch(self.services.client, event)
            except (WeComNetworkError, CredentialFailing) as exc:
                self._wecom_away_until = now + WECOM_AWAY
                log.warning("inbox %s waits for WeCom: %s", item.id, exc)
                return self._defer(item, self._wecom_away_until, str(exc))
            except Exception as exc:  # the fetcher is part of the handler: count an attempt
                return self._failed_attempt(item, exc)
            self._wecom_away_until = None
        return self._handle(item, event, route.handler, fetched, route.anonymous)

    def _handle(
        self, item: Claimed, event: Event, handler: Any, fetched: Any, anonymous: bool = False
    ) -> str:
        """Run the handler in the event's own transaction and mark the event done.

        The lease is checked by the statement that marks the event done: a worker whose lease
        ran out (another took the event) rolls its handler's work back.
        """
        try:
            with self.db.begin() as session:
                ctx = HandlerContext(
                    session,
                    self.clock,
                    self.services.events,
                    inbox_id=item.id,
                    received_at=item.received_at,
                    fetched=fetched,
                )
                handler(ctx, event)
                marked = session.execute(
                    update(InboxEvent)
                    .where(
                        InboxEvent.id == item.id,
                        InboxEvent.lease_token == item.token,
                        InboxEvent.status == InboxStatus.PENDING,
                    )
                    .values(
                        status=InboxStatus.DONE,
                        attempts=InboxEvent.attempts + 1,
                        processed_at=self.clock.now(),
                        lease_token=None,
                        available_at=None,
                        error=None,
                        **(_redacted(event, item.id) if anonymous else {}),
                    )
                    .execution_options(synchronize_session=False)
                )
                if marked.rowcount != 1:  # type: ignore[attr-defined]
                    raise _LeaseLost()
                return InboxStatus.DONE
        except _LeaseLost:
            log.warning("inbox %s: lease lost; another worker handles it", item.id)
            return "lost"
        except Exception as exc:  # the dispatcher is one of the few places that catches broadly
            return self._failed_attempt(item, exc, event if anonymous else None)

    def _failed_attempt(self, item: Claimed, exc: Exception, anonymous: Event | None = None) -> str:
        """Count a failed attempt; retry later with backoff, or give up after MAX_ATTEMPTS.

        An anonymous event's failure is recorded by its type only (a database error's text can
        carry the answer), and once it gives up, the row keeps nothing of the sender either."""
        if anonymous is None:
            log.exception("handler failed for inbox %s", item.id, exc_info=exc)
            error = f"{type(exc).__name__}: {exc}"[:2000]
        else:
            log.warning("anonymous handler failed for inbox %s: %s", item.id, type(exc).__name__)
            error = f"{type(exc).__name__}（匿名事件，不记录内容）"
        with self.db.begin() as session:
            row = self._locked(session, item)
            if row is None:
                return "lost"
            row.attempts += 1
            row.error = error
            if row.attempts >= MAX_ATTEMPTS:
                self._close(row, InboxStatus.FAILED, row.error)
                if anonymous is not None:
                    for key, value in _redacted(anonymous, row.id).items():
                        setattr(row, key, value)
                return InboxStatus.FAILED
            row.lease_token = None
            row.available_at = self.clock.now() + timedelta(seconds=2**row.attempts)
            return "retry"

    def _defer(self, item: Claimed, until: datetime, reason: str) -> str:
        """Put an event back until `until` without counting an attempt."""
        with self.db.begin() as session:
            row = self._locked(session, item)
            if row is None:
                return "lost"
            row.lease_token, row.available_at, row.error = None, until, reason[:2000]
            return "deferred"

    def _finish(self, item: Claimed, status: str, error: str | None) -> str:
        with self.db.begin() as session:
            row = self._locked(session, item)
            if row is None:
                return "lost"
            row.attempts += 1
            self._close(row, status, error)
            return status

    def _close(self, row: InboxEvent, status: str, error: str | None) -> None:
        row.status, row.error = status, error
        row.lease_token, row.available_at = None, None
        row.processed_at = self.clock.now()

    def _locked(self, session: Any, item: Claimed) -> InboxEvent | None:
        """The event's row if this worker still holds its lease (locked on PostgreSQL)."""
        query = select(InboxEvent).where(
            InboxEvent.id == item.id,
            InboxEvent.lease_token == item.token,
            InboxEvent.status == InboxStatus.PENDING,
        )
        if self.db.is_postgres:
            query = query.with_for_update()
        row = session.scalars(query).one_or_none()
        if row is None:
            log.warning("inbox %s: lease lost; another worker handles it", item.id)
        return row


def _redacted(event: Event, inbox_id: int) -> dict[str, Any]:
    """What an anonymous event's row keeps: that it was handled. A text's key (its MsgId, which
    names nobody) stays so that WeCom's retries are still recognised; a card click's key names
    the clicker, and a retry of one is harmless (one answer per person), so it goes too."""
    keep: dict[str, Any] = {"raw_xml": REDACTED, "from_user": "", "subject": None}
    if not isinstance(event, TextMessage):
        keep.update(dedupe_key=f"redacted:{inbox_id}", create_time=0)
    return keep


class _LeaseLost(Exception):
    """The event's lease passed to another worker before this one could mark it done."""


def release(services: Services, items: list[Claimed]) -> None:
    """Give back events claimed but not handled (a stopping worker)."""
    if not items:
        return
    with services.db.begin() as session:
        for item in items:
            session.execute(
                update(InboxEvent)
                .where(InboxEvent.id == item.id, InboxEvent.lease_token == item.token)
                .values(lease_token=None, available_at=None)
            )
