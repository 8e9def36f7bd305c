"""The background worker: inbox events, outbox writes and scheduled jobs, each on its own.

    inbox thread      claim → fetch (outside any transaction) → handle, one event at a time
    outbox threads    each leases one write, performs it, records it; a heartbeat renews the
                      leases of writes in flight
    scheduler thread  every second, starts each due job in a thread of its own

So a WeCom outage slows WeCom writes, not the recording of acks and departures; a long job (the
09:00 group check) does not hold up the one-minute SLA sweep; and on SIGTERM every part stops
taking work at once, calls in flight get a few seconds to finish, and whatever is left keeps its
lease for the next worker to pick up (`Tuning.stop_grace_seconds`, 8 s by default).

`settle()` is the same work done one step at a time in the calling thread until nothing is due
(tests, the demo, `wecom-app worker --once`).
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import threading
import time
from typing import Any

from callbacks.processing import InboxProcessor, release
from wecom_app import jobs
from wecom_app.compose import Composition
from wecom_app.jobs import JobContext, JobTable

log = logging.getLogger(__name__)


class Worker:
    """Runs one composition's inbox, outbox and jobs."""

    def __init__(self, composition: Composition, *, jobs_table: JobTable | None = None) -> None:
        self.services = composition.services
        self.inbox = InboxProcessor(self.services, composition.registry.handlers)
        self.outbox = composition.outbox()
        self.jobs = jobs_table if jobs_table is not None else composition.registry.jobs
        self.stopping = threading.Event()
        self._in_flight: set[str] = set()
        self._flight_guard = threading.Lock()
        # One idle outbox thread looks for work at a time; the others wait for it, or for the
        # inbox to say it queued writes.
        self._quiet_until = 0.0
        self._wake = threading.Event()
        self._running_jobs: dict[str, threading.Thread] = {}
        self._threads: list[threading.Thread] = []

    # -- one step at a time ------------------------------------------------------------------

    def tick(self, *, with_jobs: bool = True) -> dict[str, int]:
        """One pass of everything; returns counts for logging and tests."""
        inbox = self.inbox.run_pending()
        outbox = self.outbox.drain()
        ran = jobs.run_due(JobContext(self.services, self.stopping), self.jobs) if with_jobs else []
        return {"inbox": inbox, "outbox": outbox, "jobs": len(ran)}

    def settle(self, max_passes: int = 100) -> int:
        """Tick until nothing is left to do now; return how many events and writes were done."""
        total = 0
        for _ in range(max_passes):
            counts = self.tick()
            total += counts["inbox"] + counts["outbox"]
            if not (counts["inbox"] or counts["outbox"] or counts["jobs"]):
                break
        return total

    # -- the long-running worker -------------------------------------------------------------

    def run(self) -> None:
        """Work until stop() (or a signal through run_forever); returns within the grace time."""
        tuning = self.services.tuning
        threads = [
            threading.Thread(target=self._inbox_loop, name="inbox", daemon=True),
            threading.Thread(target=self._lease_heartbeat, name="outbox-leases", daemon=True),
            threading.Thread(target=self._schedule_loop, name="scheduler", daemon=True),
        ]
        threads += [
            threading.Thread(target=self._outbox_loop, name=f"outbox-{i}", daemon=True)
            for i in range(tuning.outbox_concurrency)
        ]
        self._threads = threads
        for thread in threads:
            thread.start()
        log.info("worker started (%s outbox threads)", tuning.outbox_concurrency)
        # A signal may be delivered to any thread, and Python runs its handler in the main
        # thread only when that thread wakes: so it wakes up now and then.
        while not self.stopping.wait(0.2):
            pass
        deadline = time.monotonic() + tuning.stop_grace_seconds
        for thread in threads:  # the scheduler first ends, so the job list stops changing
            thread.join(max(0.0, deadline - time.monotonic()))
        running = list(self._running_jobs.values())
        for thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))
        left = [t.name for t in [*threads, *running] if t.is_alive()]
        if left:
            log.warning("worker stopped with %s still busy; their rows keep their leases", left)
        log.info("worker stopped")

    def stop(self) -> None:
        """Stop taking work; run() returns once busy parts finish or the grace time is up."""
        self.stopping.set()
        self._wake.set()

    def join(self, timeout: float) -> list[str]:
        """Wait for every thread run() started, even past the grace time; return those left.

        A process that exits after run() need not; whoever closes the composition and goes on
        (a test, an embedding) must, or a call finishing late writes through closed pools.
        """
        deadline = time.monotonic() + timeout
        threads = [*self._threads, *self._running_jobs.values()]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in threads if t.is_alive()]

    def _inbox_loop(self) -> None:
        idle = self.services.tuning.idle_seconds
        while not self.stopping.is_set():
            try:
                batch = self.inbox.claim(self.services.tuning.inbox_batch)
                for index, item in enumerate(batch):
                    if self.stopping.is_set():
                        release(self.services, batch[index:])
                        return
                    self.inbox.process(item)
                if batch:  # handlers queue writes: look for them now
                    self._quiet_until = 0.0
                    self._wake.set()
            except Exception:  # a database hiccup: keep the loop alive
                log.exception("inbox pass failed; retrying shortly")
                self.stopping.wait(2)
                continue
            if not batch:
                self.stopping.wait(idle)

    def _outbox_loop(self) -> None:
        idle = self.services.tuning.idle_seconds
        while not self.stopping.is_set():
            quiet = self._quiet_until - time.monotonic()
            if quiet > 0:
                self._wake.wait(quiet)
                continue
            try:
                claimed = self.outbox.claim(1)
            except Exception:
                log.exception("outbox claim failed; retrying shortly")
                self.stopping.wait(2)
                continue
            if not claimed:
                self._wake.clear()
                self._quiet_until = time.monotonic() + idle
                continue
            item = claimed[0]
            if self.stopping.is_set():
                self.outbox.release(claimed)
                return
            with self._flight_guard:
                self._in_flight.add(item.token)
            try:
                self.outbox.run(item)
            except Exception:  # recording failed (database away): the lease runs out, no loss
                log.exception("outbox %s could not be recorded", item.id)
            finally:
                with self._flight_guard:
                    self._in_flight.discard(item.token)

    def _lease_heartbeat(self) -> None:
        every = self.services.tuning.lease_renew_seconds
        while not self.stopping.wait(every):
            with self._flight_guard:
                tokens = list(self._in_flight)
            try:
                self.outbox.renew(tokens)
            except Exception:  # the next beat tries again; leases are much longer than a beat
                log.warning("could not renew outbox leases", exc_info=True)

    def _schedule_loop(self) -> None:
        every = self.services.tuning.job_check_seconds
        while not self.stopping.is_set():
            try:
                self._start_due_jobs()
            except Exception:  # a failing check must not end the scheduler
                log.exception("scheduled jobs check failed")
            self.stopping.wait(every)

    def _start_due_jobs(self) -> None:
        """Start every due job that is not already running here, each in its own thread."""
        db, clock = self.services.db, self.services.clock
        due = [
            (jb, slot)
            for jb, slot in jobs.due(self.jobs, clock.now())
            if not (jb.name in self._running_jobs and self._running_jobs[jb.name].is_alive())
        ]
        done = jobs.taken_slots(db, [(jb.name, slot) for jb, slot in due], clock.now())
        for jb, slot in due:
            if (jb.name, slot) in done or self.stopping.is_set():
                continue
            run_id = jobs.claim_slot(db, jb.name, slot, clock.now())
            if run_id is None:
                continue
            ctx = JobContext(self.services, self.stopping)
            thread = threading.Thread(
                target=jobs.run_claimed, args=(ctx, jb, run_id), name=f"job-{jb.name}", daemon=True
            )
            self._running_jobs[jb.name] = thread
            thread.start()


def run_forever(worker: Worker) -> None:
    """Run the worker until SIGTERM or SIGINT; SIGUSR1 prints every thread's stack."""

    def stop(signum: int, _frame: Any) -> None:
        worker.stop()  # first: a log line must not stand between a signal and stopping
        log.info("worker stopping on signal %s", signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    worker.run()
