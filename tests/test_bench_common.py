"""The benchmarks' pure helpers: statistics, tables, and the load generator's HTTP framing."""

from __future__ import annotations

import math
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from wecom_app.bench.callbacks import check_inbox
from wecom_app.bench.common import (
    format_table,
    median,
    percentile,
    phase_stats,
    verdict,
)
from wecom_app.bench.loadgen import ERROR, Outcome, build_request, parse_response, run


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7
    assert percentile([1.0, 2.0], 1) == 1


def test_percentile_of_nothing_is_nan_and_bad_pct_is_refused():
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 0)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_median_odd_even_empty():
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    assert math.isnan(median([]))


def test_phase_stats_converts_to_milliseconds_and_rate():
    stats = phase_stats([0.002, 0.001, 0.003, 0.010], errors=1, seconds=2.0)
    assert stats.requests == 4
    assert stats.errors == 1
    assert stats.throughput == 2.0
    assert stats.p50_ms == pytest.approx(2.0)
    assert stats.p99_ms == pytest.approx(10.0)
    assert phase_stats([], 0, 0.0).throughput == 0.0


def test_format_table_aligns_columns():
    table = format_table(
        ["phase", "req/s"], [["callback", 1234.56], ["bare", 5.0], ["x", math.nan]]
    )
    lines = table.splitlines()
    assert lines[0] == "phase      req/s"
    assert lines[1] == "--------  ------"
    assert lines[2] == "callback  1234.6"
    assert lines[3] == "bare        5.00"
    assert lines[4] == "x              -"


def test_verdict():
    assert verdict(True) == "PASS"
    assert verdict(False) == "FAIL"


def test_build_request_counts_body_bytes():
    raw = build_request("POST", "/wecom/callback?a=1", "收到".encode(), port=8123)
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"POST /wecom/callback?a=1 HTTP/1.1\r\nHost: 127.0.0.1:8123\r\n")
    assert b"Content-Length: 6" in head
    assert body == "收到".encode()


def test_parse_response_waits_for_the_whole_body():
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"
    assert parse_response(answer[:20]) is None
    assert parse_response(answer[:-1]) is None
    assert parse_response(answer + b"HTTP/1.1") == (200, len(answer), False)


def test_parse_response_sees_the_server_closing():
    assert parse_response(b"HTTP/1.1 503 X\r\nConnection: close\r\n\r\n") == (503, 37, True)
    assert parse_response(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n") == (200, 38, True)


def test_outcome_merges_and_counts():
    first, second = Outcome(), Outcome()
    first.indices.extend([0, 1])
    first.statuses.extend([200, 503])
    first.latencies.extend([0.1, 0.2])
    first.seconds = 1.0
    second.indices.extend([2])
    second.statuses.extend([ERROR])
    second.latencies.extend([0.3])
    second.seconds = 1.5
    first.add(second)
    assert first.accepted() == [0]
    assert first.errors == 2
    assert first.seconds == 1.5


def test_check_inbox_finds_lost_extra_and_duplicated(sqlite_url):
    from sqlalchemy import create_engine, text

    from wecom_app.db import normalise_url

    engine = create_engine(normalise_url(sqlite_url))
    with engine.begin() as conn:
        for n, msg_id in enumerate(["1", "2", "5"]):
            conn.execute(
                text(
                    "INSERT INTO inbox_events (channel, dedupe_key, msg_type, from_user,"
                    " create_time, msg_id, raw_xml, received_at, status, attempts)"
                    " VALUES ('app', :key, 'text', 'u', 0, :msg_id, '<xml/>',"
                    " '2026-01-05 09:00:00', 'pending', 0)"
                ),
                {"key": f"k{n}", "msg_id": msg_id},
            )
    engine.dispose()
    lost, extra, duplicated, rows = check_inbox(sqlite_url, [1, 2, 3, 3])
    assert (lost, extra, duplicated, rows) == (1, 1, 1, 3)


class _KeepAliveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    peers: ClassVar[Counter[int]] = Counter()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).peers[self.client_address[1]] += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.mark.parametrize("reconnect_every", [0, 10])
def test_loadgen_answers_every_request_and_reconnects_when_told(reconnect_every):
    _KeepAliveHandler.peers = Counter()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAliveHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        requests = [build_request("POST", f"/r{i}", b"x" * i, port) for i in range(100)]
        outcome = run(port, requests, seconds=30, concurrency=2, reconnect_every=reconnect_every)
    finally:
        server.shutdown()
        server.server_close()
    assert sorted(outcome.indices) == list(range(100))
    assert outcome.errors == 0
    served = _KeepAliveHandler.peers.values()
    if reconnect_every:  # no connection answers more than 10; 100 answers need at least 10
        assert max(served) <= 10 and len(served) >= 10
    else:  # both connections kept alive throughout
        assert len(served) == 2
