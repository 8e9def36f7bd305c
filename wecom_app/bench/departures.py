"""Benchmark departures: 1,000 encrypted delete_user callbacks while 200 managed groups exist.

1. Generate an org (the simulator's generator, same seed in both processes), fill the mirror.
2. Start gunicorn (config/gunicorn.conf.py) and the simulator as a separate process whose contacts
   callback points at the app; create 200 managed groups, one per department, through the app.
3. Start `wecom-app worker` processes; have the simulator delete 1,000 group members and deliver
   each delete_user as an encrypted callback (`/_sim/deliver/delete_user`).
4. Wait until every departed member is out of every group; latency of a removal = the simulator's
   recorded time of the `appchat/update` that removed the member − the time the callback was sent.

Usage: scripts/bench_departures [--db postgres|sqlite] [--groups N] [--departures N]
                                [--rate PER_SECOND] [--concurrency C] [--worker-processes P]
PostgreSQL: WECOM_APP_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/
bench_groups; created if missing and wiped on every run).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from wecom_app.bench.common import (
    BENCH_DIR,
    format_table,
    free_port,
    fresh_postgres,
    fresh_sqlite,
    gunicorn,
    percentile,
    start_cli,
    stop,
    verdict,
)
from wecom_app.bench.mirror import load_mirror
from wecom_app.clock import SystemClock
from wecom_app.compose import Composition
from wecom_app.db import Database
from wecom_app.jobs import Job, JobContext
from wecom_app.models import GroupAudit, OutboxMessage
from wecom_app.simulator import Org, generate_org

CORP_ID = "ww00000departures"
AGENT_ID = 1000002
APP_SECRET = "bench-app-secret"
CONTACTS_SECRET = "bench-contacts-secret"
TOKEN, AES_KEY = "BenchDepartToken", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
C_TOKEN, C_AES_KEY = "BenchContactsTok", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SEED = 20260105
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/bench_groups"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--employees", type=int, default=8000)
    parser.add_argument("--departments", type=int, default=260)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--departures", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="callbacks/s; 0 = flat out")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--worker-processes", type=int, default=1, help="`wecom-app worker`s")
    parser.add_argument("--timeout", type=float, default=600)
    return parser.parse_args(argv)


def app_env(database_url: str, sim_url: str, args: argparse.Namespace) -> dict[str, str]:
    """Settings for gunicorn and the worker processes."""
    return {
        "WECOM_CORP_ID": CORP_ID, "WECOM_AGENT_ID": str(AGENT_ID),
        "WECOM_APP_SECRET": APP_SECRET, "WECOM_CONTACTS_SECRET": CONTACTS_SECRET,
        "WECOM_CALLBACK_TOKEN": TOKEN, "WECOM_CALLBACK_AES_KEY": AES_KEY,
        "WECOM_CONTACTS_TOKEN": C_TOKEN, "WECOM_CONTACTS_AES_KEY": C_AES_KEY,
        "WECOM_APP_API_TOKEN": "bench-api-token", "WECOM_API_BASE": sim_url,
        "WECOM_CALLBACK_MAX_AGE": "0", "DATABASE_URL": database_url,
        "WECOM_APP_LOG_LEVEL": "WARNING", "WEB_CONCURRENCY": str(args.workers),
        "GUNICORN_ACCESS_LOG": "off", "GUNICORN_LOG_LEVEL": "warning",
    }  # fmt: skip


def start_simulator(args: argparse.Namespace, port: int, app_port: int) -> Any:
    """The simulator as its own process, with the contacts callback pointing at the app."""
    argv = [
        "simulator", "--port", str(port), "--generate", str(args.employees),
        "--departments", str(args.departments), "--seed", str(SEED), "--corp-id", CORP_ID,
        "--agent-id", str(AGENT_ID), "--app-secret", APP_SECRET,
        "--contacts-secret", CONTACTS_SECRET,
        "--contacts-callback-url", f"http://127.0.0.1:{app_port}/wecom/contacts/callback",
        "--contacts-token", C_TOKEN, "--contacts-aes-key", C_AES_KEY,
    ]  # fmt: skip
    proc = start_cli("departures.simulator", argv, {})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("simulator exited early: see .bench/departures.simulator.log")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_sim/clock", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("simulator not up after 60 s")


def pick_departments(org: Org, count: int) -> list[tuple[int, list[str]]]:
    """`count` departments with 3 to 2000 active members each, with those members."""
    members: dict[int, list[str]] = {}
    for m in org.members.values():
        if m.status == 1:
            members.setdefault(m.main_department, []).append(m.userid)
    chosen = [(d, sorted(u)) for d, u in sorted(members.items()) if 3 <= len(u) <= 2000]
    if len(chosen) < count:
        raise SystemExit(f"only {len(chosen)} departments fit; raise --departments/--employees")
    return chosen[:count]


def create_groups(
    composition: Composition, departments: list[tuple[int, list[str]]], org: Org
) -> None:
    """One managed group per department, created through the app against the simulator."""
    from wecom_app.groups import service
    from wecom_app.groups.rules import GroupRules
    from wecom_app.groups.service import GroupSpec

    for dept_id, members in departments:
        leaders = [u for u in org.departments[dept_id].department_leader if u in members]
        owner = leaders[0] if leaders else members[0]
        backup = next(u for u in members if u != owner)
        only = {"id": dept_id, "include_children": False}
        spec = GroupSpec(name=f"{org.departments[dept_id].name}工作群"[:50], owner=owner,
                         backup_owner=backup, chatid=f"dept{dept_id}",
                         rules=GroupRules.from_dict({"departments": [only]}))  # fmt: skip
        group, outcome = service.create_now(
            composition.services, composition.outbox(), spec, actor="bench"
        )
        if group.status != "active":
            raise SystemExit(f"could not create {spec.chatid}: {outcome}")


def _skipped(ctx: JobContext) -> dict[str, Any]:
    return {"skipped": "run by the benchmark before the worker started"}


def deliver_all(sim_url: str, userids: list[str], rate: float, concurrency: int) -> dict:
    """Have the simulator delete each member and deliver delete_user; return send times."""
    sent: dict[str, float] = {}
    failures: list[str] = []
    lock = threading.Lock()
    started = time.time()
    local = threading.local()

    def one(index_userid: tuple[int, str]) -> None:
        index, userid = index_userid
        if rate > 0:
            time.sleep(max(0.0, started + index / rate - time.time()))
        if not hasattr(local, "http"):
            local.http = httpx.Client(base_url=sim_url, timeout=30)
        at = time.time()
        answer = local.http.post("/_sim/deliver/delete_user", json={"userid": userid}).json()
        with lock:
            sent[userid] = at
            if answer.get("status") != 200:
                failures.append(userid)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, enumerate(userids)))
    return {"sent": sent, "failures": failures, "seconds": time.time() - started}


def daily_check(composition: Composition, db: Database, sim_url: str) -> dict[str, Any]:
    """Run the daily membership check once (timed), and mark today's daily jobs as done so the
    worker measures departures in steady state rather than its start-of-day catch-up."""
    from wecom_app import jobs
    from wecom_app.groups.daily import check_all

    before = httpx.get(f"{sim_url}/_sim/calls").json()["total"]
    started = time.perf_counter()
    summary = check_all(composition.services)
    seconds = time.perf_counter() - started
    calls = httpx.get(f"{sim_url}/_sim/calls").json()["total"] - before
    now = SystemClock().now()
    for jb in composition.registry.jobs:
        slot = jb.slot(now) if jb.daily_at is not None else None
        if slot is not None:
            run_id = jobs.claim_slot(db, jb.name, slot, now)
            if run_id is not None:  # done by hand just above: record it as run
                skip = Job(jb.name, _skipped, jb.every, jb.daily_at)
                jobs.run_claimed(JobContext(composition.services), skip, run_id)
    print(f"  daily check of {summary['groups']} groups: {seconds:.1f} s, {calls} API calls, "
          f"{len(summary['drifted'])} drifted", flush=True)  # fmt: skip
    return {"seconds": seconds, "calls": calls, "drifted": len(summary["drifted"])}


def wait_removed(db: Database, expected: int, timeout: float) -> float:
    """Wait until every departure removal is answered by WeCom (applied or failed)."""
    started = time.time()
    while time.time() - started < timeout:
        with db.begin() as session:
            done = session.scalar(
                select(func.count()).select_from(GroupAudit).where(
                    GroupAudit.actor == "departure", GroupAudit.action == "remove",
                    GroupAudit.outcome != "queued",
                )
            )  # fmt: skip
        if (done or 0) >= expected:
            return time.time() - started
        time.sleep(0.5)
    return float("nan")


def removal_latencies(sim_url: str, sent: dict[str, float]) -> tuple[list[float], dict[str, Any]]:
    """Per (member, group) removal: simulator's update time − callback send time, in seconds."""
    chats = httpx.get(f"{sim_url}/_sim/appchats", timeout=60).json()["chats"]
    latencies, updates, notices, still_in = [], 0, 0, 0
    for chat in chats:
        updates += len(chat["changes"])
        notices += len(chat["messages"])
        still_in += sum(1 for u in chat["userlist"] if u in sent)
        for change in chat["changes"]:
            at = datetime.fromisoformat(change["at"]).timestamp()
            latencies += [at - sent[u] for u in change["removed"] if u in sent]
    return sorted(latencies), {"updates": updates, "notices": notices, "still_in": still_in}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    from wecom_app.compose import compose
    from wecom_app.settings import load_settings

    os.environ.pop("WECOM_APP_CONFIG", None)
    BENCH_DIR.mkdir(exist_ok=True)
    url = (
        fresh_postgres(os.environ.get("WECOM_APP_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL))
        if args.db == "postgres"
        else fresh_sqlite("departures")
    )
    print(f"departures benchmark on {args.db}: {args.groups} groups, {args.departures} departures")
    org = generate_org(args.employees, args.departments, SEED)
    db = Database(url)
    load_mirror(db, org, SystemClock().now())
    departments = pick_departments(org, args.groups)
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    env = app_env(url, sim_url, args)
    f: dict[str, Any] = {}
    with ExitStack() as stack:
        server = stack.enter_context(gunicorn(env, name="departures", ready_path="/healthz"))
        sim = start_simulator(args, sim_port, server.port)
        stack.callback(stop, sim)
        os.environ.update(env)
        composition = compose(load_settings(), clock=SystemClock())
        stack.callback(composition.close)
        started = time.perf_counter()
        create_groups(composition, departments, org)
        f["create_s"] = time.perf_counter() - started
        print(f"  created {args.groups} groups in {f['create_s']:.1f} s", flush=True)
        # The creates above are setup: give the measured hour WeCom's full 1000-change budget,
        # in the simulator and in the app's appchat lane (as if the groups were an hour old).
        httpx.post(f"{sim_url}/_sim/config",
                   json={"limits": {"appchat_changes_per_hour": 1000 + args.groups}})  # fmt: skip
        with db.begin() as session:
            for row in session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == "appchat_create")
            ):
                row.done_at = (row.done_at or SystemClock().now()) - timedelta(hours=1)
        f["daily"] = daily_check(composition, db, sim_url)
        members = [u for _, us in departments for u in us]
        leaving = random.Random(SEED).sample(members, min(args.departures, len(members)))
        calls_before = Counter(httpx.get(f"{sim_url}/_sim/calls").json()["calls"])
        for i in range(args.worker_processes):
            stack.callback(stop, start_cli(f"departures.worker{i}", ["worker"], env))
        time.sleep(2)  # let the workers start
        result = deliver_all(sim_url, leaving, args.rate, args.concurrency)
        print(f"  delivered {len(result['sent'])} callbacks in {result['seconds']:.1f} s "
              f"({len(result['failures'])} not answered 200)", flush=True)  # fmt: skip
        f["wait_s"] = wait_removed(db, len(leaving), args.timeout)
        latencies, f["sim"] = removal_latencies(sim_url, result["sent"])
        calls = Counter(httpx.get(f"{sim_url}/_sim/calls").json()["calls"])
        calls.subtract(calls_before)
        f["calls"] = {k: v for k, v in calls.items() if v}
    f["outbox"] = outbox_summary(db)
    report(args, leaving, result, latencies, f)
    db.dispose()
    return 0


