"""Handlers for callbacks that need no feature: added to the table by `register`."""

from __future__ import annotations

from callbacks.dispatch import HandlerTable
from callbacks.handlers import basic


def register(table: HandlerTable) -> None:
    """Add the callback layer's own handlers to the dispatch table."""
    table.add("event", "enter_agent", handler=basic.on_enter_agent)
