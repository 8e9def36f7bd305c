"""Drain the inbox: claim pending events, dispatch each to its handler, record the outcome."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from callbacks.dispatch import HandlerContext, dispatch
from callbacks.events import parse_event
from callbacks.xmlparse import parse_xml
from wecom_app.clock import Clock
from wecom_app.db import Database
from wecom_app.models import InboxEvent, InboxStatus

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


def process_pending(db: Database, clock: Clock, services: Any = None, batch: int = 200) -> int:
    """Process up to `batch` pending events in one transaction; return how many were handled."""
    with db.begin() as session:
        query = (
            select(InboxEvent)
            .where(InboxEvent.status == InboxStatus.PENDING)
            .order_by(InboxEvent.id)
            .limit(batch)
        )
        if db.is_postgres:
            query = query.with_for_update(skip_locked=True)
        rows = list(session.scalars(query))
        for row in rows:
            ctx = HandlerContext(session, clock, services, row.id)
            _process_one(ctx, row)
        return len(rows)


def _process_one(ctx: HandlerContext, row: InboxEvent) -> None:
    """Dispatch one row inside a savepoint so a failing handler undoes only its own work."""
    row.attempts += 1
    try:
        with ctx.session.begin_nested():
            event = parse_event(row.channel, parse_xml(row.raw_xml.encode("utf-8")))
            handled = dispatch(ctx, event)
    except Exception as exc:  # the dispatcher is one of the few places that catches broadly
        log.exception("handler failed for inbox %s (attempt %s)", row.id, row.attempts)
        row.error = f"{type(exc).__name__}: {exc}"[:2000]
        if row.attempts >= MAX_ATTEMPTS:
            row.status = InboxStatus.FAILED
            row.processed_at = ctx.clock.now()
        return
    row.status = InboxStatus.DONE if handled else InboxStatus.UNHANDLED
    row.processed_at = ctx.clock.now()
    row.error = None
