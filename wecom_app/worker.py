"""The background worker: drain the inbox, drain the outbox, run scheduled jobs; repeat."""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

from callbacks.processing import process_pending
from wecom_app import jobs
from wecom_app.outbox import drain

log = logging.getLogger(__name__)


def load_features() -> None:
    """Import the modules that register handlers, performers, subscribers and jobs."""
    import callbacks.dispatch as dispatch
    import wecom_app.features  # noqa: F401

    dispatch.routes()


def tick(services: Any) -> dict[str, int]:
    """One pass of everything the worker does; returns counts for logging and tests."""
    inbox = process_pending(services.db, services.clock, services)
    outbox = drain(services.db, services.client, services.clock)
    ran = jobs.run_due(services.db, services.clock, services)
    return {"inbox": inbox, "outbox": outbox, "jobs": len(ran)}


def settle(services: Any, max_passes: int = 100) -> int:
    """Tick until nothing is left to do now (for tests, the demo and one-shot runs)."""
    total = 0
    for _ in range(max_passes):
        counts = tick(services)
        work = counts["inbox"] + counts["outbox"]
        total += work
        if not work:
            break
    return total


def run_forever(services: Any, idle_sleep: float = 0.2) -> None:
    """Loop until SIGTERM/SIGINT; sleep briefly only when a pass found nothing to do."""
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        log.info("worker stopping on signal %s", signum)
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    load_features()
    log.info("worker started")
    while not stopping:
        try:
            counts = tick(services)
        except Exception:  # keep the worker alive through a database or network hiccup
            log.exception("worker pass failed; retrying shortly")
            time.sleep(2)
            continue
        if counts["inbox"] or counts["outbox"]:
            log.debug("worker pass %s", counts)
        else:
            time.sleep(idle_sleep)
