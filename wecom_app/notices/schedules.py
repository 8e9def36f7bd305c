"""Notices sent at a time or on a schedule, in Beijing time, on the working calendar.

A schedule holds a notice as the API takes it (title, body, type, audience, its own SLA) and a
rule: once at a date and time; daily; weekly on chosen weekdays; monthly on a day of the month.
What a public holiday does is the rule's `holidays`: `skip` (no 09:00 check-in on 国庆),
`next_working_day` (the 1st-of-the-month notice goes out on the first working day after), or
`send` (every day means every day). A 调休 working Saturday counts as a working day.

The worker's `notices.schedules` job sends each due schedule as a notice of its own (naming the
schedule) and moves `next_run_at` to the first slot after now, in the same transaction: a slot
is never sent twice, and a worker that was down for several slots sends one run when it is
back, not one per missed slot.
"""

from __future__ import annotations

import calendar as monthdays
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from wecom_app import checks
from wecom_app.clock import BEIJING
from wecom_app.jobs import JobContext
from wecom_app.models import NoticeSchedule, ScheduleStatus
from wecom_app.notices import service
from wecom_app.sla.calendar import WorkingCalendar
from wecom_app.sla.policy import PolicyBook

log = logging.getLogger(__name__)

KINDS = ("once", "daily", "weekly", "monthly")
HOLIDAYS = ("skip", "next_working_day", "send")
DEFAULT_HOLIDAYS = {
    "once": "send",
    "daily": "skip",
    "weekly": "skip",
    "monthly": "next_working_day",
}
WEEKDAYS = "一二三四五六日"
HORIZON = 800  # days looked ahead for the next slot (a rule that never fires is refused)
EVERY = timedelta(seconds=20)
BATCH = 20  # schedules sent per transaction pass
RULE_KEYS = {"kind", "at", "date", "weekdays", "day", "holidays"}


class ScheduleError(service.NoticeError):
    """A schedule that cannot be stored or changed; the message is for the user (Chinese)."""


@dataclass(frozen=True)
class Rule:
    """When a schedule fires: a Beijing time of day on the dates its kind picks."""

    kind: str
    at: time
    holidays: str
    on: date | None = None  # once
    weekdays: tuple[int, ...] = ()  # weekly: 1 = Monday … 7 = Sunday
    day: int | None = None  # monthly: 1-31, the month's last day when it is shorter

    @classmethod
    def parse(cls, data: Any) -> Rule:
        """Read a rule from the API's JSON, e.g. {"kind": "daily", "at": "09:00"}."""
        if not isinstance(data, dict):
            raise ScheduleError('schedule 必须是对象，例如 {"kind": "daily", "at": "09:00"}')
        extra = set(data) - RULE_KEYS
        if extra:
            raise ScheduleError(f"schedule 中有未知字段：{', '.join(sorted(extra))}")
        kind = data.get("kind")
        if kind not in KINDS:
            raise ScheduleError(f"schedule.kind 须为 {' / '.join(KINDS)} 之一")
        at = _time_of_day(data.get("at", "09:00"))
        holidays = data.get("holidays", DEFAULT_HOLIDAYS[kind])
        if holidays not in HOLIDAYS:
            raise ScheduleError(f"schedule.holidays 须为 {' / '.join(HOLIDAYS)} 之一")
        on: date | None = None
        weekdays: tuple[int, ...] = ()
        day: int | None = None
        if kind == "once":
            try:
                on = date.fromisoformat(str(data.get("date", "")))
            except ValueError:
                raise ScheduleError('一次性发送须写日期，例如 "date": "2026-12-05"') from None
        if kind == "weekly":
            raw = data.get("weekdays")
            if not isinstance(raw, list) or not raw:
                raise ScheduleError('每周发送须写星期，例如 "weekdays": [1]（1 为周一，7 为周日）')
            weekdays = tuple(sorted({checks.integer(w, "schedule.weekdays", 1, 7) for w in raw}))
        if kind == "monthly":
            day = checks.integer(data.get("day"), "schedule.day（每月几号）", 1, 31)
        return cls(kind, at, holidays, on, weekdays, day)

    def to_dict(self) -> dict[str, Any]:
        """The rule as stored and as the API shows it."""
        out: dict[str, Any] = {"kind": self.kind, "at": self.at.strftime("%H:%M"),
                               "holidays": self.holidays}  # fmt: skip
        if self.on is not None:
            out["date"] = self.on.isoformat()
        if self.weekdays:
            out["weekdays"] = list(self.weekdays)
        if self.day is not None:
            out["day"] = self.day
        return out

    def describe(self) -> str:
        """The rule as people say it, e.g. 每个工作日 09:00."""
        at = self.at.strftime("%H:%M")
        holiday = {"skip": "，节假日不发", "next_working_day": "，遇节假日顺延到下一个工作日",
                   "send": ""}[self.holidays]  # fmt: skip
        if self.kind == "once":
            return f"{self.on} {at} 发送一次"
        if self.kind == "daily":
            return f"每个工作日 {at}" if self.holidays == "skip" else f"每天 {at}{holiday}"
        if self.kind == "weekly":
            days = "、".join(f"周{WEEKDAYS[w - 1]}" for w in self.weekdays)
            return f"每{days} {at}{holiday}"
        return f"每月 {self.day} 日 {at}{holiday}"

    def next_after(self, after: datetime, cal: WorkingCalendar) -> datetime | None:
        """The first slot strictly after `after`, or None when there is none (a one-off
        that has passed)."""
        start = after.astimezone(BEIJING).date()
        if self.kind == "once":
            assert self.on is not None
            slot = self._at(self._moved(self.on, cal))
            return slot if slot > after else None
        for offset in range(-7, HORIZON):  # a week back: a slot moved past a holiday
            candidate = start + timedelta(days=offset)
            if not self._picks(candidate):
                continue
            if self.holidays == "skip" and not cal.is_working_day(candidate):
                continue
            slot = self._at(self._moved(candidate, cal))
            if slot > after:
                return slot
        return None

    def _picks(self, day: date) -> bool:
        if self.kind == "daily":
            return True
        if self.kind == "weekly":
            return day.isoweekday() in self.weekdays
        assert self.day is not None
        return day.day == min(self.day, monthdays.monthrange(day.year, day.month)[1])

    def _moved(self, day: date, cal: WorkingCalendar) -> date:
        if self.holidays != "next_working_day":
            return day
        for _ in range(60):
            if cal.is_working_day(day):
                return day
            day += timedelta(days=1)
        return day

    def _at(self, day: date) -> datetime:
        return datetime.combine(day, self.at, tzinfo=BEIJING)


