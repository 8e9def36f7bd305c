"""The one test harness: the WeCom simulator and the app, built the way production builds them.

`make_world()` starts the simulator over a real port, composes the app with `compose()` (the
WeCom client pointed at the simulator, injected through the builder), serves the web app on a
real port so the simulator can deliver encrypted callbacks to it, and hands out the worker's
pieces over the same composition. One FakeClock drives both sides. Lanes, jobs and tuning are
injected (`customize=`, `tuning=`), never monkeypatched. A WeCom call made from inside an open
database transaction fails the test (`Tuning.strict_transactions`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from flask import Flask
from sqlalchemy import delete
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from tests.conftest import (
    AGENT_ID,
    API_TOKEN,
    APP_AES_KEY,
    APP_TOKEN,
    CONTACTS_AES_KEY,
    CONTACTS_TOKEN,
    CORP_ID,
    base_settings,
)
from wecom_app.app import create_app
from wecom_app.clock import Clock, FakeClock
from wecom_app.compose import Composition, compose
from wecom_app.db import Database
from wecom_app.domain_events import EmployeeDeparted, EmployeeRenamed
from wecom_app.models import Department, DepartmentMember, Employee, EmployeeStatus, Tag, TagMember
from wecom_app.registry import Registry
from wecom_app.sending import Outbox
from wecom_app.services import Services, Tuning
from wecom_app.settings import Settings
from wecom_app.simulator import Channel, Org, SimConfig, SimulatorServer, load_org
from wecom_app.simulator.delivery import DeliveryResult
from wecom_app.worker import Worker

SAMPLE_ORG = Path(__file__).resolve().parent.parent / "config" / "sample-org.yaml"
APP_SECRET, CONTACTS_SECRET = "app-secret", "contacts-secret"
T0 = datetime(2026, 1, 5, 1, 30, tzinfo=UTC)  # Monday 09:30 in Beijing
TEST_TUNING = Tuning(
    strict_transactions=True, idle_seconds=0.02, job_check_seconds=0.05, lease_renew_seconds=0.5
)


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log in tests."""


