"""The one dispatch table: (MsgType, Event, ChangeType) → handler, and what it must fetch first.

Handlers are plain functions `handler(ctx, event) -> None` that run inside the event's own
transaction and never call WeCom. A handler that needs WeCom's current view (a member's details
after a thin `change_contact`) names a fetcher, `fetch(client, event) -> data`, which the inbox
processor runs before opening the transaction; the handler finds its result in `ctx.fetched`.
Each feature adds its routes with `HandlerTable.add` from its register(); a second registration
of a route fails at once. Two routes are shared by features and split further: card clicks by
the prefix of the card's task_id (`add_card`), and texts to the app by a leading keyword
(`add_text`), before the route's own handler gets the rest. Events with no route are the single
fallback: logged and kept as `unhandled`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from callbacks.events import Event, TemplateCardEvent, TextMessage
from wecom_app.clock import Clock
from wecom_app.domain_events import DomainEvents
from wecom_app.wecom.api import WeComApi

RouteKey = tuple[str, str | None, str | None]


@dataclass
class HandlerContext:
    """What a handler may use: its event's session and clock, the domain events, and what its
    fetcher brought back."""

    session: Session
    clock: Clock
    events: DomainEvents
    inbox_id: int | None = None
    received_at: datetime | None = None
    fetched: Any = None

    @property
    def cause(self) -> str | None:
        """The inbox event this work is caused by, for audit trails."""
        return f"inbox:{self.inbox_id}" if self.inbox_id is not None else None


Handler = Callable[[HandlerContext, Any], None]
Fetcher = Callable[[WeComApi, Any], Any]


@dataclass(frozen=True)
class Route:
    """A handler and, if it needs WeCom's data, the fetcher that gets it first; an anonymous
    route's events (survey answers, anonymous feedback) keep nothing of their sender or content
    once handled, and their failures are recorded without the content."""

    handler: Handler
    fetch: Fetcher | None = None
    anonymous: bool = False


class DuplicateHandler(RuntimeError):
    """Raised when two handlers claim the same route."""


class HandlerTable:
    """Routes from (MsgType, Event, ChangeType) to handlers."""

    def __init__(self) -> None:
        self._routes: dict[RouteKey, Route] = {}
        self._cards: dict[str, Route] = {}  # task_id prefix → route
        self._texts: list[tuple[Callable[[str], bool], Route]] = []

    def add(
        self,
        msg_type: str,
        event: str | None = None,
        change_type: str | None = None,
        *,
        handler: Handler,
        fetch: Fetcher | None = None,
    ) -> None:
        """Route one (MsgType, Event, ChangeType) to a handler; refuse a route taken already."""
        key: RouteKey = (msg_type, event, change_type)
        if key in self._routes:
            taken = self._routes[key].handler
            raise DuplicateHandler(f"{key} already handled by {getattr(taken, '__name__', taken)}")
        self._routes[key] = Route(handler, fetch)

    def add_card(self, prefix: str, *, handler: Handler, anonymous: bool = False) -> None:
        """Send clicks on cards whose task_id starts with `prefix` to `handler`."""
        if any(prefix.startswith(p) or p.startswith(prefix) for p in self._cards):
            raise DuplicateHandler(f"card prefix {prefix!r} overlaps another")
        self._cards[prefix] = Route(handler, anonymous=anonymous)

    def add_text(
        self, matches: Callable[[str], bool], *, handler: Handler, anonymous: bool = False
    ) -> None:
        """Send texts whose content `matches` to `handler` (checked in the order added)."""
        self._texts.append((matches, Route(handler, anonymous=anonymous)))

    def route_for(self, event: Event) -> Route | None:
        """The route of an event, or None for the fallback."""
        if self._cards and isinstance(event, TemplateCardEvent):
            for prefix, route in self._cards.items():
                if event.task_id.startswith(prefix):
                    return route
        if self._texts and isinstance(event, TextMessage):
            for matches, route in self._texts:
                if matches(event.content):
                    return route
        return self._routes.get(event.route)

    def routes(self) -> dict[RouteKey, Route]:
        """A copy of the table, for inspection and tests."""
        return dict(self._routes)