def _time_of_day(value: Any) -> time:
    try:
        parsed = time.fromisoformat(str(value))
    except ValueError:
        raise ScheduleError(
            f'schedule.at 须为北京时间的时刻，例如 "09:00"，而不是 {value!r}'
        ) from None
    return parsed.replace(second=0, microsecond=0, tzinfo=None)


@dataclass(frozen=True)
class Spec:
    """A validated schedule request: a name, the notice to send, and when."""

    name: str
    notice: dict[str, Any]
    rule: Rule


def spec_from(data: Any, policies: PolicyBook, *, partial_of: NoticeSchedule | None = None) -> Spec:
    """Validate {"name", "notice": {...as POST /notices...}, "schedule": {...rule...}}; with
    `partial_of`, missing parts keep that schedule's (an edit)."""
    if not isinstance(data, dict):
        raise ScheduleError("请求必须是 JSON 对象")
    extra = set(data) - {"name", "notice", "schedule"}
    if extra:
        raise ScheduleError(f"未知字段：{', '.join(sorted(extra))}；可用 name、notice、schedule")
    notice = data.get("notice", partial_of.notice if partial_of else None)
    if not isinstance(notice, dict):
        raise ScheduleError("notice 必须是对象：与 POST /api/v1/notices 的请求相同")
    service.draft_from(notice, policies)  # the notice is checked now, not at 09:00 tomorrow
    raw_rule = data.get("schedule", partial_of.rule if partial_of else None)
    rule = Rule.parse(raw_rule)
    default = partial_of.name if partial_of else str(notice.get("title", ""))
    name = checks.text(data.get("name", default), "name", 64) or default
    return Spec(name=name[:64], notice=dict(notice), rule=rule)


def create(
    session: Session, spec: Spec, now: datetime, cal: WorkingCalendar, by: str = ""
) -> NoticeSchedule:
    """Store a schedule; it is refused if its rule has no slot to come."""
    row = NoticeSchedule(name=spec.name, notice=spec.notice, rule=spec.rule.to_dict(),
                         status=ScheduleStatus.ACTIVE, runs=0, created_by=by[:64],
                         created_at=now, updated_at=now)  # fmt: skip
    row.next_run_at = _first(spec.rule, now, cal)
    session.add(row)
    session.flush()
    return row


def update(
    session: Session, row: NoticeSchedule, spec: Spec, now: datetime, cal: WorkingCalendar
) -> None:
    """Change a schedule's notice, rule or name; its next slot follows the new rule."""
    _live(row)
    row.name, row.notice, row.rule = spec.name, spec.notice, spec.rule.to_dict()
    if row.status == ScheduleStatus.ACTIVE:
        row.next_run_at = _first(spec.rule, now, cal)
    row.updated_at = now


