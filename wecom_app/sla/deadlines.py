"""A receipt's one deadline, computed once, in working time, when its card is delivered.

Delivery calls `receipt_times` as WeCom accepts a card batch and stores both answers on each
receipt: `due_at` (`schedule.due_at`: sent time plus the SLA in working time) and `next_action_at`
(the first reminder point). Every later judgement (the card's "已收到（逾期）", the text reply, the
link page, the sweeper and the reports) reads that stored `due_at`; nothing recomputes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from wecom_app.models import Notice
from wecom_app.sla.config import SlaConfig
from wecom_app.sla.schedule import ReceiptClock, due_at, next_action


def receipt_times(
    notice: Notice, sent_at: datetime, config: SlaConfig
) -> tuple[datetime | None, datetime | None]:
    """(due_at, next_action_at) of a receipt delivered at `sent_at`; (None, None) without SLA."""
    if not notice.require_ack:
        return None, None
    state = ReceiptClock(sent_at, timedelta(minutes=notice.sla_minutes))
    policy = config.policies.for_type(notice.type)
    action = next_action(state, policy, config.calendar)
    due = due_at(sent_at, state.sla, config.calendar)
    return due, action.at if action else None
