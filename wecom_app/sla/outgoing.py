"""Turning the sweeper's decisions into outbox messages: grouped reminders and leader digests.

Idempotency keys name the notice, the reminder number or escalation level, and the smallest
receipt id in the group: a receipt gets each number once (its counters change in the same
transaction), so the key is unique to one send, and a retried transaction makes the same key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from wecom_app.models import Notice, OutboxMessage, OutboxStatus
from wecom_app.notices import pacing
from wecom_app.sla import messages
from wecom_app.sla.config import SlaConfig
from wecom_app.sla.decisions import Decision
from wecom_app.sla.escalation import Person
from wecom_app.sla.schedule import REMIND

MAX_TOUSER = 1000
DUPLICATE_CHECK = 4 * 3600  # seconds: WeCom's maximum


def send_reminders(
    out: Outgoing,
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
            send_key = f"sla:remind:{notice_id}:{number}:{chunk[0][0]}"
            out.send(msg, userids, send_key, now, slot, "sla_reminder")
            sent += 1
    return sent


def send_digests(
    session: Session,
    out: Outgoing,
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
        out.send(msg, [leader], key, now, slot, "sla_escalation")
    return len(groups)


class Outgoing:
    """Messages and ledger rows collected during a sweep, written in a few statements."""

    def __init__(self) -> None:
        self.outbox: list[dict[str, Any]] = []
        self.ledger: list[tuple[str, datetime, str]] = []

    def send(
        self, msg: dict[str, Any], userids: list[str], key: str, now: datetime, slot: datetime,
        kind: str,
    ) -> None:  # fmt: skip
        """Queue one message_send and count it against each recipient's limit at `slot`."""
        payload = {"msg": msg, "touser": userids, "duplicate_check_interval": DUPLICATE_CHECK}
        self.outbox.append(
            {"kind": "message_send", "lane": "default", "idempotency_key": key[:255],
             "payload": payload, "ref_type": "sla", "ref_id": key.split(":", 2)[2][:64],
             "status": OutboxStatus.PENDING, "attempts": 0, "created_at": now,
             "next_attempt_at": slot}
        )  # fmt: skip
        self.ledger += [(u, slot, kind) for u in userids]

    def flush(self, session: Session) -> None:
        """Write the outbox rows (skipping known idempotency keys) and the ledger rows."""
        postgres = session.get_bind().dialect.name == "postgresql"
        insert = pg_insert if postgres else sqlite_insert
        for start in range(0, len(self.outbox), 500):
            rows = self.outbox[start : start + 500]
            session.execute(
                insert(OutboxMessage)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
            )
        if self.ledger and postgres:
            userids, ats, kinds = (list(col) for col in zip(*self.ledger, strict=True))
            session.execute(LEDGER_SQL, {"userids": userids, "ats": ats, "kinds": kinds})
        elif self.ledger:
            by_slot: dict[tuple[datetime, str], list[str]] = defaultdict(list)
            for userid, at, kind in self.ledger:
                by_slot[(at, kind)].append(userid)
            for (at, kind), userids in by_slot.items():
                pacing.reserve(session, userids, at, kind)
        self.outbox, self.ledger = [], []


LEDGER_SQL = text(
    "INSERT INTO member_sends (userid, at, kind) SELECT * FROM unnest("
    "CAST(:userids AS varchar[]), CAST(:ats AS timestamptz[]), CAST(:kinds AS varchar[]))"
)