def pause(session: Session, row: NoticeSchedule, now: datetime) -> None:
    """Stop sending until resumed."""
    _live(row)
    row.status, row.next_run_at, row.updated_at = ScheduleStatus.PAUSED, None, now


def resume(session: Session, row: NoticeSchedule, now: datetime, cal: WorkingCalendar) -> None:
    """Send again from the next slot after now (slots passed while paused are not sent)."""
    _live(row)
    row.next_run_at = _first(Rule.parse(row.rule), now, cal)
    row.status, row.updated_at = ScheduleStatus.ACTIVE, now


def delete(session: Session, row: NoticeSchedule, now: datetime) -> None:
    """Stop for good; the row stays, since its runs are notices in the ledger."""
    row.status, row.next_run_at, row.updated_at = ScheduleStatus.DELETED, None, now


def get(session: Session, ident: int | str) -> NoticeSchedule:
    """A schedule by id, or ScheduleError (not found)."""
    try:
        found = session.get(NoticeSchedule, int(ident))
    except (TypeError, ValueError):
        found = None
    if found is None or found.status == ScheduleStatus.DELETED:
        raise ScheduleError(f"没有编号为 {ident} 的定时通知")
    return found


def listed(session: Session) -> list[NoticeSchedule]:
    """Every schedule not deleted, by next slot."""
    query = select(NoticeSchedule).where(NoticeSchedule.status != ScheduleStatus.DELETED)
    rows = list(session.scalars(query.order_by(NoticeSchedule.id)))
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(rows, key=lambda r: (r.next_run_at or far, r.id))


def to_dict(row: NoticeSchedule) -> dict[str, Any]:
    """A schedule for the API and CLI (times in ISO 8601 and, for people, Beijing)."""
    rule = Rule.parse(row.rule)
    return {
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "schedule": row.rule,
        "describe": rule.describe(),
        "next_run_at": _iso(row.next_run_at),
        "next_run": _beijing(row.next_run_at),
        "last_run_at": _iso(row.last_run_at),
        "last_notice_id": row.last_notice_id,
        "last_error": row.last_error,
        "runs": row.runs,
        "notice": row.notice,
        "created_by": row.created_by,
    }


def run_due(ctx: JobContext, *, cal: WorkingCalendar, policies: PolicyBook) -> dict[str, Any]:
    """The job: send every schedule whose slot has come, each as a notice of its own."""
    services = ctx.services
    sent = failed = 0
    while not ctx.stopping.is_set():
        now = services.clock.now()
        with services.db.begin() as session:
            due = list(
                session.scalars(
                    select(NoticeSchedule)
                    .where(
                        NoticeSchedule.status == ScheduleStatus.ACTIVE,
                        NoticeSchedule.next_run_at <= now,
                    )
                    .order_by(NoticeSchedule.next_run_at)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            for row in due:
                if _send(session, row, now, cal, policies):
                    sent += 1
                else:
                    failed += 1
        if len(due) < BATCH:
            break
    return {"sent": sent, "failed": failed}


def _send(
    session: Session, row: NoticeSchedule, now: datetime, cal: WorkingCalendar, policies: PolicyBook
) -> bool:
    """One run: the notice, and the next slot after now; a notice that cannot be sent (its
    sender left, a type was removed) is recorded on the schedule, which goes on."""
    rule = Rule.parse(row.rule)
    ok = True
    try:
        with session.begin_nested():
            draft = service.draft_from(row.notice, policies)
            notice, _ = service.create(session, draft, now, cal=cal)
            notice.schedule_id = row.id
        row.last_notice_id, row.last_error, row.runs = notice.id, None, row.runs + 1
        log.info("schedule %s sent as notice %s", row.id, notice.code)
    except service.NoticeError as exc:
        row.last_error, ok = f"{now.astimezone(BEIJING):%Y-%m-%d %H:%M} {exc}", False
        log.warning("schedule %s could not be sent: %s", row.id, exc)
    row.last_run_at = now
    row.next_run_at = rule.next_after(now, cal)
    if row.next_run_at is None:
        row.status = ScheduleStatus.DONE
    return ok


def _first(rule: Rule, now: datetime, cal: WorkingCalendar) -> datetime:
    slot = rule.next_after(now, cal)
    if slot is None:
        raise ScheduleError("这个时间已经过去，或规则在两年内不会触发：请检查日期和时刻")
    return slot


def _live(row: NoticeSchedule) -> None:
    if row.status == ScheduleStatus.DONE:
        raise ScheduleError(f"定时通知 {row.id} 已发送完毕（一次性），无法再修改")


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _beijing(at: datetime | None) -> str | None:
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") if at else None
