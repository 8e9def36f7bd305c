"""In-process domain events: one part of the app announces a fact, others react in the same
transaction (e.g. the mirror marks someone departed; groups and notices react).

Reactions are added to a `DomainEvents` by each feature's register(); whoever announces a fact
is handed the same object by its caller, so nothing depends on what happened to be imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

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
class EmployeeChanged:
    """An employee joined, moved between departments, became or stopped being a leader, or
    changed status without leaving: managed groups may have to follow at once."""

    userid: str
    at: datetime
    what: tuple[str, ...]  # "joined", "moved", "leader", "status"


@dataclass(frozen=True)
class EmployeeOutOfSight:
    """A member the app can no longer see (removed from its visibility, or `user/get` 60111):
    not proof of a departure, so nobody announces one; only a delete, status 5 or absence from
    `user/list_id` is. They come back into sight when WeCom shows them again."""

    userid: str
    at: datetime
    source: str  # "unsubscribe", "update_user", ...
    cause: str | None = None


@dataclass(frozen=True)
class EmployeeRenamed:
    """An employee's userid changed (NewUserID); references must follow."""

    old_userid: str
    new_userid: str
    at: datetime


E = TypeVar("E")
Subscriber = Callable[[Session, Clock, Any], None]


class DomainEvents:
    """Reactions by event type; `publish` runs them inside the caller's transaction."""

    def __init__(self) -> None:
        self._subscribers: dict[type, list[Subscriber]] = {}

    def subscribe(self, event_type: type[E], fn: Callable[[Session, Clock, E], None]) -> None:
        """Add a reaction to one type of event (run in the order added)."""
        self._subscribers.setdefault(event_type, []).append(fn)

    def subscribers(self, event_type: type) -> list[Subscriber]:
        """The reactions to one type of event, for inspection and tests."""
        return list(self._subscribers.get(event_type, ()))

    def publish(self, session: Session, clock: Clock, event: object) -> None:
        """Run every reaction to `event` inside the caller's transaction."""
        for fn in self._subscribers.get(type(event), ()):
            fn(session, clock, event)
