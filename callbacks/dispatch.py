"""The one dispatch table: (MsgType, Event, ChangeType) → handler.

Handlers are plain functions `handler(ctx, event) -> None` registered with `@handles(...)`.
A second registration for the same key fails at import. Events with no handler go to the single
fallback, which logs them; they stay in the inbox as `unhandled`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from callbacks.events import Event
from wecom_app.clock import Clock

log = logging.getLogger(__name__)

Route = tuple[str, str | None, str | None]


@dataclass
class HandlerContext:
    """What a handler may use: the caller's session, the clock, and app services."""

    session: Session
    clock: Clock
    services: Any = None
    inbox_id: int | None = None


Handler = Callable[[HandlerContext, Any], None]
_TABLE: dict[Route, Handler] = {}


class DuplicateHandler(RuntimeError):
    """Raised at import when two handlers claim the same route."""


def handles(
    msg_type: str, event: str | None = None, change_type: str | None = None
) -> Callable[[Handler], Handler]:
    """Register a handler for one route; refuse a route that already has one."""
    route: Route = (msg_type, event, change_type)

    def register(fn: Handler) -> Handler:
        if route in _TABLE:
            raise DuplicateHandler(f"{route} already handled by {_TABLE[route].__qualname__}")
        _TABLE[route] = fn
        return fn

    return register


def handler_for(event: Event) -> Handler | None:
    """Find the handler for an event's route, if any."""
    _load_handlers()
    return _TABLE.get(event.route)


def routes() -> dict[Route, Handler]:
    """A copy of the table, for inspection and tests."""
    _load_handlers()
    return dict(_TABLE)


def dispatch(ctx: HandlerContext, event: Event) -> bool:
    """Run the event's handler; return False (after logging) when there is none."""
    handler = handler_for(event)
    if handler is None:
        log.warning("no handler for %s (inbox %s); kept as unhandled", event.route, ctx.inbox_id)
        return False
    handler(ctx, event)
    return True


_loaded = False


def _load_handlers() -> None:
    """Import the handler modules once so their registrations run."""
    global _loaded
    if not _loaded:
        import callbacks.handlers  # noqa: F401  (registers on import)

        _loaded = True
