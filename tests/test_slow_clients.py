"""Slow clients: connections dribbling bytes must not stop WeCom's callbacks.

gunicorn's threads read requests themselves, so the documented deployment puts nginx in front
with config/nginx/wecom-app-proxy.conf. This runs real gunicorn (2 workers x 4 threads, the
8 threads of the measured case) and real nginx with that file, and shows both halves: straight
to gunicorn the dribblers starve the callbacks; through nginx they do not. (Ten dribblers are
enough when the kernel spreads them evenly over the two workers; more make it certain.)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import API_TOKEN, APP_AES_KEY, APP_TOKEN, CORP_ID
from tests.helpers import envelope, signed_query, text_xml
from wecom_app.bench.common import free_port, gunicorn
from wecom_app.wecom.crypto import CallbackCrypto

ROOT = Path(__file__).resolve().parent.parent
PROXY_CONF = ROOT / "config" / "nginx" / "wecom-app-proxy.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
# Far more than the 8 threads of two workers: one worker may take most of the connections, and
# the other must still have all its threads held (24 left one worker free now and then)
DRIBBLERS = 64

pytestmark = pytest.mark.skipif(
    NGINX is None and not os.environ.get("WECOM_APP_REQUIRE_TOOLS"),
    reason="nginx is not installed (scripts/test installs it)",
)


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[int]:
    """gunicorn with the shipped config on a migrated SQLite database; yields its port."""
    env = {
        "WECOM_CORP_ID": CORP_ID, "WECOM_AGENT_ID": "1000002", "WECOM_APP_SECRET": "s",
        "WECOM_CALLBACK_TOKEN": APP_TOKEN, "WECOM_CALLBACK_AES_KEY": APP_AES_KEY,
        "WECOM_APP_API_TOKEN": API_TOKEN, "WECOM_API_BASE": "http://127.0.0.1:9",
        "DATABASE_URL": sqlite_url, "WECOM_APP_SPOOL_DIR": str(tmp_path / "spool"),
        "WECOM_CALLBACK_MAX_AGE": "0", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4",
        "GUNICORN_ACCESS_LOG": "off", "WECOM_APP_LOG_LEVEL": "WARNING",
    }  # fmt: skip
    with gunicorn(env, name="slow-clients", ready_path="/livez") as running:
        yield running.port


@pytest.fixture
def nginx(server: int, tmp_path: Path) -> Iterator[int]:
    """nginx in front of gunicorn with the shipped proxy settings; yields its port."""
    assert NGINX is not None, "nginx is required here (WECOM_APP_REQUIRE_TOOLS is set)"
    port = free_port()
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / sub).mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"""worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    upstream wecom_app {{ server 127.0.0.1:{server}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        include {PROXY_CONF};
    }}
}}
""",
        encoding="utf-8",
    )
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp_path)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "error.log").read_text()
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def dribble(port: int, stop: threading.Event, headers_first: bool) -> None:
    """One slow client: a request sent one byte every second until told to stop."""
    request = (
        b"POST /wecom/callback?msg_signature=a&timestamp=1&nonce=n HTTP/1.1\r\n"
        b"Host: localhost\r\nContent-Type: text/xml\r\nContent-Length: 4000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        if not headers_first:
            sock.sendall(request)  # the headers at once, then the body drop by drop
            request = b"<" * 4000
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return  # the proxy gave up on us, as it should
            if stop.wait(1.0):
                return


def valid_callbacks(port: int, count: int, timeout: float) -> list[int | None]:
    """POST `count` real encrypted callbacks; the status of each, None for a timeout."""
    crypto = CallbackCrypto(APP_TOKEN, APP_AES_KEY, CORP_ID)
    found: list[int | None] = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=timeout) as http:
        for i in range(count):
            enc = crypto.encrypt(text_xml("zhangsan", "收到", 9_000_000 + port * 100 + i))
            try:
                resp = http.post(f"/wecom/callback?{signed_query(enc)}",
                                 content=envelope(enc, CORP_ID), headers={"Content-Type": "text/xml"})  # fmt: skip
                found.append(resp.status_code)
            except httpx.TimeoutException:
                found.append(None)
    return found


def with_dribblers(port: int, count: int, timeout: float) -> list[int | None]:
    stop = threading.Event()
    threads = [
        threading.Thread(target=dribble, args=(port, stop, i % 2 == 0), daemon=True)
        for i in range(DRIBBLERS)
    ]
    for t in threads:
        t.start()
        time.sleep(0.02)  # one after another, as they would arrive
    time.sleep(1.5)  # they are all connected and have sent their first bytes
    try:
        return valid_callbacks(port, count, timeout)
    finally:
        stop.set()
        for t in threads:
            t.join(5)


def test_dribbling_clients_starve_gunicorn_alone_but_not_behind_nginx(
    server: int, nginx: int
) -> None:
    direct = with_dribblers(server, 4, timeout=2.0)
    assert direct.count(None) >= 2, direct  # the measured failure, reproduced
    proxied = with_dribblers(nginx, 20, timeout=2.0)
    assert proxied == [200] * 20
