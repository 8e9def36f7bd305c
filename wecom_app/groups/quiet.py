"""Quiet hours in the managed groups that ask for them (`quiet_hours: true`).

At the start of the calendar's quiet hours (22:00 by default) the app posts a short reminder
into each such group ("22:00 至次日 07:30 为休息时间，请勿群聊"), and it posts nothing of its own
inside them: a departure's explanation or a notice posted to the group waits for the end of
quiet hours, unless the notice's type is marked `urgent` in the policy file. Removing someone
who left is not a post and is never delayed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from wecom_app.jobs import JobContext
from wecom_app.models import ManagedGroup
from wecom_app.outbox import enqueue
from wecom_app.sla.calendar import WorkingCalendar

log = logging.getLogger(__name__)

LATE = timedelta(minutes=30)  # a reminder later than this after the start is not sent at all
REF = "group_quiet"


def in_quiet(cal: WorkingCalendar, at: datetime) -> bool:
    """Whether an instant falls in the calendar's quiet hours."""
    start, end = cal.quiet_start, cal.quiet_end
    if start is None or end is None:
        return False
    local = at.astimezone(cal.tz).time()
    return local >= start or local < end if start > end else start <= local < end


def quiet_ends(cal: WorkingCalendar, at: datetime) -> datetime:
    """When the quiet hours `at` falls in are over."""
    assert cal.quiet_start is not None and cal.quiet_end is not None
    local = at.astimezone(cal.tz)
    day = local.date()
    if cal.quiet_start > cal.quiet_end and local.time() >= cal.quiet_start:
        day += timedelta(days=1)  # 22:00-07:30: after 22:00 it ends tomorrow morning
    return datetime.combine(day, cal.quiet_end, tzinfo=cal.tz)


def post_after(
    session: Session, chatid: str, now: datetime, cal: WorkingCalendar | None, urgent: bool
) -> datetime | None:
    """When the app may post its own message into a group: None for now, else the end of
    quiet hours (a group with quiet hours, inside them, and the message not urgent)."""
    if cal is None or urgent or not in_quiet(cal, now):
        return None
    quiet = session.scalar(select(ManagedGroup.quiet_hours).where(ManagedGroup.chatid == chatid))
    return quiet_ends(cal, now) if quiet else None


def reminder_text(cal: WorkingCalendar) -> str:
    """The reminder, with this deployment's hours."""
    assert cal.quiet_start is not None and cal.quiet_end is not None
    start, end = cal.quiet_start.strftime("%H:%M"), cal.quiet_end.strftime("%H:%M")
    overnight = "次日 " if cal.quiet_start > cal.quiet_end else ""
    return f"{start} 至{overnight}{end} 为休息时间，请勿群聊。"


def remind(ctx: JobContext, *, cal: WorkingCalendar) -> dict[str, Any]:
    """The job at the start of quiet hours: the reminder into each group that asks for it;
    a worker that comes back long after the start sends none (it would break the quiet)."""
    if cal.quiet_start is None or cal.quiet_end is None:
        return {"posted": 0}
    services = ctx.services
    now = services.clock.now()
    local = now.astimezone(cal.tz)
    started = datetime.combine(local.date(), cal.quiet_start, tzinfo=cal.tz)
    if not started <= now <= started + LATE:
        log.info("quiet-hours reminder skipped: %s is not just after %s", local, cal.quiet_start)
        return {"posted": 0, "skipped": True}
    text = reminder_text(cal)
    posted = 0
    with services.db.begin() as session:
        groups = session.scalars(
            select(ManagedGroup).where(
                ManagedGroup.quiet_hours.is_(True), ManagedGroup.status == "active"
            )
        )
        for group in groups:
            msg = {"msgtype": "text", "text": {"content": text}}
            payload = {"chatid": group.chatid, "msg": msg}
            key = f"groups:quiet:{group.chatid}:{local.date().isoformat()}"
            posted += enqueue(session, "appchat_send", payload, key, now=now,
                              ref=(REF, str(group.id)))  # fmt: skip
    return {"posted": posted}
