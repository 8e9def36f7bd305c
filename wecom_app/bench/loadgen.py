"""A closed-loop HTTP/1.1 load generator for local benchmarks.

Requests are built as raw bytes before the clock starts; each worker process drives several
keep-alive connections from one selector loop, sending a connection's next request as soon as
its previous answer is complete. That costs the client a few microseconds per request, so on a
small machine the server under test, not the generator, gets the CPU. A phase is bounded twice:
by its duration and by the number of requests it was given. Only 127.0.0.1 is ever targeted.

A connection is replaced after `reconnect_every` answers. A keep-alive connection stays with
the server process that accepted it, so with a handful of connections one phase could land most
of them on one process and be limited by its single interpreter lock while the others idle;
reconnecting now and then lets the processes share the load, as a real client's connection
churn does, and makes phases comparable with each other.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import selectors
import socket
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import cycle
from typing import Any

HOST = "127.0.0.1"
ERROR = 0  # status recorded when a request got no HTTP answer (reset, timeout)


def build_request(method: str, target: str, body: bytes = b"", port: int = 80) -> bytes:
    """Render one HTTP/1.1 keep-alive request with a Content-Length body."""
    head = [
        f"{method} {target} HTTP/1.1",
        f"Host: {HOST}:{port}",
        "Content-Type: text/xml",
        f"Content-Length: {len(body)}",
        "",
        "",
    ]
    return "\r\n".join(head).encode("ascii") + body


def parse_response(buf: bytes | bytearray) -> tuple[int, int, bool] | None:
    """Return (status, bytes used, server closes) once buf holds a whole response, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buf[:end]).split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, close = 0, lines[0].startswith(b"HTTP/1.0")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    total = end + 4 + length
    return (status, total, close) if len(buf) >= total else None


@dataclass
class Outcome:
    """Every answered or failed request of a phase, in completion order."""

    indices: array = field(default_factory=lambda: array("q"))
    statuses: array = field(default_factory=lambda: array("h"))
    latencies: array = field(default_factory=lambda: array("d"))
    seconds: float = 0.0

    def add(self, other: Outcome) -> None:
        """Merge another process's results into this one."""
        self.indices.extend(other.indices)
        self.statuses.extend(other.statuses)
        self.latencies.extend(other.latencies)
        self.seconds = max(self.seconds, other.seconds)

    def accepted(self) -> list[int]:
        """Indices of the requests answered 200."""
        return [i for i, s in zip(self.indices, self.statuses, strict=True) if s == 200]

    @property
    def errors(self) -> int:
        """Requests answered with anything but 200, or not answered."""
        return sum(1 for s in self.statuses if s != 200)


def run(
    port: int,
    requests: Sequence[bytes],
    *,
    seconds: float,
    concurrency: int,
    processes: int = 1,
    repeat: bool = False,
    timeout: float = 10.0,
    reconnect_every: int = 0,
) -> Outcome:
    """Send requests over `concurrency` connections for `seconds` (or until they run out).

    reconnect_every > 0 replaces each connection after that many answers.
    """
    processes = max(1, min(processes, concurrency))
    ctx = mp.get_context("fork")
    ready, go, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    workers = []
    for n in range(processes):
        conns = concurrency // processes + (1 if n < concurrency % processes else 0)
        job = _Job(port, requests, n, processes, conns, seconds, timeout, repeat, reconnect_every)
        proc = ctx.Process(target=_worker, args=(job, ready, go, results), daemon=True)
        proc.start()
        workers.append(proc)
    for _ in workers:
        ready.get(timeout=30)
    go.set()
    outcome = Outcome()
    for _ in workers:
        outcome.add(results.get(timeout=seconds + timeout + 60))
    for proc in workers:
        proc.join(timeout=10)
    return outcome


@dataclass(frozen=True, slots=True)
class _Job:
    """One generator process's share of a phase."""

    port: int
    requests: Sequence[bytes]
    offset: int
    stride: int
    connections: int
    seconds: float
    timeout: float
    repeat: bool
    reconnect_every: int = 0


