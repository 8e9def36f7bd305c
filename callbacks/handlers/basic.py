"""Handlers for events that need no domain work yet: they are recorded and logged."""

from __future__ import annotations

import logging

from callbacks.dispatch import HandlerContext
from callbacks.events import EnterAgent

log = logging.getLogger(__name__)


def on_enter_agent(ctx: HandlerContext, event: EnterAgent) -> None:
    """An employee opened the app: nothing to change, the inbox row is the record."""
    log.info("enter_agent from %s", event.from_user)