def outbox_summary(db: Database) -> dict[str, int]:
    """Outbox rows by kind and status, and how many hit an error on the way."""
    with db.begin() as session:
        rows = session.execute(
            select(OutboxMessage.kind, OutboxMessage.status, func.count()).group_by(
                OutboxMessage.kind, OutboxMessage.status
            )
        ).all()
        errors = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.errcode.is_not(None))
        )
    summary = {f"{kind}/{status}": int(n) for kind, status, n in rows}
    summary["with_errcode"] = int(errors or 0)
    return summary


def report(
    args: argparse.Namespace,
    leaving: list[str],
    result: dict[str, Any],
    latencies: list[float],
    f: dict[str, Any],
) -> None:
    """Print the figures and whether the 10 s p99 target was met."""
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    rows = [
        ("database", args.db),
        ("managed groups", args.groups),
        ("departures (encrypted delete_user callbacks)", len(leaving)),
        (
            "daily check of all groups (s / API calls)",
            f"{f['daily']['seconds']:.1f} / {f['daily']['calls']}",
        ),
        ("callback send rate (per s)", len(leaving) / result["seconds"]),
        ("removals observed in the simulator", len(latencies)),
        ("departed members still in a group", f["sim"]["still_in"]),
        ("callback → removal p50 (s)", p50),
        ("callback → removal p99 (s)", p99),
        ("callback → removal max (s)", latencies[-1] if latencies else float("nan")),
        ("appchat/update calls", f["calls"].get("/cgi-bin/appchat/update", 0)),
        ("appchat/send calls (in-group notices)", f["calls"].get("/cgi-bin/appchat/send", 0)),
        ("all API calls in the measured phase", sum(f["calls"].values())),
        (
            "API calls by path",
            ", ".join(f"{k.split('/cgi-bin/')[-1]} {v}" for k, v in sorted(f["calls"].items())),
        ),
        ("outbox", ", ".join(f"{k} {v}" for k, v in sorted(f["outbox"].items()))),
    ]
    print()
    print(format_table(["figure", "value"], rows))
    ok = p99 <= 10 and f["sim"]["still_in"] == 0 and len(latencies) >= len(leaving)
    print(f"\nevery departure removed, p99 ≤ 10 s: {verdict(ok)}")


if __name__ == "__main__":
    sys.exit(main())
