"""The working calendar: when the SLA clock runs and when the app may ping people.

The rule, in one place: **working time** is every instant whose local date is a working day and
whose local time lies outside the quiet hours and, when working hours are configured, inside
them. The SLA clock counts only working time, so a notice sent at 21:50 with a 30-minute SLA
spends 10 minutes before 22:00 and the other 20 after 07:30 on the next working day (07:50).
Reminders and escalations are sent only in working time too: anything that falls outside is
postponed to the start of the next working period (`next_allowed`).

Working days are Monday to Friday (configurable), minus Chinese public holidays, plus the
adjusted working days (调休) that the State Council announces, both from `chinese-calendar`; a
company's override file adds its own holidays and working days, which win over everything.

`chinese-calendar` knows the years up to its release (1.11: 2026). For a later year the State
Council's schedule is entered in the file's `official_schedule` (holidays and 调休 working days
of that year); a year neither knows is *not covered*: it is counted as Monday to Friday, and
`coverage` says so, for the start-up warning, /healthz, the daily check and `sla due-at`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chinese_calendar import constants as cn_days

from wecom_app.sla.yamlfile import YamlFile, check_keys

log = logging.getLogger(__name__)

CACHE_SIZE = 100_000
MAX_DAYS = 3660  # how far add_working_time / next_allowed look before giving up
WEEKDAYS = {
    name: i
    for i, names in enumerate(
        [
            ("mon", "monday", "周一"),
            ("tue", "tuesday", "周二"),
            ("wed", "wednesday", "周三"),
            ("thu", "thursday", "周四"),
            ("fri", "friday", "周五"),
            ("sat", "saturday", "周六"),
            ("sun", "sunday", "周日"),
        ]
    )
    for name in names
}
HOLIDAY_YEARS = frozenset(d.year for d in cn_days.holidays)

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class WorkingCalendar:
    """Quiet hours, optional working hours, weekends, public holidays, 调休 and overrides."""

    timezone: str = "Asia/Shanghai"
    quiet_start: time | None = time(22, 0)
    quiet_end: time | None = time(7, 30)
    work_start: time | None = None
    work_end: time | None = None
    weekends: frozenset[int] = frozenset({5, 6})
    public_holidays: bool = True
    extra_holidays: frozenset[date] = frozenset()
    extra_working_days: frozenset[date] = frozenset()
    # The State Council's schedule for years chinese-calendar does not know, from the file
    official_years: frozenset[int] = frozenset()
    official_holidays: frozenset[date] = frozenset()
    official_working_days: frozenset[date] = frozenset()
    tz: ZoneInfo = field(init=False, compare=False, repr=False)
    _days: dict[date, tuple[Interval, ...]] = field(init=False, compare=False, repr=False)
    _sums: dict[tuple[datetime, timedelta], datetime] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tz", ZoneInfo(self.timezone))
        object.__setattr__(self, "_days", {})
        object.__setattr__(self, "_sums", {})

    def is_working_day(self, day: date) -> bool:
        """Whether a local date is a working day: overrides, then 调休/holidays, then weekends."""
        if day in self.extra_working_days:
            return True
        if day in self.extra_holidays:
            return False
        if self.public_holidays and day.year in self.official_years:
            if day in self.official_holidays:
                return False
            if day in self.official_working_days:
                return True
        elif self.public_holidays and day.year in HOLIDAY_YEARS:
            if day in cn_days.holidays:
                return False
            if day in cn_days.workdays:
                return True
        return day.weekday() not in self.weekends

    def covers(self, year: int) -> bool:
        """Whether the public holidays and 调休 of a year are known (or not wanted)."""
        return not self.public_holidays or year in HOLIDAY_YEARS or year in self.official_years

    def coverage(self, today: date) -> dict[str, Any]:
        """This year's and the coming year's coverage, for health checks and warnings: status
        "ok", "next_year_missing" (time to enter it) or "missing" (this year's SLA is wrong)."""
        missing = [y for y in (today.year, today.year + 1) if not self.covers(y)]
        known = [*HOLIDAY_YEARS, *self.official_years]
        status = "missing" if today.year in missing else "next_year_missing" if missing else "ok"
        return {
            "status": status,
            "covered_through": max(known) if known else None,
            "missing_years": missing,
        }

    def intervals(self, day: date) -> tuple[Interval, ...]:
        """The working-time intervals [start, end) of one local date, as UTC datetimes."""
        found = self._days.get(day)
        if found is None:
            if len(self._days) > CACHE_SIZE:
                self._days.clear()
            found = self._days[day] = _intervals(self, day)
        return found

    def is_working_time(self, at: datetime) -> bool:
        """Whether an instant is working time (and so may carry a ping)."""
        return any(a <= at < b for a, b in self.intervals(self._local_date(at)))

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant when `duration` of working time has passed since `start`."""
        key = (start, duration)
        found = self._sums.get(key)
        if found is None:
            if len(self._sums) > CACHE_SIZE:
                self._sums.clear()
            found = self._sums[key] = _add_working_time(self, start.astimezone(UTC), duration)
        return found

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """How much working time lies in [start, end) (zero when end is not after start)."""
        total = timedelta(0)
        if end <= start:
            return total
        day, last = self._local_date(start), self._local_date(end)
        if day == last:
            for a, b in self.intervals(day):
                lo, hi = max(a, start), min(b, end)
                if hi > lo:
                    total += hi - lo
            return total
        while day <= last:
            for a, b in self.intervals(day):
                lo, hi = max(a, start), min(b, end)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total

    def next_allowed(self, at: datetime) -> datetime:
        """`at` if it is working time, else the start of the next working period."""
        at = at.astimezone(UTC)
        day = self._local_date(at)
        for _ in range(MAX_DAYS):
            for a, b in self.intervals(day):
                if b > at:
                    return max(a, at)
            day += timedelta(days=1)
        raise ValueError(f"no working time within {MAX_DAYS} days after {at.isoformat()}")

    def _local_date(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def _day_spans(self) -> list[tuple[time, time | None]]:
        """Local [start, end) spans of a working day; None as an end means midnight."""
        qs, qe = self.quiet_start, self.quiet_end
        if qs is None or qe is None or qs == qe:
            spans: list[tuple[time, time | None]] = [(time(0), None)]
        elif qs > qe:  # quiet across midnight, e.g. 22:00-07:30
            spans = [(qe, qs)]
        else:  # quiet inside one day, e.g. 12:00-13:30
            spans = [(time(0), qs), (qe, None)]
        if self.work_start is None or self.work_end is None:
            return spans
        ws, we = self.work_start, self.work_end
        clipped: list[tuple[time, time | None]] = []
        for a, b in spans:
            lo, hi = max(a, ws), we if b is None else min(b, we)
            if lo < hi:
                clipped.append((lo, hi))
        return clipped


def _intervals(cal: WorkingCalendar, day: date) -> tuple[Interval, ...]:
    if not cal.is_working_day(day):
        return ()
    out = []
    for a, b in cal._day_spans():
        start = datetime.combine(day, a, tzinfo=cal.tz)
        end = (
            datetime.combine(day + timedelta(days=1), time(0), tzinfo=cal.tz)
            if b is None
            else datetime.combine(day, b, tzinfo=cal.tz)
        )
        if start < end:
            out.append((start.astimezone(UTC), end.astimezone(UTC)))
    return tuple(out)


def _add_working_time(cal: WorkingCalendar, start: datetime, duration: timedelta) -> datetime:
    if duration <= timedelta(0):
        return start
    remaining = duration
    day = cal._local_date(start)
    for _ in range(MAX_DAYS):
        for a, b in cal.intervals(day):
            a = max(a, start)
            if a >= b:
                continue
            if remaining <= b - a:
                return a + remaining
            remaining -= b - a
        day += timedelta(days=1)
    raise ValueError(f"no working time within {MAX_DAYS} days after {start.isoformat()}")


def load_calendar(path: str | Path | None, text: str | None = None) -> WorkingCalendar:
    """Read a calendar override file; None gives the default calendar. Errors name the line."""
    if path is None and text is None:
        return WorkingCalendar()
    doc = YamlFile(path or "<calendar>", text)
    data = doc.data
    check_keys(
        doc,
        (),
        data,
        {
            "timezone",
            "quiet_hours",
            "working_hours",
            "weekends",
            "public_holidays",
            "extra_holidays",
            "extra_working_days",
            "official_schedule",
        },
    )
    timezone = data.get("timezone", "Asia/Shanghai")
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        raise doc.error(("timezone",), f"未知的时区 {timezone!r}（例如 Asia/Shanghai）") from None
    quiet = _span(doc, "quiet_hours", data.get("quiet_hours", {"start": "22:00", "end": "07:30"}))
    work = _span(doc, "working_hours", data.get("working_hours"))
    if work is not None and work[0] >= work[1]:
        raise doc.error(("working_hours",), "start 须早于 end")
    public = data.get("public_holidays", True)
    if not isinstance(public, bool):
        raise doc.error(("public_holidays",), "须为 true 或 false")
    cal = WorkingCalendar(
        timezone=str(timezone),
        quiet_start=quiet[0] if quiet else None,
        quiet_end=quiet[1] if quiet else None,
        work_start=work[0] if work else None,
        work_end=work[1] if work else None,
        weekends=_weekends(doc, data.get("weekends", ["saturday", "sunday"])),
        public_holidays=public,
        extra_holidays=_dates(doc, ("extra_holidays",), data.get("extra_holidays") or []),
        extra_working_days=_dates(
            doc, ("extra_working_days",), data.get("extra_working_days") or []
        ),
        **_official(doc, data.get("official_schedule") or {}),
    )
    both = cal.extra_holidays & cal.extra_working_days
    if both:
        raise doc.error(("extra_working_days",), f"{min(both)} 同时被列为放假日")
    if cal.work_start is not None and not any(cal._day_spans()):
        raise doc.error(("working_hours",), "完全落在免打扰时段内")
    return cal


def _span(doc: YamlFile, key: str, value: Any) -> tuple[time, time] | None:
    if value is None:
        return None
    check_keys(doc, (key,), value, {"start", "end"})
    return _time(doc, (key, "start"), value.get("start")), _time(
        doc, (key, "end"), value.get("end")
    )


def _time(doc: YamlFile, path: tuple[str, ...], value: Any) -> time:
    if isinstance(value, int):  # YAML 1.1 reads an unquoted 22:00 as the number 1320
        raise doc.error(path, '时间请加引号，例如 "22:00"')
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except (ValueError, TypeError):
        raise doc.error(path, f'须为 "HH:MM" 格式的时间，实为 {value!r}') from None


def _weekends(doc: YamlFile, value: Any) -> frozenset[int]:
    if not isinstance(value, list):
        raise doc.error(("weekends",), "须为星期名称的列表，例如 [saturday, sunday]")
    days = set()
    for i, name in enumerate(value):
        key = str(name).strip().lower()
        if key not in WEEKDAYS:
            raise doc.error(("weekends", i), f"未知的星期 {name!r}")
        days.add(WEEKDAYS[key])
    return frozenset(days)


def _dates(doc: YamlFile, path: tuple[str | int, ...], value: Any) -> frozenset[date]:
    if not isinstance(value, list):
        raise doc.error(path, "须为日期列表，格式 YYYY-MM-DD")
    days = set()
    for i, item in enumerate(value):
        if isinstance(item, date) and not isinstance(item, datetime):
            days.add(item)
            continue
        try:
            days.add(date.fromisoformat(str(item)))
        except ValueError:
            raise doc.error((*path, i), f"须为 YYYY-MM-DD 格式的日期，实为 {item!r}") from None
    return frozenset(days)


def _official(doc: YamlFile, value: Any) -> dict[str, Any]:
    """`official_schedule: {2027: {holidays: [...], working_days: [...]}}`, checked."""
    if not isinstance(value, dict):
        raise doc.error(("official_schedule",), "须按年份填写，例如 2027: {holidays: [...]}")
    years: set[int] = set()
    holidays: set[date] = set()
    working: set[date] = set()
    for year, section in value.items():
        if not isinstance(year, int) or not 2000 <= year <= 2100:
            raise doc.error(("official_schedule", year), f"须为年份（如 2027），实为 {year!r}")
        path = ("official_schedule", year)
        check_keys(doc, path, section or {}, {"holidays", "working_days"})
        section = section or {}
        days = _dates(doc, (*path, "holidays"), section.get("holidays") or [])
        work = _dates(doc, (*path, "working_days"), section.get("working_days") or [])
        wrong = sorted(d for d in days | work if d.year != year)
        if wrong:
            raise doc.error(path, f"{wrong[0]} 不在 {year} 年内")
        if days & work:
            raise doc.error(path, f"{min(days & work)} 同时被列为放假日和上班日")
        years.add(year)
        holidays |= days
        working |= work
    return {
        "official_years": frozenset(years),
        "official_holidays": frozenset(holidays),
        "official_working_days": frozenset(working),
    }
