"""The composition root: the one place that knows every feature and wires the app together.

    settings ─┐                               ┌─ web app   (wecom_app.app.create_app)
    clock ────┼─► Services ─┐                 ├─ worker    (wecom_app.worker.Worker)
    database ─┤             ├─► Composition ──┤
    WeCom ────┘  Registry ──┘                 └─ CLI       (wecom_app.cli)
                 ▲
                 └─ each feature's register(registry, settings): handlers, reactions,
                    kinds of write, lanes, jobs, API and pages

Nothing registers itself on import: a caller that builds a Composition has every handler,
and one that does not has none to forget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from callbacks import handlers as callback_handlers
from wecom_app import backup, console, directory, groups, logs, notices, performers, sla, surveys
from wecom_app.clock import Clock, SystemClock
from wecom_app.db import Database
from wecom_app.registry import Registry
from wecom_app.sending import Outbox
from wecom_app.services import Services, Tuning
from wecom_app.settings import Settings, load_settings
from wecom_app.wecom.api import WeComApi
from wecom_app.wecom.client import WeComClient
from wecom_app.wecom.session import RequestHook

log = logging.getLogger(__name__)

Feature = Callable[[Registry, Settings], None]
FEATURES: tuple[Feature, ...] = (
    directory.register,
    groups.register,
    surveys.register,
    notices.register,
    sla.register,
    console.register,
    backup.register,
)


class TransactionSpansCall(RuntimeError):
    """A WeCom call was made while the calling thread held a database transaction open."""


@dataclass
class Composition:
    """The built app: its services and its registry."""

    services: Services
    registry: Registry

    def outbox(self) -> Outbox:
        """An outbox over these services and kinds of write."""
        return Outbox(self.services, self.registry.outbox)

    def close(self) -> None:
        """Release the WeCom client and the database pool."""
        self.services.close()


def compose(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    client: WeComApi | None = None,
    client_options: dict[str, Any] | None = None,
    tuning: Tuning | None = None,
    features: Sequence[Feature] = FEATURES,
    customize: Callable[[Registry], None] | None = None,
) -> Composition:
    """Build services and registry; settings come from the environment unless given.

    Tests and benchmarks inject the clock, the client's options (or a client), the tuning, and
    `customize`, which may change the registry (a lane's limit, a job) before anything runs.
    A bad feature setting raises ConfigError naming its key.
    """
    settings = settings or load_settings()
    _apply_log_level(settings)
    clock = clock or SystemClock()
    tuning = tuning or Tuning()
    db = db or Database(settings.database_url)
    registry = Registry()
    for feature in features:
        feature(registry, settings)
    callback_handlers.register(registry.handlers)
    performers.register(registry.outbox)
    if customize is not None:
        customize(registry)
    if client is None:
        guard = _transaction_guard(db, tuning.strict_transactions)
        client = _client(settings, clock, guard, client_options or {})
    services = Services(settings, clock, db, client, registry.events, tuning)
    return Composition(services, registry)


def _client(
    settings: Settings, clock: Clock, guard: RequestHook, options: dict[str, Any]
) -> WeComClient:
    """The WeCom client for these settings (API base and proxy included)."""
    return WeComClient(
        settings.corp_id,
        settings.agent_id,
        settings.secret("app_secret"),
        settings.secret("contacts_secret") or None,
        base_url=settings.api_base,
        oauth_base=settings.oauth_base,
        web_login_base=settings.web_login_base,
        proxy=settings.http_proxy,
        clock=clock,
        before_request=guard,
        **options,
    )


def _transaction_guard(db: Database, strict: bool) -> RequestHook:
    """A hook that catches a WeCom call made from inside an open transaction."""

    def check(method: str, path: str) -> None:
        if db.in_transaction():
            message = f"WeCom call {method} {path} made inside an open database transaction"
            if strict:
                raise TransactionSpansCall(message)
            log.error(message)

    return check


def _apply_log_level(settings: Settings) -> None:
    """Use the configured level and format in this process (see wecom_app.logs)."""
    logs.configure(settings.log_level, settings.log_format)
