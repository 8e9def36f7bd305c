"""Everything the features add to the app: handlers, reactions, writes, jobs, pages and API.

The composition root (`wecom_app.compose`) makes one empty `Registry` and hands it to each
feature's register(); the web app, the worker and the CLI then read from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Blueprint

from callbacks.dispatch import HandlerTable
from wecom_app.domain_events import DomainEvents
from wecom_app.jobs import JobTable
from wecom_app.outbox import OutboxKinds


@dataclass
class Registry:
    """The tables each feature fills in."""

    handlers: HandlerTable = field(default_factory=HandlerTable)
    events: DomainEvents = field(default_factory=DomainEvents)
    outbox: OutboxKinds = field(default_factory=OutboxKinds)
    jobs: JobTable = field(default_factory=JobTable)
    api: list[Blueprint] = field(default_factory=list)  # mounted under /api/v1, token-guarded
    pages: list[Blueprint] = field(default_factory=list)  # anything else a browser opens
    # name → check(now) giving a detail of /healthz: {"status": "ok" | "incomplete", ...}
    health: dict[str, Callable[[datetime], dict[str, Any]]] = field(default_factory=dict)
