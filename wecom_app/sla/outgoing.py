"""Turning the sweeper's decisions into outbox messages: grouped reminders and leader digests.

Idempotency keys name the notice, the reminder number or escalation level, and the smallest
receipt id in the group: a receipt gets each number once (its counters change in the same
transaction), so the key is unique to one send, and a retried transaction makes the same key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.orm import Session

from wecom_app.models import Notice
from wecom_app.notices import pacing
from wecom_app.outbox import enqueue
from wecom_app.sla import messages
from wecom_app.sla.config import SlaConfig
from wecom_app.sla.escalation import Person
from wecom_app.sla.schedule import REMIND

if TYPE_CHECKING:
    from wecom_app.sla.sweeper import Decision

MAX_TOUSER = 1000
DUPLICATE_CHECK_SECONDS = 4 * 3600


def send_reminders(
    session: Session,
    decisions: Sequence[Decision],
    notices: dict[int, Notice],
    now: datetime,
    config: SlaConfig,
) -> int:
    """Enqueue one send per (notice, reminder number, deadline, slot); return how many."""
    groups: dict[tuple[int, int, datetime, datetime], list[tuple[int, str]]] = defaultdict(list)
    for d in decisions:
        for action in d.actions:
            if action.kind == REMIND and d.slot is not None:
                key = (d.row.notice_id, action.number, d.due, d.slot)
                groups[key].append((d.row.id, d.person.userid))
    sent = 0
    for (notice_id, number, due, slot), members in sorted(groups.items()):
        notice = notices[notice_id]
        msg = messages.reminder(notice.title, notice.code, due, now >= due, config.calendar.tz)
        for start in range(0, len(members), MAX_TOUSER):
            chunk = members[start : start + MAX_TOUSER]
            userids = [u for _, u in chunk]
            _send(
                session, msg, userids, f"sla:remind:{notice_id}:{number}:{chunk[0][0]}", now, slot
            )
            reserve(session, userids, slot, "sla_reminder")
            sent += 1
    return sent


def send_digests(
    session: Session,
    decisions: Sequence[Decision],
    notices: dict[int, Notice],
    people: dict[int, Person],
    now: datetime,
    config: SlaConfig,
) -> int:
    """Enqueue one digest per (notice, level, leader) listing that leader's overdue people."""
    groups: dict[tuple[int, int, str], list[tuple[int, str, datetime]]] = defaultdict(list)
    for d in decisions:
        levels = [a.number for a in d.actions if a.kind != REMIND]
        for leader in d.targets if levels else []:
            groups[(d.row.notice_id, levels[0], leader)].append(
                (d.row.id, d.person.display_name, d.due)
            )
    if not groups:
        return 0
    history = pacing.history(session, {leader for _, _, leader in groups}, now)
    for (notice_id, level, leader), overdue in sorted(groups.items()):
        notice = notices[notice_id]
        overdue.sort()
        listed = [(name, due) for _, name, due in overdue]
        msg = messages.digest(notice.title, notice.code, level, listed, config.calendar.tz)
        sent = history.setdefault(leader, [])
        slot = config.calendar.next_allowed(pacing.earliest_slot(sent, now) if sent else now)
        sent.append(slot)
        key = f"sla:escalate:{notice_id}:{level}:{leader}:{overdue[0][0]}"
        _send(session, msg, [leader], key, now, slot)
        pacing.reserve(session, [leader], slot, "sla_escalation")
    return len(groups)


def reserve(session: Session, userids: list[str], at: datetime, kind: str) -> None:
    """Record planned sends in the shared per-member ledger (one statement on PostgreSQL)."""
    if session.get_bind().dialect.name != "postgresql":
        pacing.reserve(session, userids, at, kind)
        return
    session.execute(
        text(
            "INSERT INTO member_sends (userid, at, kind)"
            " SELECT u, :at, :kind FROM unnest(CAST(:userids AS varchar[])) AS u"
        ),
        {"userids": userids, "at": at, "kind": kind},
    )


def _send(
    session: Session, msg: dict, userids: list[str], key: str, now: datetime, slot: datetime
) -> None:
    enqueue(
        session,
        "message_send",
        {"msg": msg, "touser": userids, "duplicate_check_interval": DUPLICATE_CHECK_SECONDS},
        key,
        now=now,
        ref=("sla", key.split(":", 2)[2][:64]),
        not_before=slot,
    )
