"""Incremental sync: every change_contact type and subscribe/unsubscribe, delivered encrypted by
the simulator to the app's callback URLs, then processed from the inbox."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tests.world import World as Mirror
from tests.world import make_world
from wecom_app.clock import FakeClock
from wecom_app.directory.naming import NamingPolicy
from wecom_app.directory.sync import run_full_sync
from wecom_app.domain_events import EmployeeDeparted, EmployeeRenamed
from wecom_app.models import (
    Department,
    DepartmentMember,
    Employee,
    EmployeeHistory,
    InboxEvent,
    TagMember,
)


@pytest.fixture
def mirror(database_url: str, clock: FakeClock) -> Iterator[Mirror]:
    """The mirror's world with the contacts secret configured."""
    with make_world(database_url, clock=clock) as world:
        yield world


def synced(world: Mirror) -> Mirror:
    run_full_sync(world.db, world.services.client, world.clock, world.services.events,
                  NamingPolicy(), use_list_id=True)  # fmt: skip
    return world


def employee(world: Mirror, userid: str) -> Employee | None:
    with world.db.begin() as session:
        return session.scalars(select(Employee).where(Employee.userid == userid)).one_or_none()


def history(world: Mirror, emp_id: int) -> list[str]:
    with world.db.begin() as session:
        query = select(EmployeeHistory.kind).where(EmployeeHistory.employee_id == emp_id)
        return list(session.scalars(query.order_by(EmployeeHistory.id)))


def departures(world: Mirror) -> list[tuple[str, str]]:
    return [(e.userid, e.source) for e in world.announced if isinstance(e, EmployeeDeparted)]


def inbox_statuses(world: Mirror) -> list[str]:
    with world.db.begin() as session:
        return list(session.scalars(select(InboxEvent.status).order_by(InboxEvent.id)))


def test_create_user_with_only_userid_fetches_details(mirror: Mirror) -> None:
    synced(mirror)
    mirror.deliver("create_user", userid="xinren", name="辛仁", department=[5],
                   position="iOS工程师", direct_leader=["wangxuanqiang"])  # fmt: skip
    assert mirror.process() == 1
    emp = employee(mirror, "xinren")
    assert emp is not None and emp.name == "辛仁" and emp.status == "active"
    assert emp.display_name == "移动研发部-辛仁"
    assert emp.direct_leaders == ["wangxuanqiang"]
    assert history(mirror, emp.id) == ["joined"]
    assert inbox_statuses(mirror) == ["done"]


def test_update_user_renames_and_moves(mirror: Mirror) -> None:
    synced(mirror)
    mirror.deliver("update_user", userid="chenli", name="陈莉", department=[5],
                   main_department=5, is_leader_in_dept=[0])  # fmt: skip
    mirror.process()
    emp = employee(mirror, "chenli")
    assert emp is not None and emp.name == "陈莉" and emp.display_name == "移动研发部-陈莉"
    assert history(mirror, emp.id)[-2:] == ["renamed", "moved"]
    with mirror.db.begin() as session:
        rows = session.scalars(
            select(DepartmentMember.department_id).where(DepartmentMember.employee_id == emp.id)
        ).all()
    assert rows == [5]


def test_new_userid_keeps_the_surrogate_id_and_tags(mirror: Mirror) -> None:
    synced(mirror)
    before = employee(mirror, "hanyang")
    assert before is not None
    mirror.deliver("update_tag", tagid=_a_tag(mirror), add_users=["hanyang"])
    mirror.deliver("update_user", userid="hanyang", new_userid="hanyang2")
    mirror.process()
    after = employee(mirror, "hanyang2")
    assert after is not None and after.id == before.id
    assert employee(mirror, "hanyang") is None
    assert "userid_changed" in history(mirror, after.id)
    assert any(
        isinstance(e, EmployeeRenamed) and e.new_userid == "hanyang2" for e in mirror.announced
    )
    with mirror.db.begin() as session:
        assert "hanyang2" in session.scalars(select(TagMember.userid)).all()


