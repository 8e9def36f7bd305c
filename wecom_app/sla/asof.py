"""Reading the times people type for `--as-of`, `?as_of=` and `--sent`."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def parse_time(text: str, tz: ZoneInfo) -> datetime:
    """An ISO date-time; without a zone it is local (the calendar's zone)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"不是有效的时间：{text!r}（例如 2026-01-07T08:00 或 2026-01-07）"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def parse_as_of(text: str | None, now: datetime, tz: ZoneInfo, *, start: bool = False) -> datetime:
    """The report's moment: now when empty; a bare date means the end of that local day (its
    start, for the first day of a period)."""
    if not text:
        return now
    text = text.strip()
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"不是有效的日期：{text!r}（例如 2026-01-07）") from None
        if start:
            return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
        return (end - timedelta(microseconds=1)).astimezone(UTC)
    return parse_time(text, tz)