@dataclass
class World:
    """Handles to a running simulator + app pair and the worker's pieces."""

    sim: SimulatorServer
    composition: Composition
    app: Flask
    clock: Any  # a FakeClock, or the system clock for tests that need real time to pass
    app_url: str = ""
    announced: list[Any] = field(default_factory=list)  # departures and renames, in order
    _worker: Worker | None = None

    @property
    def services(self) -> Services:
        """The app's services."""
        return self.composition.services

    @property
    def settings(self) -> Settings:
        """The app's settings."""
        return self.services.settings

    @property
    def registry(self) -> Registry:
        """What the features registered."""
        return self.composition.registry

    @property
    def db(self) -> Database:
        """The app database."""
        return self.services.db

    @property
    def org(self) -> Org:
        """The simulator's directory, to change behind the app's back."""
        return self.sim.state.org

    @property
    def worker(self) -> Worker:
        """The worker over this world's composition (built once)."""
        if self._worker is None:
            self._worker = Worker(self.composition)
        return self._worker

    @property
    def outbox(self) -> Outbox:
        """The worker's outbox."""
        return self.worker.outbox

    def settle(self) -> int:
        """Process inbox, outbox and due jobs until nothing is left."""
        return self.worker.settle()

    def process(self) -> int:
        """Handle every pending inbox event that is due."""
        total = 0
        while n := self.worker.inbox.run_pending():
            total += n
        return total

    def drain(self, passes: int = 1000) -> int:
        """Perform every outbox write due now."""
        total = 0
        for _ in range(passes):
            done = self.outbox.drain()
            total += done
            if not done:
                break
        return total

    def deliver(self, event: str, **fields: Any) -> DeliveryResult:
        """Have the simulator deliver one callback, a second after the previous one."""
        self.clock.advance(1)
        driver = self.sim.events
        if event in ("subscribe", "unsubscribe", "enter_agent"):
            result = driver.deliver_app_event(fields["userid"], event)
        elif event == "text":
            result = driver.deliver_text(fields["userid"], fields["content"], fields.get("msg_id"))
        else:
            result = getattr(driver, event)(**fields)
        assert result.ok, result.to_dict()
        return result

    def chat(self, chatid: str) -> dict[str, Any]:
        """The simulator's record of a chat (members, changes, messages)."""
        with self.sim.state.lock:
            return dict(self.sim.state.chats[chatid])

    def calls(self, path: str) -> int:
        """How many times the app called a WeCom API path."""
        return self.sim.state.calls[f"/cgi-bin/{path}"]

    def texts_to(self, userid: str) -> list[str]:
        """The text messages the app sent to one member, oldest first."""
        with self.sim.state.lock:
            return [
                m["content"]["content"]
                for m in self.sim.state.messages
                if m["msgtype"] == "text" and userid in m["delivered"]
            ]

    def fault(self, path: str, kind: str = "errcode", count: int = 1, **extra: Any) -> None:
        """Make the simulator fail the next `count` calls to a `/cgi-bin/` path ("*": any)."""
        body = {"path": path if path == "*" else f"/cgi-bin/{path}", "kind": kind,
                "count": count, **extra}  # fmt: skip
        with httpx.Client(base_url=self.sim.url, timeout=10) as http:
            http.post("/_sim/faults", json=body).raise_for_status()

    def sim_post(self, path: str, body: dict[str, Any]) -> Any:
        """POST to the simulator's /_sim/ API and return its JSON answer."""
        with httpx.Client(base_url=self.sim.url, timeout=10) as http:
            answer = http.post(path, json=body)
            answer.raise_for_status()
            return answer.json()

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        with httpx.Client(base_url=self.sim.url, timeout=10) as http:
            http.delete("/_sim/faults").raise_for_status()

    def mirror_org(self) -> None:
        """Fill the mirror straight from the simulator's org (what a full sync would store)."""
        mirror_org(self.db, self.org, self.clock.now())

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

    def worker_env(self) -> dict[str, str]:
        """The environment a `wecom-app worker` process needs to join this world."""
        import os

        s = self.settings
        return {
            **os.environ,
            "WECOM_CORP_ID": s.corp_id,
            "WECOM_AGENT_ID": str(s.agent_id),
            "WECOM_APP_SECRET": s.secret("app_secret"),
            "WECOM_CALLBACK_TOKEN": s.secret("callback_token"),
            "WECOM_CALLBACK_AES_KEY": s.secret("callback_aes_key"),
            "WECOM_CONTACTS_SECRET": s.secret("contacts_secret"),
            "WECOM_CONTACTS_TOKEN": s.secret("contacts_token"),
            "WECOM_CONTACTS_AES_KEY": s.secret("contacts_aes_key"),
            "WECOM_API_BASE": self.sim.url,
            "DATABASE_URL": s.database_url,
            "WECOM_APP_API_TOKEN": s.secret("api_token"),
            "WECOM_APP_SPOOL_DIR": s.spool_dir,
        }

    def compose_another(self, clock: Clock | None = None, **overrides: Any) -> Composition:
        """A second composition on the same database and simulator (a second worker)."""
        from wecom_app.settings import load_settings

        settings = load_settings(**{**self.services.settings.model_dump(), **overrides})
        return compose(settings, clock=clock or self.clock, tuning=self.services.tuning,
                       client_options={"sleep": lambda _s: None})  # fmt: skip