def renames(world: Mirror) -> list[tuple[str, str]]:
    return [(e.old_userid, e.new_userid) for e in world.announced if isinstance(e, EmployeeRenamed)]


def sim_rename(world: Mirror, old: str, new: str) -> None:
    """Change a userid in WeCom without any callback reaching the app (one that was lost)."""
    with world.sim.state.lock:
        member = world.org.members.pop(old)
        member.userid = new
        world.org.members[new] = member
        world.org.touch()


@pytest.mark.parametrize("keeps_new_userid", [True, False], ids=["NewUserID", "no-NewUserID"])
def test_a_userid_change_in_a_thin_payload_is_a_rename_not_a_departure(
    mirror: Mirror, keeps_new_userid: bool
) -> None:
    """Whether WeCom's thin payload keeps NewUserID is unknown (WECOM.md §3): either way the
    person keeps their row, tags and history, and nobody hears of a departure."""
    synced(mirror)
    mirror.sim.state.config.thin_keeps_new_userid = keeps_new_userid
    before = employee(mirror, "hanyang")
    assert before is not None
    mirror.deliver("update_tag", tagid=_a_tag(mirror), add_users=["hanyang"])
    mirror.deliver("update_user", userid="hanyang", new_userid="hanyang2")
    mirror.process()
    after = employee(mirror, "hanyang2")
    assert after is not None and after.id == before.id and after.status == "active"
    assert employee(mirror, "hanyang") is None
    assert renames(mirror) == [("hanyang", "hanyang2")]
    assert departures(mirror) == [] and "out_of_sight" not in history(mirror, after.id)
    with mirror.db.begin() as session:
        assert "hanyang2" in session.scalars(select(TagMember.userid)).all()
    synced(mirror)  # the nightly sync agrees
    assert departures(mirror) == [] and employee(mirror, "hanyang2").id == before.id  # type: ignore[union-attr]


def test_a_rename_that_cannot_be_told_apart_is_out_of_sight_never_departed(
    mirror: Mirror,
) -> None:
    synced(mirror)
    mirror.sim.state.config.thin_keeps_new_userid = False
    with mirror.sim.state.lock:  # a namesake joined the same department; its event is late
        from wecom_app.simulator.org import Member

        mirror.org.members["hanyang3"] = Member("hanyang3", "韩洋", [5])
        mirror.org.touch()
    mirror.deliver("update_user", userid="hanyang", new_userid="hanyang2")
    mirror.process()
    old = employee(mirror, "hanyang")
    assert old is not None and old.status == "out_of_sight"
    assert employee(mirror, "hanyang2") is None and renames(mirror) == []
    assert departures(mirror) == []


def test_the_nightly_sync_tells_a_lost_rename_from_a_departure(mirror: Mirror) -> None:
    synced(mirror)
    before = employee(mirror, "hanyang")
    sim_rename(mirror, "hanyang", "hanyang2")  # the callback never came
    with mirror.sim.state.lock:  # and someone left without their delete reaching the app,
        del mirror.org.members["zhunan"]  # while a different person joined
        from wecom_app.simulator.org import Member

        mirror.org.members["xinren"] = Member("xinren", "辛仁", [5])
        mirror.org.touch()
    synced(mirror)
    after = employee(mirror, "hanyang2")
    assert after is not None and before is not None and after.id == before.id
    assert renames(mirror) == [("hanyang", "hanyang2")]
    assert departures(mirror) == [("zhunan", "full_sync")]
    assert employee(mirror, "xinren") is not None
    assert "userid_changed" in history(mirror, after.id)


def test_the_nightly_sync_does_not_pair_a_namesake_elsewhere(mirror: Mirror) -> None:
    """A leaver and a newcomer of the same name in another department are two people."""
    synced(mirror)
    with mirror.sim.state.lock:
        from wecom_app.simulator.org import Member

        del mirror.org.members["hanyang"]
        mirror.org.members["hanyang_sh"] = Member("hanyang_sh", "韩洋", [6])
        mirror.org.touch()
    synced(mirror)
    assert renames(mirror) == []
    assert departures(mirror) == [("hanyang", "full_sync")]


