"""Benchmark the org-chart mirror: full sync of a generated 100,000-person org, and the time to
apply one incremental change_contact event, on PostgreSQL and SQLite.

The simulator runs as its own process; every sync runs in a fresh subprocess so its peak memory
(ru_maxrss) is the sync's own. Usage: scripts/bench_sync [--employees N] [--departments N]
[--db sqlite|postgres|both] [--events N]. PostgreSQL: WECOM_APP_BENCH_SYNC_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/bench_sync; created if missing, wiped every run).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

import click
import httpx

from wecom_app.bench.common import free_port, fresh_postgres, fresh_sqlite, median, percentile
from wecom_app.wecom.client import WeComClient

POSTGRES_URL = os.environ.get(
    "WECOM_APP_BENCH_SYNC_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/bench_sync"
)
CORP_ID, AGENT_ID = "wwbenchsync000001", 1000002
APP_SECRET, CONTACTS_SECRET = "bench-app-secret", "bench-contacts-secret"
SYNC_LIMIT_S, MEMORY_LIMIT_MB, EVENT_LIMIT_MS = 60.0, 1024.0, 50.0


def _client(api_base: str) -> WeComClient:
    from wecom_app.clock import SystemClock

    return WeComClient(CORP_ID, AGENT_ID, APP_SECRET, CONTACTS_SECRET, base_url=api_base,
                       clock=SystemClock(), timeout=120)  # fmt: skip


def child_sync(database_url: str, api_base: str) -> dict[str, Any]:
    """Run one full sync in this process and report its figures."""
    from wecom_app.clock import SystemClock
    from wecom_app.db import Database
    from wecom_app.directory.naming import NamingPolicy
    from wecom_app.directory.sync import run_full_sync
    from wecom_app.domain_events import DomainEvents

    db = Database(database_url)
    started = time.perf_counter()
    report = run_full_sync(db, _client(api_base), SystemClock(), DomainEvents(), NamingPolicy(),
                           use_list_id=True)  # fmt: skip
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    db.dispose()
    return {**report.to_dict(), "wall_seconds": seconds, "peak_mb": peak_mb}


def child_events(database_url: str, api_base: str, count: int) -> dict[str, Any]:
    """Apply `count` update_user events through the dispatch table, timing each."""
    from sqlalchemy import select

    from callbacks.dispatch import HandlerContext
    from callbacks.events import UserChange
    from wecom_app import directory
    from wecom_app.clock import SystemClock
    from wecom_app.db import Database
    from wecom_app.models import Employee, EmployeeStatus
    from wecom_app.registry import Registry
    from wecom_app.settings import Settings

    db, clock, client = Database(database_url), SystemClock(), _client(api_base)
    registry = Registry()
    directory.register(registry, Settings.model_construct(naming_template="{department}-{name}"))
    with db.begin() as session:
        query = select(Employee.userid, Employee.main_department).where(
            Employee.status == EmployeeStatus.ACTIVE
        )
        people = list(session.execute(query.order_by(Employee.id).limit(count)))
    timings = []
    for index, (userid, dept) in enumerate(people):
        client.user_update(userid, position=f"岗位{index}")  # HR edits someone in WeCom
        event = UserChange(channel="contacts", msg_type="event", from_user="sys",
                           create_time=int(time.time()), event="change_contact",
                           change_type="update_user", user_id=userid,
                           fields={"UserID": userid, "Department": str(dept)})  # fmt: skip
        started = time.perf_counter()
        route = registry.handlers.route_for(event)
        assert route is not None and route.fetch is not None
        fetched = route.fetch(client, event)  # as the inbox does: read first, then one write
        with db.begin() as session:
            route.handler(HandlerContext(session, clock, registry.events, fetched=fetched), event)
        timings.append(time.perf_counter() - started)
    db.dispose()
    ordered = sorted(timings)
    return {"events": len(ordered), "median_ms": median(ordered) * 1000,
            "p99_ms": percentile(ordered, 99) * 1000}  # fmt: skip


def _run_child(*args: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "wecom_app.bench.sync", "--child", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise click.ClickException(f"benchmark step failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _start_simulator(employees: int, departments: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-c", "from wecom_app.cli import main; main()", "simulator",
               "--generate", str(employees), "--departments", str(departments),
               "--port", str(port), "--corp-id", CORP_ID, "--agent-id", str(AGENT_ID),
               "--app-secret", APP_SECRET, "--contacts-secret", CONTACTS_SECRET]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/_sim/calls", timeout=2).raise_for_status()
            return process, url
        except httpx.HTTPError:
            time.sleep(0.5)
    process.kill()
    raise click.ClickException("the simulator did not start")


@click.command()
@click.option("--employees", default=100_000, show_default=True)
@click.option("--departments", default=5_000, show_default=True)
@click.option("--db", "which", type=click.Choice(["sqlite", "postgres", "both"]), default="both")
@click.option("--events", default=200, show_default=True, help="Incremental events to time.")
@click.option("--child", hidden=True, is_flag=True)
@click.argument("child_args", nargs=-1)
def main(employees: int, departments: int, which: str, events: int, child: bool,
         child_args: tuple[str, ...]) -> None:  # fmt: skip
    """Full-sync and incremental-event benchmark for the org-chart mirror."""
    if child:
        kind, url, api = child_args[0], child_args[1], child_args[2]
        result = child_sync(url, api) if kind == "sync" else child_events(url, api, events)
        click.echo(json.dumps(result, ensure_ascii=False, default=str))
        return
    click.echo(f"generating a simulated org of {employees:,} employees in {departments:,} "
               "departments (simulator process)...")  # fmt: skip
    sim, api = _start_simulator(employees, departments)
    ok = True
    try:
        backends = ["postgres", "sqlite"] if which == "both" else [which]
        for backend in backends:
            url = fresh_postgres(POSTGRES_URL) if backend == "postgres" else fresh_sqlite("sync")
            ok &= _bench_backend(backend, url, api, departments, events)
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    click.echo("\nall targets met" if ok else "\nSOME TARGETS MISSED")
    sys.exit(0 if ok else 1)


def _bench_backend(backend: str, url: str, api: str, departments: int, events: int) -> bool:
    click.echo(f"\n== {backend} ==")
    first = _run_child("sync", url, api)
    again = _run_child("sync", url, api)
    incremental = _run_child("events", url, api, "--events", str(events))
    for label, run in (("full sync, empty mirror", first), ("full sync, no changes", again)):
        click.echo(
            f"{label:<24} {run['wall_seconds']:6.1f} s (fetch {run['fetch_seconds']:.1f} s)  "
            f"api calls {run['api_calls']:>5} "
            f"(departments {run['wecom_departments']})  peak {run['peak_mb']:6.0f} MB  "
            f"added {run['added']:,} changed {run['changed']:,} unchanged {run['unchanged']:,}"
        )
    median_ms, p99_ms = incremental["median_ms"], incremental["p99_ms"]
    click.echo(f"incremental update_user   median {median_ms:.1f} ms  "
               f"p99 {p99_ms:.1f} ms over {incremental['events']} events")  # fmt: skip
    checks = {
        f"full sync <= {SYNC_LIMIT_S:.0f} s": max(first["wall_seconds"], again["wall_seconds"])
        <= SYNC_LIMIT_S,
        f"peak memory <= {MEMORY_LIMIT_MB:.0f} MB": max(first["peak_mb"], again["peak_mb"])
        <= MEMORY_LIMIT_MB,
        "api calls <= departments + 20": first["api_calls"] <= departments + 20,
        f"one event <= {EVENT_LIMIT_MS:.0f} ms (median)": incremental["median_ms"]
        <= EVENT_LIMIT_MS,
    }
    for name, passed in checks.items():
        click.echo(f"  {'PASS' if passed else 'FAIL'}  {name}")
    return all(checks.values())


if __name__ == "__main__":
    main()
