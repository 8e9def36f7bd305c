"""The 部门+姓名 naming policy: templates, the deviation report, and writing aliases to WeCom."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.world import World as Mirror
from tests.world import make_world
from wecom_app.clock import FakeClock
from wecom_app.directory.diff import DeptRecord, EmployeeRecord
from wecom_app.directory.naming import (
    NamedPerson,
    NamingPolicy,
    apply_aliases,
    named_people,
    naming_report,
    wanted_aliases,
)
from wecom_app.directory.sync import run_full_sync
from wecom_app.errors import ConfigError
from wecom_app.models import OutboxMessage

DEPTS = {
    1: DeptRecord(1, "云栖科技", None, 0),
    9: DeptRecord(9, "销售部", 1, 0),
    10: DeptRecord(10, "华东销售组", 9, 0),
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{department}-{name}", "华东销售组-李雷"),
        ("{department}+{name}", "华东销售组+李雷"),
        ("{region}-{name}", "销售部-李雷"),
        ("{department}{name}", "华东销售组李雷"),
    ],
)
def test_templates(template: str, expected: str) -> None:
    record = EmployeeRecord("lilei", "李雷", "active", main_department=10)
    assert NamingPolicy(template).display_name(record, DEPTS) == expected


@pytest.mark.parametrize("template", ["{dept}-{name}", "{department}", "{name"])
def test_bad_templates_are_refused(template: str) -> None:
    with pytest.raises(ValueError):
        NamingPolicy(template)


@pytest.fixture
def mirror(database_url: str, clock: FakeClock) -> Iterator[Mirror]:
    """The mirror's world with the contacts secret configured."""
    with make_world(database_url, clock=clock) as world:
        yield world


def test_bad_template_setting_stops_start_up_naming_the_key() -> None:
    from tests.conftest import base_settings
    from wecom_app.compose import compose
    from wecom_app.settings import load_settings

    with pytest.raises(ConfigError) as caught:
        compose(load_settings(**base_settings(naming_template="{部门}-{name}")))
    assert caught.value.key == "WECOM_NAMING_TEMPLATE"


def test_duplicates_get_a_disambiguator_and_keep_good_ones() -> None:
    people = [
        NamedPerson(1, "a", "张伟", "研发部-张伟", ""),
        NamedPerson(2, "b", "张伟", "研发部-张伟", "研发部-张伟2"),
        NamedPerson(3, "c", "张伟", "研发部-张伟", "张伟"),
        NamedPerson(4, "d", "李娜", "研发部-李娜", "研发部-李娜"),
        NamedPerson(5, "e", "王芳", "研发部-王芳", "Lucy"),
    ]
    assert wanted_aliases(people) == {
        "a": "研发部-张伟", "b": "研发部-张伟2", "c": "研发部-张伟3",
        "d": "研发部-李娜", "e": "研发部-王芳",
    }  # fmt: skip
    report = {d.userid: d.kind for d in naming_report(people)}
    assert report == {"a": "duplicate", "c": "duplicate", "e": "different"}


def test_naming_report_and_apply_write_aliases_in_wecom(mirror: Mirror) -> None:
    run_full_sync(mirror.db, mirror.services.client, mirror.clock, mirror.services.events,
                  NamingPolicy(),
                  use_list_id=True)  # fmt: skip
    with mirror.db.begin() as session:
        report = {d.userid: d for d in naming_report(named_people(session))}
    assert report["huangyao"].kind == "missing"
    assert report["hanyang"].kind == "different" and report["hanyang"].alias == "Lucy"
    assert report["liangjun"].wanted_alias == "平台研发部-梁军"
    assert "zhangyao" not in report  # already 平台研发部-张瑶
    assert "zhaokaiyu" not in report  # disabled: not named

    with mirror.db.begin() as session:
        queued = apply_aliases(session, report.values(), mirror.clock.now(), "contacts-secret")
    with mirror.db.begin() as session:
        again = apply_aliases(session, report.values(), mirror.clock.now(), "contacts-secret")
    assert queued == len(report) and again == 0
    while mirror.outbox.drain():
        pass
    with mirror.db.begin() as session:
        statuses = set(session.scalars(select(OutboxMessage.status)))
    assert statuses == {"done"}
    assert mirror.org.members["hanyang"].alias == "移动研发部-韩洋"
    assert mirror.org.members["huangyao"].alias == "平台研发部-黄瑶"

    run_full_sync(mirror.db, mirror.services.client, mirror.clock, mirror.services.events,
                  NamingPolicy(),
                  use_list_id=True)  # fmt: skip
    with mirror.db.begin() as session:
        assert naming_report(named_people(session)) == []


