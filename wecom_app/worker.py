"""The background worker: drain the inbox, drain the outbox, run scheduled jobs; repeat."""

from __future__ import annotations

import logging
import signal
import threading
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


# Small enough that the group removals and replies a batch of callbacks causes go out within a
# pass, instead of after hundreds of other callbacks have been handled.
INBOX_BATCH = 50
JOB_CHECK_SECONDS = 5.0


def tick(services: Any, *, with_jobs: bool = True) -> dict[str, int]:
    """One pass of everything the worker does; returns counts for logging and tests."""
    inbox = process_pending(services.db, services.clock, services, batch=INBOX_BATCH)
    outbox = drain(services.db, services.client, services.clock)
    ran = jobs.run_due(services.db, services.clock, services) if with_jobs else []
    return {"inbox": inbox, "outbox": outbox, "jobs": len(ran)}


def settle(services: Any, max_passes: int = 100) -> int:
    """Tick until nothing is left to do now (for tests, the demo and one-shot runs)."""
    total = 0
    for _ in range(max_passes):
        counts = tick(services)
        work = counts["inbox"] + counts["outbox"] + counts["jobs"]  # a job may queue writes
        total += counts["inbox"] + counts["outbox"]
        if not work:
            break
    return total


def run_forever(services: Any, idle_sleep: float = 0.2) -> None:
    """Loop until SIGTERM/SIGINT; scheduled jobs run in their own thread.

    A nightly sync or a daily group check can take minutes; callbacks (a departure to remove
    from its groups, an acknowledgement to confirm) must not wait behind it.
    """
    stopping = threading.Event()

    def stop(signum: int, _frame: Any) -> None:
        log.info("worker stopping on signal %s", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    load_features()
    job_thread = threading.Thread(target=_run_jobs, args=(services, stopping), name="jobs")
    job_thread.start()
    log.info("worker started")
    while not stopping.is_set():
        try:
            counts = tick(services, with_jobs=False)
        except Exception:  # keep the worker alive through a database or network hiccup
            log.exception("worker pass failed; retrying shortly")
            stopping.wait(2)
            continue
        if counts["inbox"] or counts["outbox"]:
            log.debug("worker pass %s", counts)
        else:
            stopping.wait(idle_sleep)
    job_thread.join()


def _run_jobs(services: Any, stopping: threading.Event) -> None:
    """Run due scheduled jobs every few seconds until the worker stops."""
    while not stopping.is_set():
        try:
            jobs.run_due(services.db, services.clock, services)
        except Exception:  # a failing job run must not end the thread
            log.exception("scheduled jobs pass failed")
        stopping.wait(JOB_CHECK_SECONDS)
