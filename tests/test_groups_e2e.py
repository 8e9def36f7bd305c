"""End to end: HR deletes someone in WeCom, the encrypted delete_user callback reaches the app,
the mirror marks them departed, and every managed group loses them with an explanation."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.world import make_world
from wecom_app.clock import FakeClock
from wecom_app.directory.naming import NamingPolicy
from wecom_app.directory.sync import sync_services
from wecom_app.groups import service
from wecom_app.groups.departures import COALESCE
from wecom_app.groups.rules import GroupRules
from wecom_app.groups.service import GroupSpec
from wecom_app.models import GroupAudit


def test_delete_user_callback_removes_from_groups_with_notice(database_url: str) -> None:
    with make_world(database_url, clock=FakeClock()) as stack:
        sync_services(stack.services, NamingPolicy())
        for chatid, rules in (("rd3", {"departments": [3]}), ("mob5", {"departments": [5]})):
            spec = GroupSpec(name=f"{chatid}工作群", owner="zhaoming", chatid=chatid,
                             rules=GroupRules.from_dict({**rules, "users": ["zhaoming"]}))  # fmt: skip
            group, _ = service.create_now(stack.services, stack.outbox, spec, actor="test")
            assert group.status == "active"
        delivery = stack.sim.events.delete_user("tangfannan")
        assert delivery.status == 200
        stack.settle()
        stack.clock.advance(COALESCE + timedelta(seconds=1))
        stack.settle()
        for chatid in ("rd3", "mob5"):
            with stack.sim.state.lock:
                chat = stack.sim.state.chats[chatid]
                assert "tangfannan" not in chat["userlist"]
                assert (
                    chat["messages"][-1]["content"]["content"]
                    == "移动研发部-唐帆楠 已离职，已移出本群"
                )
        with stack.services.db.begin() as session:
            rows = session.scalars(select(GroupAudit).where(GroupAudit.action == "remove")).all()
            assert sorted((r.chatid, r.outcome, r.cause.split(":")[0]) for r in rows) == [
                ("mob5", "applied", "delete_user"),
                ("rd3", "applied", "delete_user"),
            ]
