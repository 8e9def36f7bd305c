"""Full sync against the simulator over HTTP: the sample org, repairs, dry runs, faults."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from tests.world import World as Mirror
from tests.world import make_world
from wecom_app.clock import FakeClock
from wecom_app.directory.naming import NamingPolicy
from wecom_app.directory.sync import SyncReport, run_full_sync
from wecom_app.domain_events import EmployeeDeparted
from wecom_app.errors import WeComError
from wecom_app.models import Department, DepartmentMember, Employee, EmployeeHistory


@pytest.fixture
def mirror(database_url: str, clock: FakeClock) -> Iterator[Mirror]:
    """The mirror's world with the contacts secret configured."""
    with make_world(database_url, clock=clock) as world:
        yield world


def full_sync(world: Mirror, **kwargs: Any) -> SyncReport:
    """Run a full sync with the world's client, contacts secret configured."""
    return run_full_sync(
        world.db,
        world.services.client,
        world.clock,
        world.services.events,
        NamingPolicy(),
        use_list_id=True,
        **kwargs,
    )


def employee(world: Mirror, userid: str) -> Employee:
    with world.db.begin() as session:
        return session.scalars(select(Employee).where(Employee.userid == userid)).one()


def count(world: Mirror, model: Any) -> int:
    with world.db.begin() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_full_sync_mirrors_the_sample_org(mirror: Mirror) -> None:
    report = full_sync(mirror)

    org = mirror.org
    assert report.counts["added"] == len(org.members)
    assert report.counts["departments_added"] == len(org.departments)
    assert count(mirror, Employee) == len(org.members)
    zhangyao = employee(mirror, "zhangyao")
    assert zhangyao.display_name == "平台研发部-张瑶"
    assert zhangyao.leader_in == [4] and zhangyao.direct_leaders == ["zhaoming"]
    assert employee(mirror, "zhaokaiyu").status == "disabled"
    boss = employee(mirror, "liangyangmin")
    with mirror.db.begin() as session:
        root = session.get(Department, 1)
        assert root is not None and root.leaders == ["liangyangmin"]
        boss_rows = session.scalars(
            select(DepartmentMember).where(DepartmentMember.employee_id == boss.id)
        ).all()
        assert {(m.department_id, m.is_leader) for m in boss_rows} == {(2, True), (1, True)}
    # One user/list per department, one department/list, list_id pages and two tokens.
    assert report.api_calls["/cgi-bin/user/list"] == len(org.departments)
    assert sum(report.api_calls.values()) <= len(org.departments) + len(org.tags) + 6
    assert count(mirror, EmployeeHistory) == len(org.members)

    again = full_sync(mirror)
    assert again.counts["unchanged"] == len(org.members)
    assert again.counts["added"] == again.counts["changed"] == again.counts["departed"] == 0


def test_dry_run_writes_nothing(mirror: Mirror) -> None:
    report = full_sync(mirror, dry_run=True)
    assert report.counts["added"] == len(mirror.org.members)
    assert "liangyangmin" in report.examples["added"]
    assert count(mirror, Employee) == 0


def test_full_sync_repairs_what_lost_callbacks_missed(mirror: Mirror) -> None:
    full_sync(mirror)
    org = mirror.org
    with mirror.sim.state.lock:
        del org.members["huangyao"]  # deleted without a callback
        org.members["penggang"].status = 5  # left, kept in the directory
        org.members["chenli"].name = "陈莉"  # renamed
        org.members["litao"].department = [4]  # moved to 平台研发部
        org.members["litao"].main_department = 4
        org.members["litao"].is_leader_in_dept = [0]
        org.departments[14].name = "综合行政部"
        org.touch()
    mirror.sim.events.deliverer.timeout = 0.1
    report = full_sync(mirror)

    assert report.counts["departed"] == 1
    assert report.counts["departments_changed"] == 1
    assert employee(mirror, "huangyao").status == "departed"
    assert employee(mirror, "huangyao").departed_source == "full_sync"
    assert employee(mirror, "penggang").status == "departed"
    assert employee(mirror, "chenli").display_name == "平台研发部-陈莉"
    assert employee(mirror, "litao").departments == [4]
    assert employee(mirror, "chenyi").display_name.startswith("综合行政部-")
    departed = sorted(e.userid for e in mirror.announced if isinstance(e, EmployeeDeparted))
    assert departed == ["huangyao", "penggang"]
    with mirror.db.begin() as session:
        kinds = set(
            session.scalars(
                select(EmployeeHistory.kind).where(EmployeeHistory.kind != "joined")
            ).all()
        )
    assert {"left", "renamed", "moved"} <= kinds

    full_sync(mirror)  # nothing new: no second announcement
    assert len([e for e in mirror.announced if isinstance(e, EmployeeDeparted)]) == 2


