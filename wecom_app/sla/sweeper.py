"""The SLA sweeper: finds receipts whose next reminder or escalation is due and does it, once.

Due receipts are found through the `next_action_at` index only, claimed with
`FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite serialises writers), and each one's counters, its
next `next_action_at` and the outbox messages it causes are written in one transaction, so two
sweepers, a restart or a repeated sweep never send a reminder twice or skip one. Reminders of one
notice due together go as one send (≤ 1000 recipients); leaders get one digest per notice. Every
message is paced under WeCom's per-member limit through the shared `member_sends` ledger, and
nothing is sent outside working time.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select, text, update
from sqlalchemy.orm import Session

from wecom_app.db import Database
from wecom_app.jobs import JobContext
from wecom_app.models import Notice, NoticeStatus, Receipt, ReceiptState
from wecom_app.notices import pacing
from wecom_app.sla.config import SlaConfig
from wecom_app.sla.decisions import Decision, SweepResult
from wecom_app.sla.escalation import Person, org_view, people_by_id
from wecom_app.sla.outgoing import Outgoing, send_digests, send_reminders
from wecom_app.sla.schedule import (
    REMIND,
    Action,
    ReceiptClock,
    after,
    due_actions,
    due_at,
    next_action,
)

log = logging.getLogger(__name__)

UPDATE_KEYS = ("id", "next_action_at", "due_at", "reminded_count", "escalation_level")

BATCH = 20_000
MAX_PASSES = 20
SEND_TOLERANCE = timedelta(minutes=1)  # how long a reminder may wait for the member limit

CLAIM_COLUMNS = (
    Receipt.id,
    Receipt.notice_id,
    Receipt.employee_id,
    Receipt.department_id,
    Receipt.state,
    Receipt.excluded,
    Receipt.sent_at,
    Receipt.due_at,
    Receipt.reminded_count,
    Receipt.escalation_level,
)


def claim_query(now: datetime, limit: int = BATCH, postgres: bool = False) -> Any:
    """Due receipts in order, through the `next_action_at` index; locked when on PostgreSQL."""
    query = (
        select(*CLAIM_COLUMNS)
        .where(Receipt.next_action_at <= now)
        .order_by(Receipt.next_action_at)
        .limit(limit)
    )
    return query.with_for_update(skip_locked=True) if postgres else query


def claim_due(session: Session, now: datetime, limit: int = BATCH) -> list[Row[Any]]:
    """Lock (skipping rows other sweepers hold) up to `limit` receipts due by `now`."""
    postgres = session.get_bind().dialect.name == "postgresql"
    return list(session.execute(claim_query(now, limit, postgres)))


def sweep(session: Session, now: datetime, config: SlaConfig, limit: int = BATCH) -> SweepResult:
    """One pass: claim due receipts, decide, enqueue messages and store the new schedule."""
    result = SweepResult()
    rows = claim_due(session, now, limit)
    result.claimed = len(rows)
    if not rows:
        return result
    ids = {r.notice_id for r in rows}
    notices = {n.id: n for n in session.scalars(select(Notice).where(Notice.id.in_(ids)))}
    people = people_by_id(session, (r.employee_id for r in rows))
    updates: list[dict[str, Any]] = []
    decisions: list[Decision] = []
    for row in rows:
        decision = _decide(
            row, notices.get(row.notice_id), people.get(row.employee_id), now, config
        )
        if isinstance(decision, Decision):
            decisions.append(decision)
        else:
            updates.append(decision)
            result.closed += decision["next_action_at"] is None
            result.postponed += decision["next_action_at"] is not None
    _pace_reminders(session, decisions, now, config)
    _resolve_targets(session, decisions, people)
    for d in decisions:
        updates.append(_schedule_next(d, config, result))
    out = Outgoing()
    result.messages += send_reminders(out, decisions, notices, now, config)
    result.messages += send_digests(session, out, decisions, notices, people, now, config)
    out.flush(session)
    store(session, updates)
    result.still_due = sum(1 for u in updates if u["next_action_at"] and u["next_action_at"] <= now)
    return result


def _decide(
    row: Row[Any], notice: Notice | None, person: Person | None, now: datetime, config: SlaConfig
) -> Decision | dict[str, Any]:
    """A receipt's due actions, or the update that closes or postpones it."""
    if notice is None or person is None or not _open(row, notice, person):
        return _update(row, None, row.due_at)
    cal = config.calendar
    policy = config.policies.for_type(notice.type)
    state = ReceiptClock(
        row.sent_at, timedelta(minutes=notice.sla_minutes), row.reminded_count, row.escalation_level
    )
    due = row.due_at or due_at(row.sent_at, state.sla, cal)  # set once, at delivery
    if not cal.is_working_time(now):
        return _update(row, cal.next_allowed(now), due)
    return Decision(row, person, state, policy, due, due_actions(state, policy, cal, now))


