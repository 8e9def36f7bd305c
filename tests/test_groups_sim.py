"""Managed groups against the simulator over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.world import World as GroupEnv
from tests.world import make_world
from wecom_app import jobs
from wecom_app.domain_events import EmployeeDeparted, EmployeeOutOfSight
from wecom_app.groups import service
from wecom_app.groups.reconcile import reconcile
from wecom_app.groups.rules import GroupRules, RuleError
from wecom_app.groups.service import GroupSpec
from wecom_app.jobs import JobContext, JobTable
from wecom_app.models import (
    Employee,
    EmployeeStatus,
    GroupAudit,
    GroupMember,
    ManagedGroup,
    OutboxMessage,
)
from wecom_app.outbox import Lane
from wecom_app.registry import Registry

MOBILE = 5  # 移动研发部, led by wangxuanqiang
TEST_DEPT = 6  # 测试部


@pytest.fixture
def env(database_url: str) -> Iterator[GroupEnv]:
    with make_world(database_url, mirror=True) as running:
        yield running


def appchat_lane(limit: int):
    def customize(registry: Registry) -> None:
        registry.outbox.add_lane("appchat", Lane(limit, timedelta(hours=1)))

    return customize


def create(env: GroupEnv, spec: GroupSpec) -> ManagedGroup:
    group, outcome = service.create_now(env.services, env.outbox, spec, actor="test")
    assert group.status == "active", outcome
    return group


def mobile_group(env: GroupEnv, **extra: object) -> ManagedGroup:
    spec = GroupSpec(
        name="移动研发部工作群",
        owner="wangxuanqiang",
        backup_owner="tanglintao",
        rules=GroupRules.from_dict({"departments": [MOBILE], **extra}),  # type: ignore[dict-item]
        chatid="mobile01",
    )
    return create(env, spec)


def audit_rows(env: GroupEnv, **where: object) -> list[GroupAudit]:
    with env.db.begin() as session:
        query = select(GroupAudit).order_by(GroupAudit.id)
        for key, value in where.items():
            query = query.where(getattr(GroupAudit, key) == value)
        return list(session.scalars(query))


def depart(env: GroupEnv, userid: str) -> None:
    """Mark someone departed in the mirror and announce it, as the directory does."""
    with env.db.begin() as session:
        employee = session.scalars(select(Employee).where(Employee.userid == userid)).one()
        employee.status = EmployeeStatus.DEPARTED
        departed = EmployeeDeparted(userid, env.clock.now(), "delete_user", "42")
        env.services.events.publish(session, env.clock, departed)


def set_rules(env: GroupEnv, chatid: str, rules: dict) -> None:
    with env.db.begin() as session:
        group = session.scalars(select(ManagedGroup).where(ManagedGroup.chatid == chatid)).one()
        group.rules = GroupRules.from_dict(rules).to_dict()


def test_create_group_with_rules(env: GroupEnv) -> None:
    group = mobile_group(env)
    chat = env.chat(group.chatid)
    assert chat["owner"] == "wangxuanqiang"
    members = set(chat["userlist"])
    expected = {
        m.userid
        for m in env.sim.state.org.members.values()
        if MOBILE in m.department and m.status == 1
    }
    assert members == expected and "tanglintao" in members
    adds = audit_rows(env, action="add")
    assert {r.userid for r in adds} == members
    assert all(r.outcome == "applied" and r.reason for r in adds)


def test_unknown_department_and_too_many_members_rejected(env: GroupEnv) -> None:
    spec = GroupSpec(
        name="x群", owner="zhaoming", rules=GroupRules.from_dict({"departments": [99]})
    )
    with pytest.raises(RuleError, match="未知部门"):
        create(env, spec)
    spec.rules = GroupRules.from_dict({"tags": ["不存在"]})
    with pytest.raises(RuleError, match="标签"):
        create(env, spec)
    assert env.calls("appchat/create") == 0


def test_reconcile_adds_and_removes_in_one_call(env: GroupEnv) -> None:
    group = mobile_group(env)
    set_rules(env, group.chatid, {"departments": [TEST_DEPT], "users": ["wangxuanqiang"]})
    result = reconcile(env.services, group.chatid, actor="test")
    assert result.plan.add and result.plan.remove
    again = reconcile(env.services, group.chatid, actor="test")
    assert again.plan.empty  # queued changes are not planned twice
    env.drain()
    chat = env.chat(group.chatid)
    assert len(chat["changes"]) == 1
    assert set(chat["userlist"]) == set(result.plan.add) | {"wangxuanqiang", "tanglintao"}
    rows = audit_rows(env, outbox_id=result.outbox_id)
    assert rows and all(r.outcome == "applied" for r in rows)
    assert reconcile(env.services, group.chatid, actor="test").plan.empty


def test_every_removal_says_its_reason_in_the_group(env: GroupEnv) -> None:
    group = mobile_group(env)
    set_rules(env, group.chatid, {"departments": [MOBILE], "exclude": ["litao"]})
    reconcile(env.services, group.chatid, actor="test")
    env.drain()
    chat = env.chat(group.chatid)
    assert "litao" not in chat["userlist"]
    assert (
        chat["messages"][-1]["content"]["content"]
        == "移动研发部-李涛：不再符合本群规则，已移出本群"
    )


def test_someone_out_of_the_app_s_sight_is_removed_without_a_false_已离职(env: GroupEnv) -> None:
    group = mobile_group(env)
    with env.db.begin() as session:
        hidden = EmployeeOutOfSight("hanyang", env.clock.now(), "unsubscribe", "7")
        env.services.events.publish(session, env.clock, hidden)
    env.clock.advance(2)
    env.drain()
    chat = env.chat(group.chatid)
    text = chat["messages"][-1]["content"]["content"]
    assert "hanyang" not in chat["userlist"]
    assert text == "移动研发部-韩洋：已不在本应用可见范围，已移出本群" and "离职" not in text


def test_groups_follow_transfers_and_new_hires_within_seconds(env: GroupEnv) -> None:
    group = mobile_group(env)
    env.settle()  # today's 09:00 check is done: what follows is not its work
    before = env.calls("appchat/get")
    env.sim.events.update_user("litao", department=[TEST_DEPT], main_department=TEST_DEPT)
    env.sim.events.create_user(userid="xinren", name="新人", department=[MOBILE],
                               main_department=MOBILE, status=1)  # fmt: skip
    env.process()  # the callbacks: the mirror changes and the group is flagged
    env.clock.advance(5)  # the worker's next few-second pass
    env.settle()
    chat = env.chat(group.chatid)
    assert "litao" not in chat["userlist"] and "xinren" in chat["userlist"]
    text = chat["messages"][-1]["content"]["content"]
    assert text == "测试部-李涛：调离本部门，已移出本群"  # a transfer says so
    assert env.calls("appchat/get") == before + 1  # one group followed, no daily check
    with env.db.read() as session:
        flagged = session.scalar(
            select(ManagedGroup.reconcile_due_at).where(ManagedGroup.chatid == group.chatid)
        )
    assert flagged is None


@pytest.mark.parametrize("keeps_new_userid", [True, False], ids=["NewUserID", "no-NewUserID"])
def test_a_userid_change_keeps_the_person_in_their_groups(
    env: GroupEnv, keeps_new_userid: bool
) -> None:
    group = mobile_group(env, users=["hanyang"])
    env.settle()
    env.sim.state.config.thin_keeps_new_userid = keeps_new_userid
    posted = len(env.chat(group.chatid)["messages"])
    env.sim.events.update_user("hanyang", new_userid="hanyang2")
    env.process()
    env.clock.advance(5)
    env.settle()
    chat = env.chat(group.chatid)
    assert "hanyang2" in chat["userlist"] and "hanyang" not in chat["userlist"]
    assert len(chat["messages"]) == posted  # nobody is announced as removed
    assert audit_rows(env, action="remove") == []
    with env.db.read() as session:
        cached = set(session.scalars(select(GroupMember.userid)))
        rules = session.scalar(select(ManagedGroup.rules).where(ManagedGroup.chatid == "mobile01"))
    assert "hanyang2" in cached and "hanyang" not in cached
    assert rules["users"] == ["hanyang2"]


def test_departed_member_removed_with_explanation(env: GroupEnv) -> None:
    group = mobile_group(env)
    depart(env, "hanyang")
    depart(env, "litao")
    env.clock.advance(2)
    env.drain()
    chat = env.chat(group.chatid)
    assert "hanyang" not in chat["userlist"] and "litao" not in chat["userlist"]
    assert len(chat["changes"]) == 1  # both departures folded into one call
    text = chat["messages"][-1]["content"]["content"]
    assert "移动研发部-韩洋 已离职，已移出本群" in text and "移动研发部-李涛" in text
    rows = audit_rows(env, action="remove")
    assert [(r.userid, r.outcome, r.cause) for r in rows] == [
        ("hanyang", "applied", "delete_user:42"),
        ("litao", "applied", "delete_user:42"),
    ]


def test_departing_owner_transferred_first(env: GroupEnv) -> None:
    group = mobile_group(env)
    depart(env, "wangxuanqiang")
    env.drain()
    chat = env.chat(group.chatid)
    first, second = chat["changes"]
    assert first["owner"] == "tanglintao" and first["removed"] == []
    assert second["removed"] == ["wangxuanqiang"]
    assert chat["owner"] == "tanglintao"
    assert "已离职" in chat["messages"][-1]["content"]["content"]


def test_daily_check_repairs_drift(env: GroupEnv) -> None:
    group = mobile_group(env)
    with env.sim.state.lock:  # someone changes the group outside the app
        chat = env.sim.state.chats[group.chatid]
        chat["userlist"] = [u for u in chat["userlist"] if u != "litao"] + ["zhaoming"]
    env.clock.set(env.clock.now().replace(hour=1, minute=5))  # 09:05 in Shanghai
    only = JobTable([env.registry.jobs["groups_daily_check"]])
    assert jobs.run_due(JobContext(env.services), only)
    env.drain()
    members = set(env.chat(group.chatid)["userlist"])
    assert "litao" in members and "zhaoming" not in members
    with env.db.begin() as session:
        row = session.scalars(select(ManagedGroup)).one()
        assert row.drift["joined_outside"] == ["zhaoming"]
        assert row.drift["left_outside"] == ["litao"]
    drift = audit_rows(env, action="drift")
    assert {r.userid for r in drift} == {"zhaoming", "litao"}


def test_changes_are_paced_not_dropped(database_url: str) -> None:
    with make_world(database_url, mirror=True, customize=appchat_lane(2)) as env:
        _paced(env)


def _paced(env: GroupEnv) -> None:
    groups = [mobile_group(env)]
    for i in range(2):
        spec = GroupSpec(name=f"测试部{i}群", owner="zhaochen",
                         rules=GroupRules.from_dict({"departments": [TEST_DEPT]}), chatid=f"t{i}")  # fmt: skip
        groups.append(create(env, spec))
        env.clock.advance(timedelta(hours=1, minutes=1))
    env.clock.advance(timedelta(hours=1, minutes=1))
    env.sim.state.config.limits.appchat_changes_per_hour = 2
    for userid in ("hanyang", "litao", "zhaochen"):  # owner of t0 and t1, member of nothing else
        depart(env, userid)
    env.clock.advance(2)
    env.drain()
    done = [g for g in groups if env.chat(g.chatid)["changes"]]
    assert len(done) == 2  # the lane stops at the limit instead of being refused
    env.clock.advance(timedelta(hours=1, seconds=5))
    env.drain()
    env.clock.advance(timedelta(hours=1, seconds=5))
    env.drain()
    with env.db.begin() as session:
        errors = session.scalars(
            select(OutboxMessage.errcode).where(OutboxMessage.errcode.is_not(None))
        )
        assert list(errors) == []
    assert all(r.outcome == "applied" for r in audit_rows(env, action="remove"))
    assert "zhaochen" not in env.chat("t0")["userlist"]


@pytest.mark.parametrize("errcode", [86003, 48002])
def test_refused_change_is_audited_as_failed(env: GroupEnv, errcode: int) -> None:
    group = mobile_group(env)
    env.sim.state.config.limits.appchat_changes_per_hour = 1000
    from wecom_app.simulator.state import Fault

    env.sim.state.faults.append(Fault("/cgi-bin/appchat/update", "errcode", 1, errcode))
    depart(env, "hanyang")
    env.clock.advance(2)
    env.drain()
    (row,) = audit_rows(env, action="remove")
    assert (row.outcome, row.errcode) == ("failed", errcode)
    with env.db.begin() as session:
        status = session.scalars(select(ManagedGroup.status)).one()
    assert status == {86003: "missing", 48002: "error"}[errcode]
    assert "hanyang" in env.chat(group.chatid)["userlist"]


def test_rate_limit_holds_the_lane_then_applies(env: GroupEnv) -> None:
    group = mobile_group(env)
    from wecom_app.simulator.state import Fault

    env.sim.state.faults.append(Fault("/cgi-bin/appchat/update", "errcode", 2, 45009))
    depart(env, "hanyang")
    env.clock.advance(2)
    env.drain()
    (row,) = audit_rows(env, action="remove")
    assert row.outcome == "queued"  # still on its way, not recorded as done
    env.clock.advance(61)  # the minute hold is over; WeCom still says 45009: the hour one
    env.drain()
    env.clock.advance(61)
    assert env.drain() == 0 and audit_rows(env, action="remove")[0].outcome == "queued"
    env.clock.advance(timedelta(hours=1))
    env.drain()
    (row,) = audit_rows(env, action="remove")
    assert row.outcome == "applied"
    assert "hanyang" not in env.chat(group.chatid)["userlist"]


def test_unknown_user_does_not_block_removals(env: GroupEnv) -> None:
    group = mobile_group(env)
    with env.db.begin() as session:  # the mirror knows someone WeCom does not
        ghost = session.scalars(select(Employee).where(Employee.userid == "litao")).one()
        session.add(Employee(userid="ghost01", name="幽灵", display_name="移动研发部-幽灵",
                             departments=[MOBILE], leader_in=[], direct_leaders=[],
                             status="active", joined_at=ghost.joined_at,
                             updated_at=ghost.updated_at))  # fmt: skip
        session.scalars(
            select(Employee).where(Employee.userid == "hanyang")
        ).one().status = EmployeeStatus.DISABLED
    result = reconcile(env.services, group.chatid, actor="test")
    assert result.plan.add == ("ghost01",) and result.plan.remove == ("hanyang",)
    env.drain()
    ghost = audit_rows(env, userid="ghost01", action="add")[-1]
    removal = audit_rows(env, userid="hanyang", action="remove")[-1]
    assert (ghost.outcome, ghost.errcode) == ("failed", 60111)
    assert removal.outcome == "applied"
    assert "hanyang" not in env.chat(group.chatid)["userlist"]


@pytest.mark.postgres
def test_two_reconcilers_do_not_double_apply(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("concurrency of two workers is a PostgreSQL matter")
    import threading

    from wecom_app.services import Services

    with make_world(database_url, mirror=True) as env:
        group = mobile_group(env)
        set_rules(env, group.chatid, {"departments": [TEST_DEPT], "users": ["wangxuanqiang"]})
        other = env.compose_another()
        barrier = threading.Barrier(2)
        results = []

        def run(services: Services) -> None:
            barrier.wait()
            results.append(reconcile(services, group.chatid, actor="worker"))

        pair = (env.services, other.services)
        threads = [threading.Thread(target=run, args=(s,)) for s in pair]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        other.close()
        assert sum(1 for r in results if r.outbox_id is not None) == 1
        env.drain()
        assert len(env.chat(group.chatid)["changes"]) == 1
        adds = audit_rows(env, action="add", actor="worker")
        assert len(adds) == len({r.userid for r in adds})


def test_departure_notice_text_is_configurable_per_deployment(database_url: str) -> None:
    template = "{display_name}（{reason}）已被移出本群"
    with (
        make_world(database_url, mirror=True, departure_notice=template) as custom,
        make_world(database_url, mirror=True) as plain,
    ):
        texts = []
        for world, userid in ((custom, "litao"), (plain, "hanyang")):
            group = mobile_group(world) if world is custom else None
            if group is None:  # the same database: the plain app uses the same group
                group = custom_group(world)
            depart(world, userid)
            world.clock.advance(2)
            world.drain()
            texts.append(world.chat(group.chatid)["messages"][-1]["content"]["content"])
    assert texts == ["移动研发部-李涛（已离职）已被移出本群", "移动研发部-韩洋 已离职，已移出本群"]


def custom_group(world: GroupEnv) -> ManagedGroup:
    """The group another app on this database created, adopted into this world's simulator."""
    spec = GroupSpec(name="移动研发部工作群", owner="wangxuanqiang", chatid="mobile02",
                     rules=GroupRules.from_dict({"departments": [MOBILE]}))  # fmt: skip
    return create(world, spec)


