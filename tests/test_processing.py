"""The inbox drained by the worker: dispatch table, unknown events, failing handlers, one
transaction per event, fetches outside transactions, leases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from callbacks.dispatch import DuplicateHandler, HandlerContext, HandlerTable
from callbacks.processing import MAX_ATTEMPTS, InboxProcessor
from tests.helpers import post_event, xml_message
from wecom_app.app import composition_of
from wecom_app.errors import WeComUnreachable
from wecom_app.models import Employee, InboxEvent


def _rows(db):
    with db.begin() as s:
        return list(s.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def _event(name: str, at: int, user: str = "u") -> str:
    return xml_message(
        {
            "ToUserName": "ww",
            "FromUserName": user,
            "CreateTime": at,
            "MsgType": "event",
            "Event": name,
        }
    )


def _processor(app: Any, table: HandlerTable | None = None) -> InboxProcessor:
    composition = composition_of(app)
    return InboxProcessor(composition.services, table or composition.registry.handlers)


def test_every_route_has_one_handler_and_duplicates_fail(app) -> None:
    table = composition_of(app).registry.handlers
    assert ("event", "enter_agent", None) in table.routes()
    assert ("event", "change_contact", "delete_user") in table.routes()
    with pytest.raises(DuplicateHandler):
        table.add("event", "enter_agent", handler=lambda ctx, ev: None)


def test_a_table_without_registrations_handles_nothing(client, app, app_crypto, db) -> None:
    """Nothing registers by import: an empty table is empty, whatever was imported."""
    post_event(client, "/wecom/callback", app_crypto, _event("enter_agent", 1700000000))
    assert _processor(app, HandlerTable()).run_pending() == 1
    assert _rows(db)[0].status == "unhandled"


def test_known_event_marked_done(client, app, app_crypto, db, clock) -> None:
    post_event(client, "/wecom/callback", app_crypto, _event("enter_agent", 1700000000))
    processor = _processor(app)
    assert processor.run_pending() == 1
    (row,) = _rows(db)
    assert row.status == "done" and row.attempts == 1 and row.processed_at == clock.now()
    assert row.lease_token is None
    assert processor.run_pending() == 0


def test_unknown_event_kept_unhandled_and_logged(client, app, app_crypto, db, caplog) -> None:
    post_event(client, "/wecom/callback", app_crypto, _event("brand_new_event", 1700000001))
    _processor(app).run_pending()
    (row,) = _rows(db)
    assert row.status == "unhandled" and "brand_new_event" in row.raw_xml
    assert "no handler" in caplog.text


def test_failing_handler_retried_with_backoff_then_failed(
    client, app, app_crypto, db, clock
) -> None:
    table = HandlerTable()

    def explode(ctx: HandlerContext, event: Any) -> None:
        raise RuntimeError("boom")

    table.add("event", "test_explodes", handler=explode)
    post_event(client, "/wecom/callback", app_crypto, _event("test_explodes", 1700000002))
    processor = _processor(app, table)
    for _ in range(MAX_ATTEMPTS):
        assert processor.run_pending() == 1
        assert processor.run_pending() == 0  # it waits for its backoff
        clock.advance(60)
    (row,) = _rows(db)
    assert row.status == "failed" and row.attempts == MAX_ATTEMPTS
    assert row.error == "RuntimeError: boom"


def test_each_event_commits_on_its_own(client, app, app_crypto, db) -> None:
    """A failing event neither undoes nor holds up the events around it."""
    table = HandlerTable()

    def write(ctx: HandlerContext, event: Any) -> None:
        ctx.session.add(Employee(userid=event.from_user, name=event.from_user, display_name="",
                                 departments=[], leader_in=[], direct_leaders=[],
                                 status="active", joined_at=ctx.clock.now(),
                                 updated_at=ctx.clock.now()))  # fmt: skip
        if event.from_user == "bad":
            raise RuntimeError("boom")

    table.add("event", "test_write", handler=write)
    for i, user in enumerate(("first", "bad", "third")):
        post_event(
            client, "/wecom/callback", app_crypto, _event("test_write", 1700000100 + i, user)
        )
    assert _processor(app, table).run_pending() == 3
    assert [r.status for r in _rows(db)] == ["done", "pending", "done"]
    with db.begin() as s:
        assert sorted(s.scalars(select(Employee.userid))) == ["first", "third"]


def test_a_fetch_runs_before_the_transaction_and_its_result_reaches_the_handler(
    client, app, app_crypto, db
) -> None:
    table, seen = HandlerTable(), []
    services = composition_of(app).services

    def fetch(client_: Any, event: Any) -> str:
        seen.append(("fetch", services.db.in_transaction()))
        return f"fetched for {event.from_user}"

    def handle(ctx: HandlerContext, event: Any) -> None:
        seen.append(("handle", ctx.fetched))

    table.add("event", "test_fetch", handler=handle, fetch=fetch)
    post_event(client, "/wecom/callback", app_crypto, _event("test_fetch", 1700000200, "amy"))
    _processor(app, table).run_pending()
    assert seen == [("fetch", False), ("handle", "fetched for amy")]


def test_wecom_away_defers_events_that_need_it_and_not_the_others(
    client, app, app_crypto, db, clock
) -> None:
    table, handled = HandlerTable(), []

    def fetch(client_: Any, event: Any) -> None:
        raise WeComUnreachable("ConnectError: refused", api="/cgi-bin/user/get")

    table.add("event", "test_needs_wecom", handler=lambda c, e: handled.append("needs"),
              fetch=fetch)  # fmt: skip
    table.add("event", "test_local", handler=lambda c, e: handled.append(e.from_user))
    post_event(client, "/wecom/callback", app_crypto, _event("test_needs_wecom", 1700000300))
    post_event(client, "/wecom/callback", app_crypto, _event("test_local", 1700000301, "ack1"))
    processor = _processor(app, table)
    assert processor.run_pending() == 2
    rows = _rows(db)
    assert [r.status for r in rows] == ["pending", "done"] and handled == ["ack1"]
    assert rows[0].attempts == 0 and "ConnectError" in rows[0].error  # not its fault
    assert rows[0].available_at > clock.now()


def test_a_worker_whose_lease_ran_out_cannot_record(client, app, app_crypto, db, clock) -> None:
    table = HandlerTable()

    def write(ctx: HandlerContext, event: Any) -> None:
        ctx.session.add(Employee(userid=f"u{ctx.clock.now().timestamp()}", name="x",
                                 display_name="", departments=[], leader_in=[],
                                 direct_leaders=[], status="active", joined_at=ctx.clock.now(),
                                 updated_at=ctx.clock.now()))  # fmt: skip

    table.add("event", "test_once", handler=write)
    post_event(client, "/wecom/callback", app_crypto, _event("test_once", 1700000400))
    slow = _processor(app, table)
    (stale,) = slow.claim(10)
    clock.advance(slow.services.tuning.inbox_lease.total_seconds() + 1)
    fast = _processor(app, table)
    assert fast.run_pending() == 1  # the lease ran out: another worker takes the event
    clock.advance(1)
    assert slow.process(stale) == "lost"  # its work is rolled back
    with db.begin() as s:
        assert s.scalar(select(func.count()).select_from(Employee)) == 1
    assert _rows(db)[0].status == "done"