class _Conn:
    """One keep-alive connection and its request in flight."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.index = -1
        self.sent_at = 0.0
        self.answers = 0


def _worker(job: _Job, ready: Any, go: Any, results: Any) -> None:
    """Drive this process's connections until the deadline, then report."""
    indices = range(job.offset, len(job.requests), job.stride)
    feed = iter(cycle(indices) if job.repeat else indices)
    sel = selectors.DefaultSelector()
    conns = [_Conn(job.port) for _ in range(job.connections)]
    out = Outcome()
    ready.put(True)
    go.wait()
    start = time.monotonic()
    deadline = start + job.seconds
    for conn in conns:
        _send_next(sel, conn, job, feed)
    while sel.get_map():
        for key, _events in sel.select(timeout=0.2):
            _on_readable(sel, key.data, job, feed, deadline, out)
        _expire(sel, job, feed, deadline, out)
    out.seconds = time.monotonic() - start
    sel.close()
    results.put(out)


def _send_next(sel: selectors.BaseSelector, conn: _Conn, job: _Job, feed: Any) -> bool:
    """Send the connection's next request; False (and close it) when none are left."""
    index = next(feed, None)
    if index is None:
        conn.sock.close()
        return False
    conn.index = index
    conn.sent_at = time.monotonic()
    # On a broken connection the read that follows sees it and records the failure.
    with contextlib.suppress(OSError):
        conn.sock.sendall(job.requests[index])
    sel.register(conn.sock, selectors.EVENT_READ, conn)
    return True


def _on_readable(
    sel: selectors.BaseSelector, conn: _Conn, job: _Job, feed: Any, deadline: float, out: Outcome
) -> None:
    """Read what arrived; on a complete answer record it and send the next request."""
    try:
        data = conn.sock.recv(65536)
    except OSError:
        data = b""
    if not data:
        _fail(sel, conn, job, feed, deadline, out)
        return
    conn.buf += data
    parsed = parse_response(conn.buf)
    if parsed is None:
        return
    status, used, close = parsed
    now = time.monotonic()
    out.indices.append(conn.index)
    out.statuses.append(status)
    out.latencies.append(now - conn.sent_at)
    del conn.buf[:used]
    sel.unregister(conn.sock)
    conn.answers += 1
    if job.reconnect_every and conn.answers >= job.reconnect_every:
        close = True  # hand over to a fresh connection, which any server process may accept
    if close:
        conn.sock.close()
        if now >= deadline:
            return
        _reconnect_and_send(sel, conn, job, feed)
    elif now < deadline:
        _send_next(sel, conn, job, feed)
    else:
        conn.sock.close()


def _fail(
    sel: selectors.BaseSelector, conn: _Conn, job: _Job, feed: Any, deadline: float, out: Outcome
) -> None:
    """Record the request in flight as unanswered and start over on a new connection."""
    now = time.monotonic()
    out.indices.append(conn.index)
    out.statuses.append(ERROR)
    out.latencies.append(now - conn.sent_at)
    sel.unregister(conn.sock)
    conn.sock.close()
    if now < deadline:
        _reconnect_and_send(sel, conn, job, feed)


def _reconnect_and_send(sel: selectors.BaseSelector, conn: _Conn, job: _Job, feed: Any) -> None:
    """Replace the connection's socket and send its next request; drop it if that fails."""
    try:
        fresh = _Conn(job.port)
    except OSError:
        return
    conn.sock, conn.buf, conn.answers = fresh.sock, fresh.buf, 0
    _send_next(sel, conn, job, feed)


def _expire(
    sel: selectors.BaseSelector, job: _Job, feed: Any, deadline: float, out: Outcome
) -> None:
    """Fail requests that have waited longer than the timeout."""
    now = time.monotonic()
    for key in list(sel.get_map().values()):
        conn = key.data
        if now - conn.sent_at > job.timeout:
            _fail(sel, conn, job, feed, deadline, out)