@contextmanager
def make_world(
    database_url: str,
    *,
    clock: Clock | None = None,
    org: Org | Path = SAMPLE_ORG,
    mirror: bool = False,
    serve: bool = True,
    tuning: Tuning = TEST_TUNING,
    customize: Callable[[Registry], None] | None = None,
    client_options: dict[str, Any] | None = None,
    contacts_secret: str | None = CONTACTS_SECRET,
    **setting_overrides: Any,
) -> Iterator[World]:
    """Start the simulator and the app wired to each other; stop both afterwards."""
    clock = clock or FakeClock(T0)
    config = SimConfig(corp_id=CORP_ID, agent_id=AGENT_ID, app_secret=APP_SECRET,
                       contacts_secret=CONTACTS_SECRET)  # fmt: skip
    sim = SimulatorServer(org if isinstance(org, Org) else load_org(org), config, clock).start()
    sim.events.deliverer.timeout = 5.0
    overrides = {"database_url": database_url, "api_base": sim.url, **setting_overrides}
    port = _free_port() if serve else 0
    if serve:  # the app's address is known before it is built: its public URL
        overrides.setdefault("public_url", f"http://127.0.0.1:{port}")
    overrides.setdefault("oauth_base", sim.url)  # members sign in at the simulator
    overrides.setdefault("web_login_base", sim.url)  # and log in to the console there too
    if contacts_secret is None:
        overrides["contacts_secret"] = None
    settings = base_settings(**overrides)
    from wecom_app.settings import load_settings

    announced: list[Any] = []

    def wire(registry: Registry) -> None:
        for kind in (EmployeeDeparted, EmployeeRenamed):
            registry.events.subscribe(kind, lambda _s, _c, event: announced.append(event))
        if customize is not None:
            customize(registry)

    options = {"sleep": lambda _s: None, **(client_options or {})}
    composition = compose(load_settings(**settings), clock=clock, client_options=options,
                          tuning=tuning, customize=wire)  # fmt: skip
    app = create_app(composition=composition)
    app.config["TESTING"] = True
    world = World(sim, composition, app, clock, announced=announced)
    server: BaseWSGIServer | None = None
    if serve:
        server = make_server("127.0.0.1", port, app, threaded=True, request_handler=_Quiet)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        world.app_url = f"http://127.0.0.1:{server.server_port}"
        config.app_callback = Channel(f"{world.app_url}/wecom/callback", APP_TOKEN, APP_AES_KEY)
        config.contacts_callback = Channel(
            f"{world.app_url}/wecom/contacts/callback", CONTACTS_TOKEN, CONTACTS_AES_KEY
        )
    if mirror:
        world.mirror_org()
    try:
        yield world
    finally:
        if world._worker is not None:
            world._worker.stop()
        sim.stop()  # ends calls held by an injected delay, so a busy worker finishes
        left = world._worker.join(30) if world._worker is not None else []
        if server is not None:
            server.shutdown()
            server.server_close()
        composition.close()
        assert not left, f"worker threads still running after the test: {left}"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def mirror_org(db: Database, org: Org, now: datetime) -> None:
    """Fill the mirror with an org (what the directory sync would store)."""
    with db.begin() as session:
        for model in (DepartmentMember, TagMember, Tag, Employee, Department):
            session.execute(delete(model))
        names = {d.id: d.name for d in org.departments.values()}
        for d in org.departments.values():
            session.add(Department(id=d.id, name=d.name, parent_id=d.parentid or None,
                                   order=d.order, leaders=list(d.department_leader),
                                   updated_at=now))  # fmt: skip
        for m in org.members.values():
            leads = [
                dep for dep, flag in zip(m.department, m.is_leader_in_dept, strict=False) if flag
            ]
            employee = Employee(
                userid=m.userid, name=m.name,
                display_name=f"{names.get(m.main_department, '')}-{m.name}",
                main_department=m.main_department, departments=list(m.department),
                leader_in=leads, direct_leaders=list(m.direct_leader),
                status=EmployeeStatus.from_wecom(m.status), wecom_status=m.status,
                joined_at=now, updated_at=now,
            )  # fmt: skip
            session.add(employee)
            session.flush()
            for dep in m.department:
                session.add(DepartmentMember(employee_id=employee.id, department_id=dep,
                                             is_leader=dep in leads))  # fmt: skip
        for t in org.tags.values():
            session.add(Tag(id=t.tagid, name=t.tagname))
            for userid in t.userlist:
                session.add(TagMember(tag_id=t.tagid, userid=userid))
            for dep in t.partylist:
                session.add(TagMember(tag_id=t.tagid, department_id=dep))


def until(predicate: Callable[[], Any], timeout: float = 20.0, every: float = 0.02) -> Any:
    """Poll until predicate() is truthy; return its value, or fail after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


def later(clock: FakeClock, **delta: float) -> datetime:
    """Advance the fake clock and return the new time."""
    return clock.advance(timedelta(**delta))
