"""Benchmark the app callback against the bare endpoint, on SQLite and/or PostgreSQL.

For each database: migrate a fresh one, start gunicorn with config/gunicorn.conf.py, then
alternate timed phases of (a) POST /wecom/callback with valid, distinct, encrypted text messages
and (b) POST /livez with byte-for-byte the same requests (same query string, headers and body;
/livez ignores them), so the two differ only in what the app does with the request. Each phase
runs --rounds times and medians are quoted. Afterwards the inbox must hold exactly one row per
200 answer: nothing lost, nothing extra, nothing twice.

Besides throughput and latency, the table shows the CPU time gunicorn spent per request. Other
load on the machine lowers throughput but hardly changes CPU per request, so the CPU ratio
(bare / callback) is the steadier estimate of the throughput ratio an idle machine would give.

A last callback phase runs while a `wecom-app worker` on the same database talks to a WeCom
that answers every call after --slow-wecom seconds (group posts to send, member changes whose
details it must fetch): no transaction is open while it waits, so callbacks must not wait.

Usage: scripts/bench_callbacks [--db sqlite|postgres|both] [--seconds N] [--concurrency C]
                               [--workers W] [--threads T] [--rounds R] [--slow-wecom S]
                               [--strict]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from wecom_app.bench import loadgen
from wecom_app.bench.common import (
    DEFAULT_POSTGRES_URL,
    PhaseStats,
    default_workers,
    format_table,
    fresh_postgres,
    fresh_sqlite,
    gunicorn,
    median,
    phase_stats,
    server_cpu_seconds,
    start_cli,
    stop,
    verdict,
)
from wecom_app.db import normalise_url
from wecom_app.wecom.crypto import CallbackCrypto

CORP_ID = "ww0000000000bench"
AGENT_ID = "1000002"
TOKEN = "BenchCallbackToken"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
APP_SECRET = "bench-app-secret"
SAMPLE_ORG = Path(__file__).resolve().parents[2] / "config" / "sample-org.yaml"
CALLBACK_PATH = "/wecom/callback"
BARE_PATH = "/livez"

RATIO_TARGET = 0.35
P99_TARGET_MS = 50.0
BUSY_P99_TARGET_MS = 100.0  # callbacks while a worker waits on a slow WeCom
WARMUP_SECONDS = 1.0
# Upper bound on callback requests per second of a phase; each is encrypted up front.
MAX_RATE = 4000


@dataclass(frozen=True, slots=True)
class Report:
    """One database's results."""

    db: str
    callback: PhaseStats
    bare: PhaseStats
    accepted: int
    rows: int
    lost: int
    extra: int
    duplicated: int
    busy: PhaseStats | None = None  # callbacks while a worker talks to a slow WeCom
    busy_calls: int = 0  # WeCom calls the worker made meanwhile

    @property
    def ratio(self) -> float:
        """Callback throughput as a fraction of the bare endpoint's."""
        return self.callback.throughput / self.bare.throughput if self.bare.throughput else 0.0

    @property
    def cpu_ratio(self) -> float:
        """Server CPU per bare request over CPU per callback: the ratio an idle machine allows."""
        return self.bare.cpu_us / self.callback.cpu_us if self.callback.cpu_us else math.nan

    @property
    def rows_ok(self) -> bool:
        """Whether the inbox holds exactly the accepted messages, once each."""
        return self.rows == self.accepted and not (self.lost or self.extra or self.duplicated)

    @property
    def targets(self) -> list[tuple[str, bool]]:
        """Each target from the issue with whether this run met it."""
        found = [
            (f"ratio callback/bare >= {RATIO_TARGET}", self.ratio >= RATIO_TARGET),
            (f"callback p99 <= {P99_TARGET_MS:.0f} ms", self.callback.p99_ms <= P99_TARGET_MS),
            ("zero lost / duplicated inbox rows", self.rows_ok),
        ]
        if self.busy is not None:
            name = f"callback p99 with a worker on a slow WeCom <= {BUSY_P99_TARGET_MS:.0f} ms"
            found.append((name, self.busy.p99_ms <= BUSY_P99_TARGET_MS))
        return found


