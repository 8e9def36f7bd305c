"""WeCom's quantitative limits and the sliding windows that enforce them by the injected clock."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(slots=True)
class Limits:
    """Numbers from WeCom's docs; tests may shrink them."""

    member_per_minute: int = 30
    member_per_hour: int = 1000
    appchat_changes_per_hour: int = 1000
    appchat_creates_per_day: int = 1000
    appchat_member_per_minute: int = 200
    recall_hours: int = 24
    # WeCom bans an IP for an hour after many wrong secrets; the exact count is not published.
    wrong_secrets_per_hour: int = 100
    response_code_hours: int = 72
    max_touser: int = 1000
    max_toparty: int = 100
    max_totag: int = 100
    max_list_id: int = 10000
    appchat_min_members: int = 2
    appchat_max_members: int = 2000
    duplicate_default: int = 1800
    duplicate_max: int = 14400

    def update(self, values: dict[str, int]) -> None:
        """Change some limits by name, refusing unknown names."""
        for name, value in values.items():
            if name not in self.__slots__:
                raise KeyError(name)
            setattr(self, name, int(value))


class RateWindows:
    """Timestamps of past events per key, answering "would one more exceed the limit?"."""

    def __init__(self) -> None:
        self._events: dict[str, list[datetime]] = {}

    def count(self, key: str, now: datetime, window: timedelta) -> int:
        """Count events for a key within the window ending now."""
        events = self._events.get(key)
        if not events:
            return 0
        return len(events) - bisect_right(events, now - window)

    def allow(self, key: str, now: datetime, rules: list[tuple[timedelta, int]]) -> bool:
        """Record one event for a key unless any (window, maximum) rule is already full."""
        if any(self.count(key, now, window) >= maximum for window, maximum in rules):
            return False
        events = self._events.setdefault(key, [])
        events.append(now)
        longest = max(window for window, _ in rules)
        if len(events) > 64 and events[0] < now - longest:
            del events[: bisect_right(events, now - longest)]
        return True

    def member_allows(self, userid: str, now: datetime, limits: Limits) -> bool:
        """Tell whether one more app message may reach a member (30/min, 1000/h) and count it."""
        rules = [(MINUTE, limits.member_per_minute), (HOUR, limits.member_per_hour)]
        return self.allow(f"member:{userid}", now, rules)
