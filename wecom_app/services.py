"""What workflows run on: settings, clock, database, WeCom client, domain events, tuning.

`Services` is built by the composition root (`wecom_app.compose`) and handed to the web app,
the worker and the CLI; nothing here knows which features exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from wecom_app.clock import Clock
from wecom_app.db import Database
from wecom_app.domain_events import DomainEvents
from wecom_app.settings import Settings
from wecom_app.wecom.api import WeComApi


@dataclass(frozen=True)
class Tuning:
    """How hard and how often the worker pushes; production defaults, tests inject others."""

    inbox_batch: int = 50  # events claimed per inbox pass
    inbox_lease: timedelta = timedelta(seconds=60)
    outbox_concurrency: int = 4  # writes in flight at once in one worker
    outbox_lease: timedelta = timedelta(seconds=60)  # renewed while a write is in flight
    lease_renew_seconds: float = 10.0
    job_check_seconds: float = 1.0
    idle_seconds: float = 0.2  # how long an idle loop waits before looking again
    stop_grace_seconds: float = 8.0  # SIGTERM to exit, in-flight calls included
    # Raise (tests) rather than log (production) when a WeCom call is made from inside an open
    # database transaction.
    strict_transactions: bool = False


@dataclass
class Services:
    """The resources every workflow uses, built once per process."""

    settings: Settings
    clock: Clock
    db: Database
    client: WeComApi
    events: DomainEvents = field(default_factory=DomainEvents)
    tuning: Tuning = field(default_factory=Tuning)

    def close(self) -> None:
        """Release the HTTP client and the database pool."""
        self.client.close()
        self.db.dispose()