class Messages:
    """Encrypted, signed text messages with MsgIds never used before in this run."""

    def __init__(self, port: int) -> None:
        self.crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
        self.port = port
        self.next_msg_id = 7_000_000_000_000_000_000

    def batch(self, n: int) -> tuple[list[int], list[bytes], list[bytes]]:
        """n fresh messages as (MsgIds, callback requests, identical requests to /livez)."""
        now = str(int(time.time()))
        ids, callbacks, bares = [], [], []
        for _ in range(n):
            msg_id = self.next_msg_id
            self.next_msg_id += 1
            enc = self.crypto.encrypt(self._xml(msg_id, now), timestamp=now)
            query = f"?msg_signature={enc.signature}&timestamp={enc.timestamp}&nonce={enc.nonce}"
            body = (
                f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
                f"<AgentID><![CDATA[{AGENT_ID}]]></AgentID>"
                f"<Encrypt><![CDATA[{enc.encrypt}]]></Encrypt></xml>"
            ).encode()
            ids.append(msg_id)
            callbacks.append(loadgen.build_request("POST", CALLBACK_PATH + query, body, self.port))
            bares.append(loadgen.build_request("POST", BARE_PATH + query, body, self.port))
        return ids, callbacks, bares

    @staticmethod
    def _xml(msg_id: int, now: str) -> str:
        """A text message to the app from one of a few hundred employees."""
        return (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
            f"<FromUserName><![CDATA[user{msg_id % 300:03d}]]></FromUserName>"
            f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[收到 #{msg_id}]]></Content><MsgId>{msg_id}</MsgId>"
            f"<AgentID>{AGENT_ID}</AgentID></xml>"
        )


def server_env(database_url: str, args: argparse.Namespace) -> dict[str, str]:
    """The environment gunicorn and the app run with: same worker settings on every database."""
    return {
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_AGENT_ID": AGENT_ID,
        "WECOM_APP_SECRET": APP_SECRET,
        "WECOM_CALLBACK_TOKEN": TOKEN,
        "WECOM_CALLBACK_AES_KEY": AES_KEY,
        "WECOM_APP_API_TOKEN": "bench-api-token",
        "WECOM_API_BASE": "http://127.0.0.1:9",  # nothing here may call WeCom
        "DATABASE_URL": database_url,
        "WECOM_APP_LOG_LEVEL": "WARNING",
        "WEB_CONCURRENCY": str(args.workers),
        "GUNICORN_THREADS": str(args.threads),
        "GUNICORN_ACCESS_LOG": "-" if args.access_log else "off",
        "GUNICORN_LOG_LEVEL": "warning",
    }


def bench_database(db: str, database_url: str, args: argparse.Namespace) -> Report:
    """Run the alternating phases on one database and check its inbox afterwards."""
    env = server_env(database_url, args)
    os.environ.pop("WECOM_APP_CONFIG", None)  # the bench's settings, not a local config file
    cap = int(args.seconds * MAX_RATE)
    rows: dict[str, list[PhaseStats]] = {"callback": [], "bare": []}
    accepted: list[int] = []
    phase_cpu = [0.0]  # server CPU seconds of the last phase
    with gunicorn(env, name=f"callbacks-{db}") as server:
        messages = Messages(server.port)

        def phase(kind: str, seconds: float, n: int) -> loadgen.Outcome:
            ids, callback_reqs, bare_reqs = messages.batch(n)
            reqs = callback_reqs if kind == "callback" else bare_reqs
            cpu_before = server_cpu_seconds(server)
            outcome = loadgen.run(
                server.port,
                reqs,
                seconds=seconds,
                concurrency=args.concurrency,
                processes=args.loaders,
                repeat=kind == "bare",
                reconnect_every=args.reconnect_every,
            )
            phase_cpu[0] = server_cpu_seconds(server) - cpu_before
            if kind == "callback":
                accepted.extend(ids[i] for i in outcome.accepted())
                if len(outcome.indices) >= n:
                    print(f"  note: {db} callback phase used all {n} prepared messages early")
            return outcome

        phase("bare", WARMUP_SECONDS, 2000)
        phase("callback", WARMUP_SECONDS, int(WARMUP_SECONDS * MAX_RATE))
        for round_no in range(1, args.rounds + 1):
            for kind in ("bare", "callback"):
                out = phase(kind, args.seconds, cap if kind == "callback" else 2000)
                stats = phase_stats(out.latencies, out.errors, out.seconds, phase_cpu[0])
                rows[kind].append(stats)
                print(
                    f"  {db:8} round {round_no} {kind:8} {stats.requests:7d} req "
                    f"{stats.throughput:8.1f} req/s  p50 {stats.p50_ms:6.2f} ms  "
                    f"p99 {stats.p99_ms:6.2f} ms  cpu {stats.cpu_us:5.0f} us/req  "
                    f"errors {stats.errors}",
                    flush=True,
                )
        busy, busy_calls = None, 0
        if args.slow_wecom > 0:
            with slow_wecom_worker(database_url, env, args.slow_wecom) as calls:
                out = phase("callback", args.seconds, cap)
                busy = phase_stats(out.latencies, out.errors, out.seconds, phase_cpu[0])
                busy_calls = calls()
            print(
                f"  {db:8} with a worker on a {args.slow_wecom:g} s WeCom: {busy.requests} req "
                f"p50 {busy.p50_ms:6.2f} ms  p99 {busy.p99_ms:6.2f} ms  "
                f"errors {busy.errors}  (worker made {busy_calls} WeCom calls meanwhile)",
                flush=True,
            )
    lost, extra, duplicated, row_count = check_inbox(database_url, accepted)
    return Report(
        db,
        _median_stats(rows["callback"]),
        _median_stats(rows["bare"]),
        len(accepted),
        row_count,
        lost,
        extra,
        duplicated,
        busy,
        busy_calls,
    )


@contextmanager
def slow_wecom_worker(database_url: str, env: dict[str, str], delay: float) -> Iterator[Any]:
    """A `wecom-app worker` kept busy against a simulated WeCom that answers after `delay` s.

    Its outbox has group posts to send and its inbox member changes whose details it must
    fetch first, every call slow; yields a function counting the calls it made so far.
    """
    from wecom_app.simulator import SimConfig, SimulatorServer, load_org
    from wecom_app.simulator.state import Fault
    from wecom_app.wecom.client import WeComClient

    config = SimConfig(corp_id=CORP_ID, agent_id=int(AGENT_ID), app_secret=APP_SECRET)
    sim = SimulatorServer(load_org(SAMPLE_ORG), config).start()
    try:
        with WeComClient(CORP_ID, int(AGENT_ID), APP_SECRET, base_url=sim.url) as client:
            chatid = client.appchat_create("压测群", "zhaoming", ["zhaoming", "zhangyao"])
        seed_slow_work(database_url, chatid, list(sim.state.org.members))
        with sim.state.lock:
            for path in ("/cgi-bin/appchat/send", "/cgi-bin/user/get"):
                sim.state.faults.append(Fault(path, "delay", 1_000_000, delay=delay))
        worker = start_cli("callbacks.worker", ["worker"], {**env, "WECOM_API_BASE": sim.url})
        try:
            slow = ("/cgi-bin/appchat/send", "/cgi-bin/user/get")
            deadline = time.monotonic() + 60
            while not all(sim.state.calls[p] for p in slow):  # both lanes of work are busy
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise RuntimeError("the worker did not start talking to WeCom")
                time.sleep(0.1)
            before = sum(sim.state.calls[p] for p in slow)
            yield lambda: sum(sim.state.calls[p] for p in slow) - before
        finally:
            stop(worker)
    finally:
        sim.stop()


def seed_slow_work(database_url: str, chatid: str, userids: list[str]) -> None:
    """Group posts for the outbox and member changes (each needing user/get) for the inbox."""
    from sqlalchemy import insert, update

    from wecom_app.models import InboxEvent, OutboxMessage

    now = datetime.now(UTC)
    posts = [
        {"kind": "appchat_send", "lane": "default", "idempotency_key": f"slow-post-{i}",
         "payload": {"chatid": chatid, "msg": {"msgtype": "text", "text": {"content": f"{i}"}}},
         "status": "pending", "attempts": 0, "unanswered": 0, "created_at": now,
         "next_attempt_at": now}
        for i in range(400)
    ]  # fmt: skip
    changes = []
    for i in range(400):
        userid = userids[i % len(userids)]
        xml = (
            f"<xml><ToUserName>{CORP_ID}</ToUserName><FromUserName>sys</FromUserName>"
            f"<CreateTime>{1700000000 + i}</CreateTime><MsgType>event</MsgType>"
            f"<Event>change_contact</Event><ChangeType>update_user</ChangeType>"
            f"<UserID>{userid}</UserID></xml>"
        )
        changes.append({"channel": "contacts", "dedupe_key": f"slow-change-{i}",
                        "msg_type": "event", "event": "change_contact",
                        "change_type": "update_user", "from_user": "sys", "subject": userid,
                        "create_time": 1700000000 + i, "raw_xml": xml, "received_at": now,
                        "status": "pending", "attempts": 0})  # fmt: skip
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.begin() as conn:
            # The earlier phases' texts need nothing from WeCom: out of the worker's way, so
            # that it reaches the member changes at once.
            conn.execute(
                update(InboxEvent).where(InboxEvent.channel == "app").values(status="done")
            )
            conn.execute(insert(OutboxMessage), posts)
            conn.execute(insert(InboxEvent), changes)
    finally:
        engine.dispose()


def check_inbox(database_url: str, accepted: Sequence[int]) -> tuple[int, int, int, int]:
    """Compare stored MsgIds with accepted ones: (lost, extra, duplicated, rows)."""
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            stored = [
                int(v)
                for v in conn.execute(
                    text("SELECT msg_id FROM inbox_events WHERE channel = 'app'")
                ).scalars()
            ]
    finally:
        engine.dispose()
    stored_set, accepted_set = set(stored), set(accepted)
    lost = len(accepted_set - stored_set)
    extra = len(stored_set - accepted_set)
    duplicated = (len(stored) - len(stored_set)) + (len(accepted) - len(accepted_set))
    return lost, extra, duplicated, len(stored)


def _median_stats(runs: Sequence[PhaseStats]) -> PhaseStats:
    """Median of each figure over the rounds (requests and errors summed)."""
    return PhaseStats(
        requests=sum(r.requests for r in runs),
        errors=sum(r.errors for r in runs),
        seconds=sum(r.seconds for r in runs),
        p50_ms=median([r.p50_ms for r in runs]),
        p99_ms=median([r.p99_ms for r in runs]),
        cpu_us=median([r.cpu_us for r in runs]),
    )


def print_report(reports: Sequence[Report], args: argparse.Namespace) -> None:
    """Print the results table, the row checks and a PASS/FAIL per target."""
    print()
    print(
        f"workers={args.workers} threads={args.threads} concurrency={args.concurrency} "
        f"reconnect-every={args.reconnect_every} seconds/phase={args.seconds:g} "
        f"rounds={args.rounds}; bare = POST {BARE_PATH} "
        "with the same bytes as the callback; req/s over all rounds, p50/p99/cpu medians of rounds"
    )
    rows: list[list[object]] = []
    for r in reports:
        for name, s in (("callback", r.callback), ("bare", r.bare)):
            figures = [s.requests, s.throughput, s.p50_ms, s.p99_ms, s.cpu_us, s.errors]
            rows.append([f"{r.db} {name}", *figures])
        rows.append([f"{r.db} ratio callback/bare", "", r.ratio, "", "", r.cpu_ratio, ""])
        if r.busy is not None:
            b = r.busy
            rows.append([f"{r.db} callback, busy worker", b.requests, b.throughput, b.p50_ms,
                         b.p99_ms, b.cpu_us, b.errors])  # fmt: skip
    headers = ["phase", "requests", "req/s", "p50 ms", "p99 ms", "cpu us/req", "errors"]
    print(format_table(headers, rows))
    print()
    for r in reports:
        print(
            f"{r.db}: inbox rows {r.rows}, accepted (200) {r.accepted}, lost {r.lost}, "
            f"extra {r.extra}, duplicated {r.duplicated}"
        )
    print()
    for r in reports:
        for name, ok in r.targets:
            print(f"{verdict(ok)}  {r.db}: {name}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="scripts/bench_callbacks",
        description=__doc__.split("\n\n")[0],
        epilog="example: scripts/bench_callbacks --db sqlite --seconds 5 --concurrency 8",
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase [10]")
    parser.add_argument("--concurrency", type=int, default=16, help="open connections [16]")
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="gunicorn workers [WEB_CONCURRENCY's default]",
    )
    parser.add_argument("--threads", type=int, default=4, help="threads per worker [4]")
    parser.add_argument("--rounds", type=int, default=2, help="phases per kind [2]")
    parser.add_argument("--loaders", type=int, default=1, help="load generator processes [1]")
    parser.add_argument(
        "--reconnect-every",
        type=int,
        default=100,
        help="replace a connection after N answers, 0 = never [100]",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("WECOM_APP_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="reset and used for the run (WECOM_APP_BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--access-log", action="store_true", help="keep gunicorn's access log")
    parser.add_argument(
        "--slow-wecom",
        type=float,
        default=3.0,
        help="seconds WeCom takes to answer in the busy-worker phase, 0 = skip it [3]",
    )
    parser.add_argument(
        "--strict", action="store_true", help="also exit non-zero when a speed target fails"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit 1 when inbox rows mismatch (or, with --strict, a target fails)."""
    args = parse_args(argv)
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    reports = []
    for db in dbs:
        url = fresh_sqlite("callbacks") if db == "sqlite" else fresh_postgres(args.postgres_url)
        reports.append(bench_database(db, url, args))
    print_report(reports, args)
    failed = [r for r in reports if not r.rows_ok]
    if args.strict:
        failed = [r for r in reports if not all(ok for _, ok in r.targets)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