def test_naming_command(mirror: Mirror) -> None:
    from wecom_app.cli import main

    env = mirror.worker_env()
    runner = CliRunner()
    assert runner.invoke(main, ["sync"], env=env).exit_code == 0
    preview = runner.invoke(main, ["directory", "naming"], env=env)
    assert preview.exit_code == 0, preview.output
    assert "hanyang" in preview.output and "移动研发部-韩洋" in preview.output
    assert "加 --apply" in preview.output

    missing = runner.invoke(main, ["directory", "naming", "--apply"],
                            env={**env, "WECOM_CONTACTS_SECRET": ""})  # fmt: skip
    assert missing.exit_code == 2
    assert "WECOM_CONTACTS_SECRET" in missing.output

    applied = runner.invoke(main, ["directory", "naming", "--apply", "--json"], env=env)
    assert applied.exit_code == 0, applied.output
    assert '"queued":' in applied.output


def test_employees_and_departments_api(mirror: Mirror) -> None:
    run_full_sync(mirror.db, mirror.services.client, mirror.clock, mirror.services.events,
                  NamingPolicy(),
                  use_list_id=True)  # fmt: skip
    client = mirror.app.test_client()
    auth = {"Authorization": "Bearer test-api-token"}
    rd = client.get("/api/v1/employees?department=3&include_children=1&status=active",
                    headers=auth).get_json()  # fmt: skip
    userids = {e["userid"] for e in rd["employees"]}
    assert {"zhaoming", "zhangyao", "wangxuanqiang"} <= userids
    assert "zhaokaiyu" not in userids and "liangyangmin" not in userids
    only = client.get("/api/v1/employees?department=3", headers=auth).get_json()
    assert {e["userid"] for e in only["employees"]} == {"zhaoming", "liuxuanmin"}
    disabled = client.get("/api/v1/employees?status=disabled", headers=auth).get_json()
    assert "zhaokaiyu" in {e["userid"] for e in disabled["employees"]}
    assert client.get("/api/v1/employees?status=gone", headers=auth).status_code == 400
    assert client.get("/api/v1/employees").status_code == 401
    depts = client.get("/api/v1/departments", headers=auth).get_json()["departments"]
    assert len(depts) == len(mirror.org.departments)


def test_helpers_for_other_features(mirror: Mirror) -> None:
    from wecom_app.directory.queries import (
        active_employees_in,
        department_subtree_ids,
        employee_by_userid,
        leaders_of,
    )

    run_full_sync(mirror.db, mirror.services.client, mirror.clock, mirror.services.events,
                  NamingPolicy(),
                  use_list_id=True)  # fmt: skip
    with mirror.db.begin() as session:
        assert department_subtree_ids(session, 3) == {3, 4, 5, 6}
        research = {e.userid for e in active_employees_in(session, [3])}
        assert "zhangyao" in research and "zhaokaiyu" not in research
        direct = {e.userid for e in active_employees_in(session, [3], include_children=False)}
        assert direct == {"zhaoming", "liuxuanmin"}
        huangyao = employee_by_userid(session, "huangyao")
        assert huangyao is not None
        assert [e.userid for e in leaders_of(huangyao)] == ["zhangyao"]
        boss = employee_by_userid(session, "liangyangmin")
        assert boss is not None and leaders_of(boss) == []
