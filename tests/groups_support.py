"""Support for the managed-group tests: a simulator, services wired to it, a mirror filled from it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete

from tests.conftest import base_settings
from tests.simulator_fixtures import SAMPLE_ORG
from wecom_app.app import Services
from wecom_app.clock import FakeClock
from wecom_app.db import Database
from wecom_app.models import (
    Department,
    DepartmentMember,
    Employee,
    EmployeeStatus,
    Tag,
    TagMember,
)
from wecom_app.outbox import drain
from wecom_app.settings import load_settings
from wecom_app.simulator import Org, SimConfig, SimulatorServer, load_org
from wecom_app.wecom.client import WeComClient

CORP = "wwgroupstest0001"
T0 = datetime(2026, 1, 5, 1, 30, tzinfo=UTC)


def mirror_org(db: Database, org: Org, now: datetime) -> None:
    """Fill the mirror with the simulator's org (what the directory sync would store)."""
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


@dataclass
class GroupEnv:
    """A simulator and the app's services talking to it over HTTP, on one fake clock."""

    sim: SimulatorServer
    services: Services
    clock: FakeClock

    @property
    def db(self) -> Database:
        """The app database."""
        return self.services.db

    def drain_all(self, passes: int = 50, clock: Any = None) -> int:
        """Perform every outbox write due now (by the fake clock unless another is given)."""
        total = 0
        for _ in range(passes):
            done = drain(self.db, self.services.client, clock or self.clock)
            total += done
            if not done:
                break
        return total

    def chat(self, chatid: str) -> dict[str, Any]:
        """The simulator's record of a chat (members, changes, messages)."""
        with self.sim.state.lock:
            return dict(self.sim.state.chats[chatid])

    def calls(self, path: str) -> int:
        """How many times the app called a WeCom API path."""
        return self.sim.state.calls[f"/cgi-bin/{path}"]


@contextmanager
def group_env(
    database_url: str, org: Org | None = None, **setting_overrides: Any
) -> Iterator[GroupEnv]:
    """Start a simulator over the sample org and services on a migrated database."""
    from wecom_app.worker import load_features

    load_features()
    clock = FakeClock(T0)
    config = SimConfig(corp_id=CORP, app_secret="app-secret", contacts_secret="contacts-secret")
    org = org or load_org(SAMPLE_ORG)
    sim = SimulatorServer(org, config, clock).start()
    settings = load_settings(**base_settings(database_url=database_url, api_base=sim.url,
                                             corp_id=CORP, **setting_overrides))  # fmt: skip
    services = Services(settings, clock)
    services._client = WeComClient(
        CORP, 1000002, "app-secret", "contacts-secret", base_url=sim.url, clock=clock,
        sleep=lambda _s: None,
    )  # fmt: skip
    mirror_org(services.db, org, clock.now())
    try:
        yield GroupEnv(sim, services, clock)
    finally:
        services.close()
        sim.stop()
