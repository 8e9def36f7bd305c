"""Quiet hours in managed groups, through the simulator with a fake clock: the 22:00 reminder in
the groups that ask for it, and nothing of the app's own posted inside quiet hours (a notice
posted to the group, a departure's explanation) until 07:30, except an urgent notice type;
the removal itself is never delayed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.world import World, make_world
from wecom_app.clock import BEIJING, FakeClock
from wecom_app.groups import quiet, service
from wecom_app.groups.rules import GroupRules
from wecom_app.groups.service import GroupSpec
from wecom_app.jobs import JobContext
from wecom_app.sla.calendar import WorkingCalendar

CAL = WorkingCalendar()


def at(day: int, hh: int, mm: int) -> datetime:
    return datetime(2026, 1, day, hh, mm, tzinfo=BEIJING).astimezone(UTC)


def test_the_hours_and_the_reminder() -> None:
    assert quiet.in_quiet(CAL, at(5, 22, 0)) and quiet.in_quiet(CAL, at(6, 7, 29))
    assert not quiet.in_quiet(CAL, at(5, 21, 59)) and not quiet.in_quiet(CAL, at(6, 7, 30))
    assert quiet.quiet_ends(CAL, at(5, 23, 0)) == at(6, 7, 30)
    assert quiet.quiet_ends(CAL, at(6, 2, 0)) == at(6, 7, 30)
    assert quiet.reminder_text(CAL) == "22:00 至次日 07:30 为休息时间，请勿群聊。"
    assert not quiet.in_quiet(WorkingCalendar(quiet_start=None, quiet_end=None), at(5, 23, 0))


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    policy = tmp_path / "policy.yaml"
    policy.write_text("types:\n  alarm:\n    label: 紧急\n    urgent: true\n", encoding="utf-8")
    with make_world(database_url, clock=FakeClock(at(5, 21, 50)), mirror=True,
                    sla_policy_file=str(policy)) as running:  # fmt: skip
        for chatid, asks in (("quiet5", True), ("loud6", False)):
            spec = GroupSpec(name=f"{chatid}群", owner="zhaoming", chatid=chatid, quiet_hours=asks,
                             rules=GroupRules.from_dict({"departments": [5 if asks else 6],
                                                         "users": ["zhaoming"]}))  # fmt: skip
            group, _ = service.create_now(running.services, running.outbox, spec, actor="test")
            assert group.status == "active"
        yield running


def posts(world: World, chatid: str) -> list[str]:
    with world.sim.state.lock:
        return [m["content"]["content"] for m in world.sim.state.chats[chatid]["messages"]]


def post_notice(world: World, kind: str, title: str) -> None:
    body = {"title": title, "type": kind, "require_ack": False,
            "audience": {"groups": ["quiet5"], "post_to_groups": True}}  # fmt: skip
    with world.api as http:
        assert http.post("/api/v1/notices", json=body).status_code == 201


def test_quiet_groups_hear_the_reminder_and_nothing_else_till_morning(world: World) -> None:
    world.clock.set(at(5, 22, 0) + timedelta(seconds=10))
    world.settle()
    assert posts(world, "quiet5")[-1] == "22:00 至次日 07:30 为休息时间，请勿群聊。"
    assert not any("休息时间" in p for p in posts(world, "loud6"))

    world.clock.set(at(5, 22, 30))
    post_notice(world, "notice", "明早例会改到九点半")
    post_notice(world, "alarm", "机房断电，值班人员立即到场")
    world.sim.events.delete_user("tanglintao")
    world.settle()
    world.clock.advance(timedelta(minutes=5))  # past the departure's coalescing
    world.settle()
    with world.sim.state.lock:
        assert "tanglintao" not in world.sim.state.chats["quiet5"]["userlist"]  # at once
    during = posts(world, "quiet5")
    assert any("机房断电" in p for p in during)  # urgent: posted at once
    assert not any("例会" in p for p in during) and not any("已离职" in p for p in during)

    world.clock.set(at(6, 7, 30) + timedelta(seconds=5))
    world.settle()
    morning = posts(world, "quiet5")
    assert any("例会" in p for p in morning) and any("唐琳涛 已离职" in p for p in morning)


def test_a_reminder_long_after_the_start_is_not_sent(world: World) -> None:
    world.clock.set(at(5, 23, 30))  # the worker was down at 22:00
    done = quiet.remind(JobContext(world.services), cal=CAL)
    assert done == {"posted": 0, "skipped": True}
    world.settle()
    assert not any("休息时间" in p for p in posts(world, "quiet5"))
