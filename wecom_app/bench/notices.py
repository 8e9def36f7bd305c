"""Benchmark a notice to a 100,000-employee org: audience, receipts, sends, then 100,000 acks.

1. Generate the org (the simulator's generator), fill the mirror in bulk, start the simulator.
2. Create the notice to everyone: time to resolve the audience and record the receipts.
3. Drain the outbox into the simulator: message/send calls (target: 100 for 100,000 people).
4. Start gunicorn (config/gunicorn.conf.py) and `wecom-app worker` processes; post one encrypted
   card click per recipient to /wecom/callback, as WeCom would, and wait until every receipt is
   acknowledged and every clicker's card updated: sustained ack rate, p99 callback latency.
5. Check the receipts: every recipient acknowledged once, by button, nothing else touched.

Usage: scripts/bench_notices [--db postgres|sqlite] [--employees N] [--concurrency C]
                             [--workers W] [--worker-processes P]
PostgreSQL: WECOM_APP_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/
bench_notices; created if missing and wiped on every run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select

from wecom_app.bench import loadgen
from wecom_app.bench.common import (
    format_table,
    fresh_postgres,
    fresh_sqlite,
    gunicorn,
    phase_stats,
    start_cli,
    stop,
    verdict,
)
from wecom_app.bench.mirror import load_mirror
from wecom_app.clock import SystemClock
from wecom_app.compose import Composition, compose
from wecom_app.db import Database
from wecom_app.models import Notice, OutboxMessage, Receipt
from wecom_app.notices import delivery, service
from wecom_app.settings import load_settings
from wecom_app.simulator import Channel, SimConfig, SimulatorServer, generate_org, payloads
from wecom_app.simulator.delivery import Deliverer
from wecom_app.sla.policy import PolicyBook

CORP_ID = "ww0000000notices"
AGENT_ID = 1000002
APP_SECRET = "bench-app-secret"
TOKEN = "BenchNoticeToken"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/bench_notices"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--employees", type=int, default=100_000)
    parser.add_argument("--departments", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--worker-processes", type=int, default=1, help="`wecom-app worker`s")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for acks")
    return parser.parse_args(argv)


def app_env(database_url: str, sim_url: str, args: argparse.Namespace) -> dict[str, str]:
    """Settings for gunicorn and the worker processes."""
    return {
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_AGENT_ID": str(AGENT_ID),
        "WECOM_APP_SECRET": APP_SECRET,
        "WECOM_CALLBACK_TOKEN": TOKEN,
        "WECOM_CALLBACK_AES_KEY": AES_KEY,
        "WECOM_APP_API_TOKEN": "bench-api-token",
        "WECOM_API_BASE": sim_url,
        "WECOM_CALLBACK_MAX_AGE": "0",
        "DATABASE_URL": database_url,
        "WECOM_APP_LOG_LEVEL": "WARNING",
        "WEB_CONCURRENCY": str(args.workers),
        "GUNICORN_ACCESS_LOG": "off",
        "GUNICORN_LOG_LEVEL": "warning",
    }


def timed(label: str, fn: Any, *a: Any) -> tuple[Any, float]:
    """Run fn, print and return its result with the seconds it took."""
    started = time.perf_counter()
    result = fn(*a)
    seconds = time.perf_counter() - started
    print(f"  {label}: {seconds:.2f} s", flush=True)
    return result, seconds


def create_notice(db: Database) -> tuple[int, int, str]:
    """Create the notice to everyone; return (notice id, recipients, task prefix)."""
    draft = service.draft_from(
        {"title": "全员安全培训通知", "body": "请于本周五前完成。", "audience": {"everyone": True}},
        PolicyBook(),
    )
    with db.begin() as session:
        notice, plan = service.create(session, draft, SystemClock().now())
        return notice.id, len(plan.audience.recipients), notice.task_prefix


def send_all(composition: Composition) -> None:
    """Drain the outbox until the cards are all sent."""
    outbox = composition.outbox()
    while outbox.drain(20):
        pass


def click_requests(sim: SimulatorServer, db: Database, notice_id: int, port: int) -> list[bytes]:
    """One encrypted card click per recipient, as raw HTTP requests to /wecom/callback."""
    from wecom_app.models import Employee

    with db.begin() as session:
        rows = session.execute(
            select(Employee.userid, Receipt.batch)
            .join(Receipt, Receipt.employee_id == Employee.id)
            .where(Receipt.notice_id == notice_id)
        ).all()
        prefix = session.get(Notice, notice_id).task_prefix  # type: ignore[union-attr]
    deliverer = Deliverer(CORP_ID)
    now = int(time.time())
    requests = []
    for userid, batch in rows:
        task = f"{prefix}-{batch}"
        code = sim.state.new_response_code(task, [userid])
        xml = payloads.card_event(
            CORP_ID, AGENT_ID, userid, now, event_key=delivery.ACK_KEY, task_id=task,
            card_type="button_interaction", response_code=code,
        )  # fmt: skip
        body, query = deliverer.envelope(TOKEN, AES_KEY, xml, AGENT_ID, now)
        target = "/wecom/callback?" + urlencode(query)
        requests.append(loadgen.build_request("POST", target, body.encode(), port))
    return requests


def counts(db: Database, notice_id: int) -> tuple[int, int]:
    """(acknowledged receipts, card updates done)."""
    with db.begin() as session:
        acked = session.scalar(
            select(func.count())
            .select_from(Receipt)
            .where(Receipt.notice_id == notice_id, Receipt.state == "acknowledged")
        )
        updated = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.kind == "update_template_card", OutboxMessage.status == "done")
        )
    return int(acked or 0), int(updated or 0)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    os.environ.pop("WECOM_APP_CONFIG", None)
    url = (
        fresh_postgres(os.environ.get("WECOM_APP_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL))
        if args.db == "postgres"
        else fresh_sqlite("notices")
    )
    print(f"notices benchmark on {args.db}: {args.employees} employees", flush=True)
    org, _ = timed("generate org", generate_org, args.employees, args.departments)
    db = Database(url)
    _, _ = timed("fill mirror", load_mirror, db, org, SystemClock().now())
    config = SimConfig(corp_id=CORP_ID, agent_id=AGENT_ID, app_secret=APP_SECRET)
    figures: dict[str, Any] = {}
    with ExitStack() as stack:
        sim = stack.enter_context(SimulatorServer(org, config))
        env = app_env(url, sim.url, args)
        os.environ.update(env)
        composition = compose(load_settings(), clock=SystemClock())
        stack.callback(composition.close)
        server = stack.enter_context(gunicorn(env, name="notices", ready_path="/healthz"))
        callback_url = f"http://127.0.0.1:{server.port}/wecom/callback"
        config.app_callback = Channel(callback_url, TOKEN, AES_KEY)
        (notice_id, recipients, _prefix), figures["create_s"] = timed(
            "resolve audience + record receipts", create_notice, db
        )
        _, figures["send_s"] = timed("send cards (outbox → simulator)", send_all, composition)
        figures["sends"] = sim.state.calls["/cgi-bin/message/send"]
        delivered = sum(len(m["delivered"]) for m in sim.state.messages)
        requests, _ = timed("encrypt card clicks", click_requests, sim, db, notice_id, server.port)
        for i in range(args.worker_processes):
            stack.callback(stop, start_cli(f"notices.worker{i}", ["worker"], env))
        started = time.perf_counter()
        outcome = loadgen.run(
            server.port, requests, seconds=args.timeout, concurrency=args.concurrency
        )
        post_s = time.perf_counter() - started
        stats = phase_stats(outcome.latencies, outcome.errors, outcome.seconds)
        print(f"  callbacks posted: {stats.requests} in {post_s:.1f} s, errors {stats.errors}")
        acked = updated = 0
        acks_s = updates_s = float("nan")
        while time.perf_counter() - started < args.timeout:
            acked, updated = counts(db, notice_id)
            elapsed = time.perf_counter() - started
            if acked >= recipients and acks_s != acks_s:
                acks_s = elapsed
            if updated >= recipients:
                updates_s = elapsed
                break
            time.sleep(0.5)
        figures.update(acked=acked, updated=updated, acks_s=acks_s, updates_s=updates_s)
        figures["stats"] = stats
        figures["card_updates_sim"] = len(sim.state.card_updates)
    report(args, recipients, delivered, figures, check(db, notice_id))
    db.dispose()
    return 0


def check(db: Database, notice_id: int) -> dict[str, int]:
    """Receipts by state and channel at the end."""
    with db.begin() as session:
        rows = session.execute(
            select(Receipt.state, Receipt.ack_channel, func.count())
            .where(Receipt.notice_id == notice_id)
            .group_by(Receipt.state, Receipt.ack_channel)
        ).all()
    return {f"{state}/{channel or '-'}": n for state, channel, n in rows}


def report(
    args: argparse.Namespace,
    recipients: int,
    delivered: int,
    f: dict[str, Any],
    states: dict[str, int],
) -> None:
    """Print the figures and whether the targets were met."""
    stats = f["stats"]
    rows = [
        ("recipients (active employees)", recipients),
        ("resolve audience + record receipts (s)", f["create_s"]),
        ("send cards through the outbox (s)", f["send_s"]),
        ("message/send calls", f["sends"]),
        ("cards delivered by the simulator", delivered),
        ("callbacks accepted (200)", stats.requests - stats.errors),
        ("callback rate while posting (req/s)", stats.throughput),
        ("callback p50 latency (ms)", stats.p50_ms),
        ("callback p99 latency (ms)", stats.p99_ms),
        ("acks recorded", f["acked"]),
        ("time from first callback to last ack (s)", f["acks_s"]),
        ("sustained ack rate (acks/s)", f["acked"] / f["acks_s"]),
        ("cards updated (outbox done / simulator)", f"{f['updated']} / {f['card_updates_sim']}"),
        ("time from first callback to last card update (s)", f["updates_s"]),
        ("receipts by state/channel", ", ".join(f"{k} {v}" for k, v in sorted(states.items()))),
    ]
    print()
    print(format_table(["figure", "value"], rows))
    sends_target = -(-recipients // delivery.BATCH_SIZE)
    ok_sends = f["sends"] <= sends_target and delivered == recipients
    ok_acks = states.get("acknowledged/button", 0) == recipients == f["acked"]
    print(f"\nsends ≤ {sends_target} and one card each: {verdict(ok_sends)}")
    print(f"every recipient acknowledged once, by button: {verdict(ok_acks)}")


if __name__ == "__main__":
    sys.exit(main())