def test_owner_and_successor_leaving_together(env: GroupEnv) -> None:
    group = mobile_group(env)
    depart(env, "wangxuanqiang")  # the owner: transfer to the backup owner tanglintao first
    depart(env, "tanglintao")  # ... who leaves too before anything was sent
    env.clock.advance(2)
    env.drain()
    chat = env.chat(group.chatid)
    assert "wangxuanqiang" not in chat["userlist"] and "tanglintao" not in chat["userlist"]
    assert chat["owner"] in chat["userlist"]
    rows = [r for r in audit_rows(env) if r.actor == "departure"]
    assert rows and all(r.outcome == "applied" for r in rows), [
        (r.action, r.userid, r.outcome, r.error) for r in rows
    ]


def test_removals_wait_longer_when_the_hourly_budget_runs_low(env: GroupEnv) -> None:
    from wecom_app import outbox
    from wecom_app.groups.departures import coalesce_delay

    lane = Lane(4, timedelta(hours=1))
    now = env.clock.now()
    with env.db.begin() as session:
        assert coalesce_delay(session, now, lane) == timedelta(seconds=1)
        for i in range(3):
            outbox.enqueue(session, "appchat_update", {"chatid": "x"}, f"k{i}", now=now,
                           lane="appchat")  # fmt: skip
        assert coalesce_delay(session, now, lane) == timedelta(seconds=6)
