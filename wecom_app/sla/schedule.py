"""When a receipt's next reminder or escalation is due: pure functions over plain data.

Reminder points are fractions of the SLA counted in working time from when the clock started
(default 50% and 100%, the deadline); escalation levels fire once the receipt is overdue by
their delay, also in working time. Every point is moved to the next working period if it falls
outside one, so nothing is ever sent in quiet hours. After downtime several points may have
passed: `due_actions` then yields one reminder (the latest) and the next escalation level, never
one message per missed point.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from wecom_app.sla.calendar import WorkingCalendar
from wecom_app.sla.policy import SlaPolicy

REMIND = "remind"
ESCALATE = "escalate"


@dataclass(frozen=True)
class ReceiptClock:
    """What the schedule needs to know about one receipt."""

    started_at: datetime  # when the card reached the person: the SLA clock starts here
    sla: timedelta
    reminded_count: int = 0  # reminder points already handled (sent or skipped on catch-up)
    escalation_level: int = 0  # escalation levels already handled
    open: bool = True  # False once acknowledged, excluded, invalid or cancelled


@dataclass(frozen=True)
class Action:
    """One thing to do: a reminder (number is 1-based) or an escalation level (1-based)."""

    kind: str
    at: datetime
    number: int


def due_at(started_at: datetime, sla: timedelta, calendar: WorkingCalendar) -> datetime:
    """The deadline: the first working instant once `sla` of working time has passed since the
    clock started (where that lands as working time ends, Friday 22:00, it is Monday 07:30: no
    working time lies between, so an answer in between is on time)."""
    return calendar.next_allowed(calendar.add_working_time(started_at, sla))


def reminder_times(
    state: ReceiptClock, policy: SlaPolicy, cal: WorkingCalendar
) -> tuple[datetime, ...]:
    """When each reminder point may be sent (in working time)."""
    return _points(state.started_at, state.sla, policy, cal)[0]


def escalation_times(
    state: ReceiptClock, policy: SlaPolicy, cal: WorkingCalendar
) -> tuple[datetime, ...]:
    """When each escalation level may be sent (in working time)."""
    return _points(state.started_at, state.sla, policy, cal)[1]


@functools.lru_cache(maxsize=4096)  # receipts of one notice share their points
def _points(
    started_at: datetime, sla: timedelta, policy: SlaPolicy, cal: WorkingCalendar
) -> tuple[tuple[datetime, ...], tuple[datetime, ...]]:
    reminders = tuple(
        cal.next_allowed(cal.add_working_time(started_at, sla * frac)) for frac in policy.reminders
    )
    deadline = due_at(started_at, sla, cal)
    escalations = tuple(
        cal.next_allowed(cal.add_working_time(deadline, level.after)) for level in policy.escalation
    )
    return reminders, escalations


def next_action(state: ReceiptClock, policy: SlaPolicy, cal: WorkingCalendar) -> Action | None:
    """The receipt's next reminder or escalation, whichever comes first; None when done."""
    if not state.open:
        return None
    candidates = []
    reminders = reminder_times(state, policy, cal)
    if state.reminded_count < len(reminders):
        n = state.reminded_count
        candidates.append(Action(REMIND, reminders[n], n + 1))
    escalations = escalation_times(state, policy, cal)
    if state.escalation_level < len(escalations):
        n = state.escalation_level
        candidates.append(Action(ESCALATE, escalations[n], n + 1))
    if not candidates:
        return None
    return min(candidates, key=lambda a: (a.at, a.kind != REMIND))


def due_actions(
    state: ReceiptClock, policy: SlaPolicy, cal: WorkingCalendar, now: datetime
) -> list[Action]:
    """What to do now: at most one reminder (the latest passed point) and one escalation level."""
    if not state.open:
        return []
    actions = []
    passed = sum(1 for at in reminder_times(state, policy, cal) if at <= now)
    if passed > state.reminded_count:
        actions.append(Action(REMIND, now, passed))
    escalations = escalation_times(state, policy, cal)
    level = state.escalation_level
    if level < len(escalations) and escalations[level] <= now:
        actions.append(Action(ESCALATE, now, level + 1))
    return actions


def after(state: ReceiptClock, actions: list[Action]) -> ReceiptClock:
    """The receipt's state once the given actions are done."""
    for action in actions:
        if action.kind == REMIND:
            state = replace(state, reminded_count=max(state.reminded_count, action.number))
        else:
            state = replace(state, escalation_level=max(state.escalation_level, action.number))
    return state
