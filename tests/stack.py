"""A whole stack for end-to-end tests: the simulator and the app, both over real HTTP.

The simulator delivers encrypted callbacks to the app's real callback URLs; the app calls the
simulator through the real WeCom client. Both share one FakeClock. `stack.settle()` runs the
worker's passes in-process until nothing is due.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from tests.conftest import (
    API_TOKEN,
    APP_AES_KEY,
    APP_TOKEN,
    CONTACTS_AES_KEY,
    CONTACTS_TOKEN,
    CORP_ID,
    base_settings,
)
from tests.simulator_fixtures import SAMPLE_ORG
from wecom_app.app import Services, create_app
from wecom_app.clock import FakeClock
from wecom_app.settings import load_settings
from wecom_app.simulator import Channel, SimConfig, SimulatorServer, load_org
from wecom_app.wecom.client import WeComClient


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log in tests."""


@dataclass
class Stack:
    """Handles to a running simulator + app pair."""

    sim: SimulatorServer
    app: Any
    app_url: str
    services: Services
    clock: FakeClock

    @property
    def sim_http(self) -> httpx.Client:
        """An HTTP client for the simulator's /_sim/ API."""
        return httpx.Client(base_url=self.sim.url, timeout=30)

    @property
    def api(self) -> httpx.Client:
        """An HTTP client for the app's JSON API."""
        return httpx.Client(
            base_url=self.app_url, timeout=30, headers={"Authorization": f"Bearer {API_TOKEN}"}
        )

    def settle(self) -> int:
        """Process inbox, outbox and due jobs until nothing is left."""
        from wecom_app.worker import settle

        return settle(self.services)


@contextmanager
def running_stack(
    database_url: str,
    clock: FakeClock | None = None,
    org_path: Path = SAMPLE_ORG,
    **setting_overrides: Any,
) -> Iterator[Stack]:
    """Start the simulator and the app (werkzeug, threaded) wired to each other."""
    from wecom_app.worker import load_features

    load_features()
    clock = clock or FakeClock()
    config = SimConfig(
        corp_id=CORP_ID,
        agent_id=1000002,
        app_secret="app-secret",
        contacts_secret="contacts-secret",
    )
    sim = SimulatorServer(load_org(org_path), config, clock).start()
    settings = load_settings(
        **base_settings(database_url=database_url, api_base=sim.url, **setting_overrides)
    )
    app = create_app(settings, clock=clock)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    app_url = f"http://127.0.0.1:{server.server_port}"
    config.app_callback = Channel(f"{app_url}/wecom/callback", APP_TOKEN, APP_AES_KEY)
    config.contacts_callback = Channel(
        f"{app_url}/wecom/contacts/callback", CONTACTS_TOKEN, CONTACTS_AES_KEY
    )
    services: Services = app.extensions["wecom_app"]
    services.use_client(
        WeComClient(
            CORP_ID,
            1000002,
            "app-secret",
            "contacts-secret",
            base_url=sim.url,
            clock=clock,
            sleep=lambda _s: None,
        )
    )
    try:
        yield Stack(sim, app, app_url, services, clock)
    finally:
        server.shutdown()
        server.server_close()
        services.close()
        sim.stop()


def texts_to(stack: Stack, userid: str) -> list[str]:
    """The text messages the app sent to one member, oldest first."""
    with stack.sim.state.lock:
        return [
            m["content"]["content"]
            for m in stack.sim.state.messages
            if m["msgtype"] == "text" and userid in m["delivered"]
        ]