def test_departure_by_status_is_announced_once(mirror: Mirror) -> None:
    synced(mirror)
    mirror.deliver("update_user", userid="luojun", status=5)
    mirror.deliver("update_user", userid="luojun", position="运维工程师")  # again, still left
    mirror.process()
    emp = employee(mirror, "luojun")
    assert emp is not None and emp.status == "departed" and emp.departed_source == "status"
    assert emp.departed_at == mirror.clock.now()
    assert departures(mirror) == [("luojun", "status")]
    assert history(mirror, emp.id).count("left") == 1


def test_disabled_is_not_a_departure(mirror: Mirror) -> None:
    synced(mirror)
    mirror.deliver("update_user", userid="majing", status=2)
    mirror.deliver("unsubscribe", userid="majing")
    mirror.process()
    emp = employee(mirror, "majing")
    assert emp is not None and emp.status == "disabled"
    assert departures(mirror) == []
    assert history(mirror, emp.id)[-2:] == ["disabled", "unsubscribed"]


def test_departure_by_delete_then_duplicate_and_stale_events(mirror: Mirror) -> None:
    synced(mirror)
    mirror.deliver("delete_user", userid="linjun")
    mirror.process()
    # WeCom retries and stale updates must not announce the departure again.
    with mirror.sim.state.lock:
        from wecom_app.simulator.org import Member

        mirror.org.members["linjun"] = Member("linjun", "林军", [4])
        mirror.org.touch()
    mirror.deliver("delete_user", userid="linjun")
    mirror.process()
    emp = employee(mirror, "linjun")
    assert emp is not None and emp.status == "departed" and emp.departed_source == "delete_user"
    assert departures(mirror) == [("linjun", "delete_user")]


def test_update_before_create_converges(mirror: Mirror) -> None:
    synced(mirror)
    with mirror.sim.state.lock:
        from wecom_app.simulator.org import Member

        mirror.org.members["laowang"] = Member("laowang", "老王", [6], position="测试工程师")
        mirror.org.touch()
    mirror.deliver("update_user", userid="laowang", position="高级测试工程师")
    mirror.process()
    mirror.sim.state.clock.advance(1)  # type: ignore[attr-defined]
    mirror.sim.events.create_user(userid="laowang", name="老王", department=[6])
    mirror.process()
    emp = employee(mirror, "laowang")
    assert emp is not None and emp.name == "老王" and emp.departments == [6]
    assert history(mirror, emp.id).count("joined") == 1


def test_leaving_the_app_s_sight_is_not_leaving_the_company(mirror: Mirror) -> None:
    synced(mirror)
    mirror.deliver("unsubscribe", userid="zhunan")  # still visible and employed: nothing changes
    mirror.process()
    assert employee(mirror, "zhunan").status == "active"  # type: ignore[union-attr]
    with mirror.sim.state.lock:  # out of the app's visibility: user/get answers 60111
        hidden = mirror.org.members.pop("zhunan")
        mirror.org.touch()
    mirror.deliver("unsubscribe", userid="zhunan")
    mirror.deliver("subscribe", userid="chenmin")
    mirror.process()
    assert employee(mirror, "zhunan").status == "out_of_sight"  # type: ignore[union-attr]
    assert departures(mirror) == []  # nobody is told 已离职
    assert inbox_statuses(mirror) == ["done", "done", "done"]
    with mirror.sim.state.lock:  # back in sight: they heal
        mirror.org.members["zhunan"] = hidden
        mirror.org.touch()
    mirror.deliver("subscribe", userid="zhunan")
    mirror.process()
    assert employee(mirror, "zhunan").status == "active"  # type: ignore[union-attr]


