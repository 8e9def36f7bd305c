"""Both callback channels over HTTP: verification, durable inbox, duplicates, every bad input."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from tests.conftest import CORP_ID
from tests.helpers import envelope, post_event, signed_query, text_xml, xml_message
from wecom_app.models import InboxEvent
from wecom_app.web.context import services as services_of
from wecom_app.wecom.crypto import CallbackCrypto

APP_PATH = "/wecom/callback"
CONTACTS_PATH = "/wecom/contacts/callback"


def inbox_count(app: Any) -> int:
    with services_of(app).db.begin() as s:
        return s.scalar(select(func.count()).select_from(InboxEvent)) or 0


def verify_query(crypto: CallbackCrypto, echo: str) -> str:
    enc = crypto.encrypt(echo)
    return signed_query(enc, echostr=enc.encrypt)


@pytest.mark.parametrize("channel", ["app", "contacts"])
def test_url_verification_answers_plain_echostr(
    client, app_crypto, contacts_crypto, channel
) -> None:
    crypto, path = (app_crypto, APP_PATH) if channel == "app" else (contacts_crypto, CONTACTS_PATH)
    echo = "4865190371298357+/="  # '+' must survive URL encoding as %2B
    resp = client.get(f"{path}?{verify_query(crypto, echo)}")
    assert resp.status_code == 200
    assert resp.data == echo.encode()


def test_channels_do_not_accept_each_others_keys(client, app_crypto) -> None:
    resp = client.get(f"{CONTACTS_PATH}?{verify_query(app_crypto, '123')}")
    assert resp.status_code == 403


def test_text_message_stored_before_200(client, app, app_crypto) -> None:
    resp = post_event(client, APP_PATH, app_crypto, text_xml("zhangsan", "收到 #12", 7001))
    assert resp.status_code == 200 and resp.data == b""
    with services_of(app).db.begin() as s:
        row = s.scalars(select(InboxEvent)).one()
    assert (row.channel, row.msg_type, row.from_user, row.msg_id) == (
        "app",
        "text",
        "zhangsan",
        "7001",
    )
    assert row.dedupe_key == "msg:7001" and "收到 #12" in row.raw_xml and row.status == "pending"


def test_duplicate_delivery_has_no_second_effect(client, app, app_crypto) -> None:
    xml = text_xml("zhangsan", "收到", 7002)
    assert post_event(client, APP_PATH, app_crypto, xml).status_code == 200
    assert post_event(client, APP_PATH, app_crypto, xml).status_code == 200
    assert inbox_count(app) == 1


def contact_xml(change: str, user: str, create_time: int = 1700000100, **extra: Any) -> str:
    return xml_message(
        {
            "ToUserName": CORP_ID,
            "FromUserName": "sys",
            "CreateTime": create_time,
            "MsgType": "event",
            "Event": "change_contact",
            "ChangeType": change,
            "UserID": user,
            **extra,
        }
    )


def test_contact_events_dedupe_by_change_type_and_user(client, app, contacts_crypto) -> None:
    for xml in (
        contact_xml("delete_user", "a"),
        contact_xml("delete_user", "b"),
        contact_xml("update_user", "a"),
        contact_xml("delete_user", "a"),
    ):
        assert post_event(client, CONTACTS_PATH, contacts_crypto, xml).status_code == 200
    assert inbox_count(app) == 3
    with services_of(app).db.begin() as s:
        rows = s.scalars(select(InboxEvent).order_by(InboxEvent.id)).all()
    assert [(r.channel, r.change_type, r.subject) for r in rows] == [
        ("contacts", "delete_user", "a"),
        ("contacts", "delete_user", "b"),
        ("contacts", "update_user", "a"),
    ]


def test_card_click_stored_with_task_id(client, app, app_crypto) -> None:
    xml = (
        "<xml><ToUserName><![CDATA[ww]]></ToUserName><FromUserName><![CDATA[lisi]]></FromUserName>"
        "<CreateTime>1700000200</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[ack]]></EventKey>"
        "<TaskId><![CDATA[notice-12]]></TaskId><CardType><![CDATA[button_interaction]]></CardType>"
        "<ResponseCode><![CDATA[rc1]]></ResponseCode><AgentID>1000002</AgentID></xml>"
    )
    assert post_event(client, APP_PATH, app_crypto, xml).status_code == 200
    with services_of(app).db.begin() as s:
        row = s.scalars(select(InboxEvent)).one()
    assert (row.event, row.subject, row.from_user) == ("template_card_event", "notice-12", "lisi")


def test_unknown_event_kept(client, app, app_crypto) -> None:
    xml = xml_message(
        {
            "ToUserName": "ww",
            "FromUserName": "u",
            "CreateTime": 1700000300,
            "MsgType": "event",
            "Event": "some_future_event",
        }
    )
    assert post_event(client, APP_PATH, app_crypto, xml).status_code == 200
    assert inbox_count(app) == 1


# --- bad input: 4xx, a short reason, nothing stored -------------------------------------------


def _post(client: Any, query: str, body: str | bytes, path: str = APP_PATH) -> Any:
    return client.post(f"{path}?{query}", data=body, content_type="text/xml")


def test_wrong_signature(client, app, app_crypto) -> None:
    enc = app_crypto.encrypt(text_xml("u", "x", 1))
    query = urlencode({"msg_signature": "f" * 40, "timestamp": enc.timestamp, "nonce": enc.nonce})
    resp = _post(client, query, envelope(enc, CORP_ID))
    assert resp.status_code == 403 and resp.data == b"bad signature"
    assert inbox_count(app) == 0


@pytest.mark.parametrize("missing", ["msg_signature", "timestamp", "nonce"])
def test_missing_parameter(client, app, app_crypto, missing) -> None:
    enc = app_crypto.encrypt(text_xml("u", "x", 1))
    params = {"msg_signature": enc.signature, "timestamp": enc.timestamp, "nonce": enc.nonce}
    del params[missing]
    resp = _post(client, urlencode(params), envelope(enc, CORP_ID))
    assert resp.status_code == 400 and resp.data == f"missing parameter: {missing}".encode()
    assert inbox_count(app) == 0


def test_missing_echostr(client, app_crypto) -> None:
    enc = app_crypto.encrypt("x")
    assert client.get(f"{APP_PATH}?{signed_query(enc)}").status_code == 400


def test_stale_timestamp_rejected_when_limit_set(app, client, app_crypto, clock) -> None:
    services_of(app).settings.callback_max_age = 300
    old = str(int(clock.now().timestamp()) - 301)
    resp = post_event(client, APP_PATH, app_crypto, text_xml("u", "x", 2), timestamp=old)
    assert resp.status_code == 403 and resp.data == b"stale timestamp"
    fresh = str(int(clock.now().timestamp()) - 10)
    assert (
        post_event(client, APP_PATH, app_crypto, text_xml("u", "x", 3), timestamp=fresh).status_code
        == 200
    )


def test_bad_base64(client, app, app_crypto) -> None:
    bogus = "@@@not-base64@@@"
    sig = __import__("wecom_app.wecom.crypto", fromlist=["signature"]).signature(
        app_crypto.token, "1700000000", "n1", bogus
    )
    query = urlencode({"msg_signature": sig, "timestamp": "1700000000", "nonce": "n1"})
    resp = _post(client, query, f"<xml><Encrypt>{bogus}</Encrypt></xml>")
    assert resp.status_code == 400 and resp.data == b"bad base64"
    assert inbox_count(app) == 0


def test_wrong_corp_id(client, app) -> None:
    from tests.conftest import APP_AES_KEY, APP_TOKEN

    foreign = CallbackCrypto(APP_TOKEN, APP_AES_KEY, "wwSOMEOTHERCORP")
    resp = post_event(client, APP_PATH, foreign, text_xml("u", "x", 4))
    assert resp.status_code == 403 and resp.data == b"wrong receiveid"
    assert inbox_count(app) == 0


HOSTILE = {
    "billion laughs": '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>',
    "external entity": '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>',
    "doctype": "<!DOCTYPE xml><xml><Encrypt>abc</Encrypt></xml>",
    "malformed": "<xml><Encrypt>abc</Encrypt>",
    "not xml": "hello",
    "wrong root": "<foo><Encrypt>abc</Encrypt></foo>",
    "no Encrypt": "<xml><ToUserName>x</ToUserName></xml>",
    "empty": "",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_or_malformed_envelope(client, app, name) -> None:
    query = urlencode({"msg_signature": "a" * 40, "timestamp": "1700000000", "nonce": "n"})
    resp = _post(client, query, HOSTILE[name])
    assert 400 <= resp.status_code < 500 and resp.data
    assert inbox_count(app) == 0


def test_hostile_xml_inside_valid_encryption(client, app, app_crypto) -> None:
    inner = '<!DOCTYPE x [<!ENTITY a "x">]><xml><MsgType>&a;</MsgType></xml>'
    resp = post_event(client, APP_PATH, app_crypto, inner)
    assert resp.status_code == 400 and resp.data.startswith(b"forbidden XML")
    assert inbox_count(app) == 0


@pytest.mark.parametrize(
    "inner",
    [
        "<xml><MsgType>text</MsgType><CreateTime>1</CreateTime></xml>",
        "<xml><MsgType>event</MsgType></xml>",
        "<xml></xml>",
    ],
)
def test_incomplete_message_rejected(client, app, app_crypto, inner) -> None:
    assert post_event(client, APP_PATH, app_crypto, inner).status_code == 400
    assert inbox_count(app) == 0


def test_oversized_body(client, app) -> None:
    query = urlencode({"msg_signature": "a" * 40, "timestamp": "1700000000", "nonce": "n"})
    resp = _post(client, query, b"<xml>" + b"A" * 300_000 + b"</xml>")
    assert resp.status_code == 413
    assert inbox_count(app) == 0


def test_body_shorter_than_its_content_length(client, app, app_crypto) -> None:
    enc = app_crypto.encrypt(text_xml("u", "x", 5))
    body = envelope(enc, CORP_ID).encode()
    resp = client.post(
        f"{APP_PATH}?{signed_query(enc)}",
        data=body,
        content_type="text/xml",
        environ_overrides={"CONTENT_LENGTH": str(len(body) + 10)},  # the sender stopped early
    )
    assert resp.status_code == 400 and resp.data == b"body shorter than Content-Length"
    assert inbox_count(app) == 0


def test_chunked_body_without_content_length_is_read_within_the_limit(client, app, app_crypto):
    enc = app_crypto.encrypt(text_xml("u", "x", 6))
    body = envelope(enc, CORP_ID).encode()
    resp = client.post(
        f"{APP_PATH}?{signed_query(enc)}",
        input_stream=io.BytesIO(body),
        content_type="text/xml",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert resp.status_code == 200 and inbox_count(app) == 1


def test_oversized_chunked_body(client, app) -> None:
    query = urlencode({"msg_signature": "a" * 40, "timestamp": "1700000000", "nonce": "n"})
    resp = client.post(
        f"{APP_PATH}?{query}",
        input_stream=io.BytesIO(b"<xml>" + b"A" * 300_000 + b"</xml>"),
        content_type="text/xml",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert resp.status_code == 413
    assert inbox_count(app) == 0


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_wrong_method(client, method) -> None:
    resp = getattr(client, method)(APP_PATH)
    assert resp.status_code == 405 and b"Traceback" not in resp.data


def test_contacts_channel_unconfigured_is_404(database_url, clock) -> None:
    from tests.conftest import base_settings
    from wecom_app import create_app
    from wecom_app.app import composition_of
    from wecom_app.settings import load_settings

    settings = load_settings(
        **base_settings(database_url=database_url, contacts_token=None, contacts_aes_key=None)
    )
    app = create_app(settings, clock=clock)
    resp = app.test_client().get(f"{CONTACTS_PATH}?msg_signature=a&timestamp=1&nonce=n&echostr=e")
    assert resp.status_code == 404
    composition_of(app).close()
