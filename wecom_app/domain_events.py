"""In-process domain events: one part of the app announces a fact, others react in the same
transaction (e.g. the mirror marks someone departed; groups and notices react)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from wecom_app.clock import Clock


@dataclass(frozen=True)
class EmployeeDeparted:
    """An employee left (deleted, status 5, disabled-and-unsubscribed, or vanished in a sync)."""

    userid: str
    at: datetime
    source: str  # "delete_user", "status", "unsubscribe", "full_sync", ...
    cause: str | None = None  # e.g. the inbox event id that caused it


@dataclass(frozen=True)
class EmployeeRenamed:
    """An employee's userid changed (NewUserID); references must follow."""

    old_userid: str
    new_userid: str
    at: datetime


Subscriber = Callable[[Session, Clock, Any], None]
_SUBSCRIBERS: dict[type, list[Subscriber]] = defaultdict(list)


def subscribe(event_type: type) -> Callable[[Subscriber], Subscriber]:
    """Register a reaction to one type of domain event."""

    def register(fn: Subscriber) -> Subscriber:
        _SUBSCRIBERS[event_type].append(fn)
        return fn

    return register


def publish(session: Session, clock: Clock, event: Any) -> None:
    """Run every reaction to `event` inside the caller's transaction."""
    for fn in _SUBSCRIBERS.get(type(event), []):
        fn(session, clock, event)
