"""Helpers any benchmark can reuse: databases, a gunicorn under test, statistics, tables."""

from __future__ import annotations

import contextlib
import http.client
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from wecom_app.db import normalise_url, upgrade_database

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = ROOT / "config" / "gunicorn.conf.py"
BENCH_DIR = ROOT / ".bench"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/bench"


def default_workers() -> int:
    """The worker count config/gunicorn.conf.py picks without WEB_CONCURRENCY: 2 * cores + 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(2 * (cores or 1) + 1, 12)


# --- statistics (pure) ---------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile (0 < pct <= 100) of already sorted values; NaN when empty."""
    if not sorted_values:
        return math.nan
    if not 0 < pct <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {pct}")
    rank = math.ceil(pct / 100 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


def median(values: Sequence[float]) -> float:
    """The median of values (mean of the middle two for an even count); NaN when empty."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return math.nan
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(frozen=True, slots=True)
class PhaseStats:
    """What one timed phase of requests came to."""

    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_us: float = math.nan  # server CPU per request, microseconds

    @property
    def throughput(self) -> float:
        """Completed requests per second over the phase."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def phase_stats(
    latencies_s: Sequence[float], errors: int, seconds: float, cpu_s: float = math.nan
) -> PhaseStats:
    """Summarise per-request latencies (seconds) and the server CPU seconds of a phase."""
    ordered = sorted(latencies_s)
    return PhaseStats(
        requests=len(ordered),
        errors=errors,
        seconds=seconds,
        p50_ms=percentile(ordered, 50) * 1000,
        p99_ms=percentile(ordered, 99) * 1000,
        cpu_us=cpu_s / len(ordered) * 1e6 if ordered else math.nan,
    )


# --- output (pure) -------------------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as a plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [
            row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i])
            for i in range(len(widths))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _cell(value: object) -> str:
    """Format one table cell: floats with one decimal (two below 10), the rest as str."""
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


# --- databases -----------------------------------------------------------------------------------


def fresh_sqlite(name: str) -> str:
    """Delete and re-migrate a SQLite file under .bench/; return its URL."""
    BENCH_DIR.mkdir(exist_ok=True)
    path = BENCH_DIR / f"{name}.db"
    for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    upgrade_database(url)
    return url


def fresh_postgres(url: str = DEFAULT_POSTGRES_URL) -> str:
    """Create the database if missing, drop everything in it, re-migrate; return the URL."""
    parsed = make_url(normalise_url(url))
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()
    engine = create_engine(parsed, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    upgrade_database(url)
    return url


# --- the server under test -----------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Server:
    """A running gunicorn: where it listens and where its output goes."""

    host: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]


@contextmanager
def gunicorn(
    env: Mapping[str, str],
    *,
    name: str,
    app: str = "wecom_app:create_app()",
    ready_path: str = "/livez",
) -> Iterator[Server]:
    """Run gunicorn with config/gunicorn.conf.py on a free local port until the block ends."""
    BENCH_DIR.mkdir(exist_ok=True)
    port = free_port()
    log_path = BENCH_DIR / f"{name}.gunicorn.log"
    full_env = {**os.environ, **env, "GUNICORN_BIND": f"127.0.0.1:{port}"}
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), app]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    server = Server("127.0.0.1", port, log_path, process)
    try:
        wait_ready(server, ready_path)
        yield server
    finally:
        stop(process)


def wait_ready(server: Server, path: str, timeout: float = 30.0) -> None:
    """Poll GET path until it answers 200; fail early if gunicorn exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with {server.process.returncode}: see {server.log_path}"
            )
        conn = http.client.HTTPConnection(server.host, server.port, timeout=2)
        try:
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn not ready after {timeout:.0f} s: see {server.log_path}")


def start_cli(name: str, argv: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Run a `wecom-app` command as a child process, its output in .bench/<name>.log."""
    BENCH_DIR.mkdir(exist_ok=True)
    with (BENCH_DIR / f"{name}.log").open("wb") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-c", "from wecom_app.cli import main; main()", *argv],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def server_cpu_seconds(server: Server) -> float:
    """CPU time (user + system) used so far by gunicorn and its workers; NaN off Linux.

    On a shared machine this is steadier than throughput: other load slows requests down but
    barely changes what each one costs.
    """
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    pids = [server.process.pid]
    try:
        children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
        pids += [int(p) for p in children.read_text().split()]
        total = 0
        for pid in pids:
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
    except OSError:
        return math.nan
    return total / tick


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Ask gunicorn to shut down gracefully; kill it if it takes too long."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
