"""The inbox drained by the worker: dispatch table, unknown events, failing handlers."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from callbacks import dispatch
from callbacks.dispatch import DuplicateHandler, HandlerContext, handles
from callbacks.processing import MAX_ATTEMPTS, process_pending
from tests.helpers import post_event, xml_message
from wecom_app.models import InboxEvent


def _rows(db):
    with db.begin() as s:
        return list(s.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def test_every_route_has_one_handler_and_duplicates_fail() -> None:
    table = dispatch.routes()
    assert ("event", "enter_agent", None) in table
    with pytest.raises(DuplicateHandler):
        handles("event", "enter_agent")(lambda ctx, ev: None)


def test_known_event_marked_done(client, app, app_crypto, db, clock) -> None:
    xml = xml_message(
        {
            "ToUserName": "ww",
            "FromUserName": "zhangsan",
            "CreateTime": 1700000000,
            "MsgType": "event",
            "Event": "enter_agent",
            "EventKey": "",
            "AgentID": 1,
        }
    )
    post_event(client, "/wecom/callback", app_crypto, xml)
    assert process_pending(db, clock) == 1
    (row,) = _rows(db)
    assert row.status == "done" and row.attempts == 1 and row.processed_at == clock.now()
    assert process_pending(db, clock) == 0


def test_unknown_event_kept_unhandled_and_logged(
    client, app, app_crypto, db, clock, caplog
) -> None:
    xml = xml_message(
        {
            "ToUserName": "ww",
            "FromUserName": "u",
            "CreateTime": 1700000001,
            "MsgType": "event",
            "Event": "brand_new_event",
        }
    )
    post_event(client, "/wecom/callback", app_crypto, xml)
    process_pending(db, clock)
    (row,) = _rows(db)
    assert row.status == "unhandled" and "brand_new_event" in row.raw_xml
    assert "no handler" in caplog.text


def test_failing_handler_retried_then_failed(client, app, app_crypto, db, clock) -> None:
    route = ("event", "test_explodes", None)

    def explode(ctx: HandlerContext, event) -> None:
        raise RuntimeError("boom")

    dispatch._TABLE[route] = explode
    try:
        xml = xml_message(
            {
                "ToUserName": "ww",
                "FromUserName": "u",
                "CreateTime": 1700000002,
                "MsgType": "event",
                "Event": "test_explodes",
            }
        )
        post_event(client, "/wecom/callback", app_crypto, xml)
        for _ in range(MAX_ATTEMPTS):
            process_pending(db, clock)
        (row,) = _rows(db)
        assert row.status == "failed" and row.attempts == MAX_ATTEMPTS
        assert row.error == "RuntimeError: boom"
    finally:
        del dispatch._TABLE[route]
