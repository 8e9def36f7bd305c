"""Tags are mirrored: a full sync reads them, update_tag keeps them current, and a tag means the
same people to a notice, to a group rule and to WeCom itself."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.conftest import API_TOKEN
from tests.world import World, make_world
from wecom_app.directory.naming import NamingPolicy
from wecom_app.directory.sync import sync_services
from wecom_app.groups import service
from wecom_app.groups.config import apply_config
from wecom_app.groups.mirror import org_view
from wecom_app.groups.rules import GroupRules, desired_members
from wecom_app.groups.service import GroupSpec
from wecom_app.models import Tag, TagMember
from wecom_app.simulator.org import ACTIVE

AUTH = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with make_world(database_url) as w:
        sync_services(w.services, NamingPolicy())  # what a fresh deployment does first
        yield w


def mirrored(world: World) -> dict[int, tuple[str, set[str], set[int]]]:
    with world.db.read() as s:
        tags = {t.id: (t.name, set(), set()) for t in s.scalars(select(Tag))}
        for m in s.scalars(select(TagMember)):
            _, users, depts = tags[m.tag_id]
            if m.userid:
                users.add(m.userid)
            if m.department_id is not None:
                depts.add(m.department_id)
    return tags  # type: ignore[return-value]


def wecom_reach(world: World, tag_id: int) -> set[str]:
    """The tag's active members as WeCom resolves a message to the tag (its departments with
    everything below them); notices go to active employees only."""
    with world.sim.state.lock:
        tag = world.sim.state.org.tags[tag_id]
        org = world.sim.state.org
        reached = set(tag.userlist)
        for dept in tag.partylist:
            reached |= org.member_ids_under(dept)
        return {u for u in reached if org.members[u].status == ACTIVE}


def test_a_full_sync_mirrors_every_tag_with_its_members_and_departments(world: World) -> None:
    with world.sim.state.lock:
        expected = {t.tagid: (t.tagname, set(t.userlist), set(t.partylist))
                    for t in world.sim.state.org.tags.values()}  # fmt: skip
    assert mirrored(world) == expected
    assert world.calls("tag/list") == 1 and world.calls("tag/get") == len(expected)


@pytest.mark.parametrize("tag_id", [1, 2, 3])
def test_a_dry_run_to_a_tag_counts_whom_wecom_would_reach(world: World, tag_id: int) -> None:
    body = {"title": "标签通知", "audience": {"tags": [tag_id]}}
    client = world.app.test_client()
    resp = client.post("/api/v1/notices?dry_run=1", data=json.dumps(body), headers=AUTH)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["recipients"] == len(wecom_reach(world, tag_id))


def test_a_group_rule_on_a_tag_takes_the_same_people_as_a_notice(world: World) -> None:
    rules = GroupRules.from_dict({"tags": [2]})
    with world.db.read() as s:
        members = set(desired_members(rules, org_view(s)))
    assert members == wecom_reach(world, 2)


def test_the_shipped_groups_file_works_on_a_fresh_deployment(world: World) -> None:
    results = apply_config(world.services, world.outbox, "config/groups.example.yaml", dry_run=True)
    assert results and {r["action"] for r in results} <= {"create", "adopt", "update"}


def test_update_tag_keeps_name_and_members_current(world: World) -> None:
    with world.sim.state.lock:
        world.sim.state.org.tags[3].tagname = "消防安全员（2027）"
    world.sim.events.update_tag(3, add_users=["huangyao"], del_users=["zhunan"], add_parties=[6])
    world.process()
    name, users, depts = mirrored(world)[3]
    assert name == "消防安全员（2027）"
    assert "huangyao" in users and "zhunan" not in users and depts == {6}


def test_a_deleted_tag_leaves_the_mirror(world: World) -> None:
    assert world.sim.events.delete_tag(3).ok
    world.process()
    assert 3 not in mirrored(world) and 1 in mirrored(world)


def test_service_validate_knows_tags_by_name_after_a_sync(world: World) -> None:
    spec = GroupSpec(name="管理层群", owner="zhaoming",
                     rules=GroupRules.from_dict({"tags": ["管理层"]}))  # fmt: skip
    with world.db.read() as s:
        service.validate(spec, org_view(s))


def test_when_wecom_will_not_show_the_tag_the_event_s_changes_apply(world: World) -> None:
    world.fault("tag/get", "errcode", errcode=60011)  # outside the app's visibility
    world.sim.events.update_tag(3, add_users=["huangyao"], del_users=["zhunan"])
    world.process()
    _, users, _ = mirrored(world)[3]
    assert "huangyao" in users and "zhunan" not in users
