"""Fixtures for the org-chart mirror tests: the simulator, the app on a real port, services."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from callbacks.processing import process_pending
from tests.conftest import (
    AGENT_ID,
    APP_AES_KEY,
    APP_TOKEN,
    CONTACTS_AES_KEY,
    CONTACTS_TOKEN,
    CORP_ID,
    base_settings,
)
from tests.simulator_fixtures import SAMPLE_ORG
from wecom_app.app import Services
from wecom_app.clock import FakeClock
from wecom_app.domain_events import EmployeeDeparted, EmployeeRenamed, subscribe
from wecom_app.settings import load_settings
from wecom_app.simulator import Channel, SimConfig, SimulatorServer, load_org
from wecom_app.simulator.delivery import DeliveryResult
from wecom_app.wecom.client import WeComClient

APP_SECRET, CONTACTS_SECRET = "app-secret", "contacts-secret"

# Every departure and rename announced in this process, for assertions (cleared per test).
ANNOUNCED: list[Any] = []


@subscribe(EmployeeDeparted)
def _record_departure(session: Any, clock: Any, event: EmployeeDeparted) -> None:
    ANNOUNCED.append(event)


@subscribe(EmployeeRenamed)
def _record_rename(session: Any, clock: Any, event: EmployeeRenamed) -> None:
    ANNOUNCED.append(event)


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class Mirror:
    """A simulator, the app serving callbacks on a real port, and services over both."""

    def __init__(self, database_url: str, clock: FakeClock, contacts_secret: str | None) -> None:
        from wecom_app import create_app
        from wecom_app.worker import load_features

        load_features()
        ANNOUNCED.clear()
        config = SimConfig(
            corp_id=CORP_ID, agent_id=AGENT_ID, app_secret=APP_SECRET,
            contacts_secret=CONTACTS_SECRET,
        )  # fmt: skip
        self.sim = SimulatorServer(load_org(SAMPLE_ORG), config, FakeClock()).start()
        self.sim.events.deliverer.timeout = 5.0
        overrides = {"database_url": database_url, "api_base": self.sim.url}
        if contacts_secret is None:
            overrides["contacts_secret"] = None
        self.settings = load_settings(**base_settings(**overrides))
        self.clock = clock
        self.services = Services(self.settings, clock)
        self.services._client = WeComClient(
            CORP_ID, AGENT_ID, APP_SECRET, contacts_secret, base_url=self.sim.url,
            clock=clock, sleep=lambda _s: None,
        )  # fmt: skip
        self.app = create_app(self.settings, clock=clock)
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_Quiet)
        url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        config.contacts_callback = Channel(
            url + "/wecom/contacts/callback", CONTACTS_TOKEN, CONTACTS_AES_KEY
        )
        config.app_callback = Channel(url + "/wecom/callback", APP_TOKEN, APP_AES_KEY)

    @property
    def db(self) -> Any:
        """The test database."""
        return self.services.db

    @property
    def org(self) -> Any:
        """The simulator's directory, to change behind the app's back."""
        return self.sim.state.org

    def deliver(self, event: str, **fields: Any) -> DeliveryResult:
        """Have the simulator deliver one callback a second after the previous one."""
        self.sim.state.clock.advance(1)  # type: ignore[attr-defined]
        driver = self.sim.events
        if event in ("subscribe", "unsubscribe", "enter_agent"):
            result = driver.deliver_app_event(fields["userid"], event)
        else:
            result = getattr(driver, event)(**fields)
        assert result.ok, result.to_dict()
        return result

    def process(self) -> int:
        """Process every pending inbox event through the dispatch table."""
        return process_pending(self.db, self.clock, self.services)

    def close(self) -> None:
        """Stop everything."""
        self._server.shutdown()
        self._server.server_close()
        self.sim.stop()
        self.services.close()
        self.app.extensions["wecom_app"].db.dispose()


@pytest.fixture(name="mirror")
def mirror_fixture(database_url: str, clock: FakeClock) -> Iterator[Mirror]:
    """The mirror's world with the contacts secret configured."""
    world = Mirror(database_url, clock, CONTACTS_SECRET)
    yield world
    world.close()