def test_only_the_whole_directory_says_an_unseen_member_left(mirror: Mirror) -> None:
    synced(mirror)
    with mirror.sim.state.lock:  # deleted in WeCom, but the app only hears an unsubscribe
        del mirror.org.members["zhunan"]
        mirror.org.touch()
    mirror.deliver("unsubscribe", userid="zhunan")
    mirror.process()
    assert employee(mirror, "zhunan").status == "out_of_sight"  # type: ignore[union-attr]
    synced(mirror)  # the nightly sync: user/list_id (contacts secret) does not list them
    assert employee(mirror, "zhunan").status == "departed"  # type: ignore[union-attr]
    assert departures(mirror) == [("zhunan", "full_sync")]


def test_department_events(mirror: Mirror) -> None:
    synced(mirror)
    mirror.deliver("create_party", id=20, name="数据部", parentid=3, order=50)
    mirror.deliver("update_party", dept_id=4, name="基础平台部")
    mirror.deliver("delete_party", dept_id=20)
    mirror.process()
    with mirror.db.begin() as session:
        created = session.get(Department, 20)
        assert created is not None and created.parent_id == 3 and created.deleted
        renamed = session.get(Department, 4)
        assert renamed is not None and renamed.name == "基础平台部"
    emp = employee(mirror, "zhangyao")
    assert emp is not None and emp.display_name == "基础平台部-张瑶"


def test_update_party_before_create_party(mirror: Mirror) -> None:
    synced(mirror)
    with mirror.sim.state.lock:
        from wecom_app.simulator.org import Department as SimDepartment

        mirror.org.departments[30] = SimDepartment(30, "增长部", 1, 10)
        mirror.org.touch()
    mirror.deliver("update_party", dept_id=30, order=11)
    mirror.process()
    with mirror.db.begin() as session:
        dept = session.get(Department, 30)
        assert dept is not None and dept.name == "增长部"


def test_update_tag(mirror: Mirror) -> None:
    synced(mirror)
    tag = _a_tag(mirror)
    mirror.deliver("update_tag", tagid=tag, add_users=["zhangyao", "chenli"], add_parties=[5])
    mirror.deliver("update_tag", tagid=tag, del_users=["chenli"])
    mirror.process()
    with mirror.db.begin() as session:
        rows = session.execute(
            select(TagMember.userid, TagMember.department_id).where(TagMember.tag_id == tag)
        ).all()
    with mirror.sim.state.lock:  # the whole tag as WeCom has it now, not only the deltas
        wecom = mirror.sim.state.org.tags[tag]
        expected = {(u, None) for u in wecom.userlist} | {(None, d) for d in wecom.partylist}
    assert {tuple(r) for r in rows} == expected
    assert ("zhangyao", None) in expected and ("chenli", None) not in expected


def test_old_style_payload_is_used_when_wecom_cannot_be_asked(mirror: Mirror) -> None:
    synced(mirror)
    mirror.sim.state.config.new_style_contact_events = False
    mirror.deliver("update_user", userid="songfang", position="首席架构师")
    _fault(mirror, "/cgi-bin/user/get", 48009)
    mirror.process()
    emp = employee(mirror, "songfang")
    assert emp is not None and emp.position == "首席架构师"


def test_failing_fetch_without_payload_is_retried(mirror: Mirror) -> None:
    synced(mirror)
    mirror.deliver("update_user", userid="songfang", position="首席架构师")
    _fault(mirror, "/cgi-bin/user/get", 48009)
    mirror.process()
    with mirror.db.begin() as session:
        row = session.scalars(select(InboxEvent)).one()
        assert row.status == "pending" and "48009" in (row.error or "")
    assert mirror.process() == 0  # it waits for its backoff
    mirror.clock.advance(5)
    mirror.process()
    assert employee(mirror, "songfang").position == "首席架构师"  # type: ignore[union-attr]


def _a_tag(world: Mirror) -> int:
    return next(iter(world.org.tags))


def _fault(world: Mirror, path: str, errcode: int, count: int = 1) -> Any:
    import httpx

    body = {"path": path, "errcode": errcode, "count": count}
    httpx.post(f"{world.sim.url}/_sim/faults", json=body).raise_for_status()
