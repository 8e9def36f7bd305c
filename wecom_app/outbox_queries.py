"""Reads over the outbox for people: counts, holds, and the writes whose outcome is unknown."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wecom_app import holds
from wecom_app.models import OutboxMessage, OutboxStatus


def summary(session: Session, now: datetime) -> dict[str, Any]:
    """Writes by kind and status, the oldest pending one, and every hold."""
    counts = [
        {"kind": kind, "lane": lane, "status": status, "count": count}
        for kind, lane, status, count in session.execute(
            select(OutboxMessage.kind, OutboxMessage.lane, OutboxMessage.status, func.count())
            .group_by(OutboxMessage.kind, OutboxMessage.lane, OutboxMessage.status)
            .order_by(OutboxMessage.kind, OutboxMessage.status)
        )
    ]
    oldest = session.scalar(
        select(func.min(OutboxMessage.created_at)).where(
            OutboxMessage.status == OutboxStatus.PENDING
        )
    )
    in_flight = session.scalar(
        select(func.count()).where(
            OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.lease_token.is_not(None)
        )
    )
    return {
        "counts": counts,
        "oldest_pending_seconds": round((now - oldest).total_seconds()) if oldest else None,
        "in_flight": in_flight or 0,
        "holds": [hold_dict(h, now) for h in holds.all_holds(session)],
    }


def hold_dict(hold: Any, now: datetime) -> dict[str, Any]:
    """A hold as people read it."""
    return {"scope": hold.scope, "errcode": hold.errcode, "reason": hold.reason,
            "since": hold.since, "until": hold.until, "live": hold.until > now,
            "strikes": hold.strikes}  # fmt: skip


def rows(session: Session, status: str, limit: int = 50) -> list[dict[str, Any]]:
    """Writes in one status, newest first, with what was sent and what came back."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == status)
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    return [
        {"id": m.id, "kind": m.kind, "lane": m.lane, "key": m.idempotency_key,
         "ref": f"{m.ref_type}:{m.ref_id}" if m.ref_type else None, "attempts": m.attempts,
         "unanswered": m.unanswered, "errcode": m.errcode, "error": m.last_error,
         "created_at": m.created_at, "last_attempt_at": m.last_attempt_at, "done_at": m.done_at,
         "payload": m.payload}
        for m in session.scalars(query)
    ]  # fmt: skip
