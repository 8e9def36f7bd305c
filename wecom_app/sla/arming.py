"""Starting the SLA clock of freshly delivered receipts under the working calendar.

Delivery records `sent_at` when WeCom accepts a card batch. Arming then sets the receipt's
`due_at` by working time and its `next_action_at` to the first reminder point. It reads the
card batches the outbox finished recently (through the `done_at` index) and touches only
receipts that are still unarmed, so it is cheap and idempotent; a receipt that somehow escapes
it is still handled by the sweeper when its `next_action_at` comes, with catch-up.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from wecom_app.models import Notice, OutboxMessage, OutboxStatus, Receipt, ReceiptState
from wecom_app.sla.config import SlaConfig
from wecom_app.sla.decisions import SweepResult
from wecom_app.sla.schedule import ReceiptClock, next_action

LOOKBACK = timedelta(minutes=15)
BATCH_REF = "notice_batch"  # the outbox ref type of notice card batches


def sla_times(
    notice: Notice, sent_at: datetime, config: SlaConfig
) -> tuple[datetime, datetime | None]:
    """A freshly sent receipt's (due_at, next_action_at) under the working calendar."""
    state = ReceiptClock(sent_at, timedelta(minutes=notice.sla_minutes))
    policy = config.policies.for_type(None)  # notices have no type yet
    action = next_action(state, policy, config.calendar)
    due = config.calendar.add_working_time(sent_at, state.sla)
    return due, action.at if action else None


def arm_recent(session: Session, now: datetime, config: SlaConfig) -> SweepResult:
    """Arm the unarmed receipts of card batches finished within LOOKBACK."""
    refs = session.scalars(
        select(OutboxMessage.ref_id).where(
            OutboxMessage.done_at > now - LOOKBACK,
            OutboxMessage.ref_type == BATCH_REF,
            OutboxMessage.status == OutboxStatus.DONE,
        )
    ).all()
    batches = sorted({tuple(int(p) for p in ref.split(":")) for ref in refs if ref})
    updates: list[dict[str, Any]] = []
    notices: dict[int, Notice | None] = {}
    for notice_id, batch in batches:
        if notice_id not in notices:
            notices[notice_id] = session.get(Notice, notice_id)
        notice = notices[notice_id]
        if notice is None or not notice.require_ack:
            continue
        rows = session.execute(
            select(Receipt.id, Receipt.sent_at).where(
                Receipt.notice_id == notice_id,
                Receipt.batch == batch,
                Receipt.state == ReceiptState.SENT,
                Receipt.excluded.is_(False),
                Receipt.reminded_count == 0,
                Receipt.escalation_level == 0,
                Receipt.next_action_at == Receipt.due_at,  # as delivery leaves it: unarmed
            )
        ).all()
        for rid, sent_at in rows:
            if sent_at is None:
                continue
            due, next_at = sla_times(notice, sent_at, config)
            updates.append({"id": rid, "due_at": due, "next_action_at": next_at})
    if updates:
        session.execute(update(Receipt), updates)
    return SweepResult(armed=len(updates))