def test_member_outside_visibility_is_not_taken_for_departed(mirror: Mirror) -> None:
    full_sync(mirror)
    with mirror.sim.state.lock:
        # Listed by user/list_id but in no listed department: still exists.
        mirror.org.members["huangyao"].department = [999]
        mirror.org.touch()
    report = full_sync(mirror)
    assert report.counts["departed"] == 0
    assert employee(mirror, "huangyao").status == "active"


def _fault_after(world: Mirror, calls: int, fault: dict[str, Any]) -> None:
    """Have the simulator start failing once the sync has made `calls` user/list requests."""
    client = world.services.client
    original = client.user_list
    made = itertools.count(1)
    lock = threading.Lock()

    def user_list(department_id: int) -> Any:
        with lock:
            if next(made) == calls:
                httpx.post(f"{world.sim.url}/_sim/faults", json=fault).raise_for_status()
        return original(department_id)

    client.user_list = user_list  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("path", "errcode"),
    [
        ("/cgi-bin/user/list", -1),
        ("/cgi-bin/user/list", 45009),
        ("/cgi-bin/user/list", 60011),
        ("/cgi-bin/user/list_id", 48009),
    ],
)
def test_wecom_error_mid_sync_changes_nothing(mirror: Mirror, path: str, errcode: int) -> None:
    full_sync(mirror)
    before = count(mirror, EmployeeHistory)
    with mirror.sim.state.lock:
        del mirror.org.members["huangyao"]
        mirror.org.members["chenli"].name = "陈莉"
        mirror.org.touch()
    fault = {"path": path, "errcode": errcode, "count": 50}
    _fault_after(mirror, 5, fault)
    with pytest.raises(WeComError) as caught:
        full_sync(mirror)
    assert caught.value.errcode == errcode
    assert employee(mirror, "huangyao").status == "active"
    assert employee(mirror, "chenli").name == "陈丽"
    assert count(mirror, EmployeeHistory) == before
    assert mirror.announced == []

    httpx.delete(f"{mirror.sim.url}/_sim/faults").raise_for_status()
    report = full_sync(mirror)
    assert report.counts["departed"] == 1
    assert employee(mirror, "chenli").name == "陈莉"


def test_token_expiry_mid_sync_is_survived(mirror: Mirror) -> None:
    fault = {"path": "/cgi-bin/user/list", "errcode": 42001, "count": 1}
    _fault_after(mirror, 3, fault)
    report = full_sync(mirror)
    assert report.counts["added"] == len(mirror.org.members)
    assert report.api_calls["/cgi-bin/gettoken"] >= 2  # the app token was fetched again


def test_sync_command_prints_a_json_summary(
    mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wecom_app.cli import main

    env = mirror.worker_env()
    runner = CliRunner()
    result = runner.invoke(main, ["sync", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert f'"added": {len(mirror.org.members)}' in result.output
    assert '"api_calls":' in result.output

    text = runner.invoke(main, ["sync", "--dry-run"], env=env)
    assert text.exit_code == 0, text.output
    assert "预览（未写入）" in text.output

    listed = runner.invoke(main, ["directory", "employees", "--department", "3",
                                  "--include-children", "--status", "active"], env=env)  # fmt: skip
    assert "平台研发部-张瑶" in listed.output
    departments = runner.invoke(main, ["directory", "departments", "--json"], env=env)
    assert "研发中心" in departments.output


def test_nightly_job_runs_the_full_sync(mirror: Mirror) -> None:
    from wecom_app import jobs
    from wecom_app.models import JobRun

    only = jobs.JobTable([mirror.registry.jobs["directory_full_sync"]])
    assert jobs.run_due(jobs.JobContext(mirror.services), only)
    assert count(mirror, Employee) == len(mirror.org.members)
    with mirror.db.begin() as session:
        run = session.scalars(select(JobRun)).one()
        assert run.status == "done" and run.summary is not None
        assert run.summary["added"] == len(mirror.org.members)
    # Once per day: the same slot is not run twice.
    assert not jobs.run_due(jobs.JobContext(mirror.services), only)