def _open(row: Row[Any], notice: Notice, person: Person) -> bool:
    """Whether a receipt still runs an SLA clock."""
    return bool(
        person.active
        and notice.require_ack
        and notice.status == NoticeStatus.ACTIVE
        and row.state == ReceiptState.SENT
        and not row.excluded
        and row.sent_at is not None
    )


def _pace_reminders(
    session: Session, decisions: list[Decision], now: datetime, config: SlaConfig
) -> None:
    """Give each reminder a send slot under the member limit, or postpone the receipt."""
    wanted = [d for d in decisions if any(a.kind == REMIND for a in d.actions)]
    if not wanted:
        return
    history = pacing.history(session, [d.person.userid for d in wanted], now)
    for d in wanted:
        sent = history.setdefault(d.person.userid, [])
        slot = pacing.earliest_slot(sent, now) if sent else now
        if slot > now + SEND_TOLERANCE or not config.calendar.is_working_time(slot):
            d.actions = []  # try again once the member has room (escalation waits too)
            d.slot = config.calendar.next_allowed(slot)
            continue
        d.slot = slot
        sent.append(slot)


def _resolve_targets(
    session: Session, decisions: list[Decision], people: dict[int, Person]
) -> None:
    """Find who each escalation goes to, skipping levels that have no active leader."""
    escalating = [d for d in decisions if any(a.kind != REMIND for a in d.actions)]
    if not escalating:
        return
    org = org_view(session, [d.person for d in escalating])
    for d in escalating:
        for i, action in enumerate(d.actions):
            if action.kind == REMIND:
                continue
            targets, level = org.targets(
                d.person, d.row.department_id, d.policy.escalation, action.number - 1
            )
            d.targets = targets
            d.actions[i] = Action(action.kind, action.at, level)


def _schedule_next(d: Decision, config: SlaConfig, result: SweepResult) -> dict[str, Any]:
    """Count what the decision does and compute the receipt's next action time."""
    if not d.actions and d.slot is not None:
        result.postponed += 1
        return _update(d.row, d.slot, d.due)
    result.reminded += sum(1 for a in d.actions if a.kind == REMIND)
    result.escalated += 1 if d.targets else 0
    new_state = after(d.state, d.actions)
    nxt = next_action(new_state, d.policy, config.calendar)
    return _update(
        d.row, nxt.at if nxt else None, d.due, new_state.reminded_count, new_state.escalation_level
    )


def _update(
    row: Row[Any],
    next_at: datetime | None,
    due: datetime | None,
    reminded: int | None = None,
    level: int | None = None,
) -> dict[str, Any]:
    return {
        "id": row.id,
        "next_action_at": next_at,
        "due_at": due,
        "reminded_count": row.reminded_count if reminded is None else reminded,
        "escalation_level": row.escalation_level if level is None else level,
    }


def store(session: Session, updates: list[dict[str, Any]]) -> None:
    """Write receipts' new schedules; on PostgreSQL one UPDATE ... FROM unnest(arrays)."""
    if not updates:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(update(Receipt), updates)
        return
    columns = {k: [u[k] for u in updates] for k in UPDATE_KEYS}
    session.execute(STORE_SQL, columns)


STORE_SQL = text(
    "UPDATE notice_receipts AS r SET next_action_at = n.next_action_at, due_at = n.due_at,"
    " reminded_count = n.reminded_count, escalation_level = n.escalation_level"
    " FROM unnest(CAST(:id AS bigint[]), CAST(:next_action_at AS timestamptz[]),"
    " CAST(:due_at AS timestamptz[]), CAST(:reminded_count AS integer[]),"
    " CAST(:escalation_level AS integer[]))"
    " AS n(id, next_action_at, due_at, reminded_count, escalation_level)"
    " WHERE r.id = n.id"
)


def sweep_all(db: Database, now: datetime, config: SlaConfig, batch: int = BATCH) -> SweepResult:
    """Sweep in transactions of `batch` receipts until nothing is due at `now`."""
    total = SweepResult()
    for _ in range(MAX_PASSES):
        with db.begin() as session:
            result = sweep(session, now, config, batch)
        total.add(result)
        if result.claimed < batch and not result.still_due:
            break
    return total


def sweep_job(ctx: JobContext, *, config: SlaConfig) -> dict[str, Any]:
    """Send due SLA reminders and escalations (every minute)."""
    result = sweep_all(ctx.services.db, ctx.services.clock.now(), config)
    if result.claimed:
        log.info("sla sweep %s", result)
    return asdict(result)
