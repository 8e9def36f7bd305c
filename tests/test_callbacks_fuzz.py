"""No input produces a 500: seeded random garbage at both channels, and mangled valid requests."""

from __future__ import annotations

import random
from urllib.parse import quote, urlencode

import pytest
from sqlalchemy import func, select

from tests.helpers import envelope, signed_query, text_xml
from wecom_app.models import InboxEvent
from wecom_app.web.context import services as services_of

PATHS = ["/wecom/callback", "/wecom/contacts/callback"]
FRAGMENTS = [
    b"<xml>",
    b"</xml>",
    b"<Encrypt>",
    b"</Encrypt>",
    b"<![CDATA[",
    b"]]>",
    b"&amp;",
    b"<!DOCTYPE",
    b"<!ENTITY",
    b"\x00",
    b"\xff\xfe",
    "收到".encode(),
    b"=",
    b"+/",
]


def _garbage(rng: random.Random) -> bytes:
    parts = [
        rng.choice(FRAGMENTS) if rng.random() < 0.6 else rng.randbytes(rng.randrange(0, 40))
        for _ in range(rng.randrange(0, 12))
    ]
    return b"".join(parts)


@pytest.mark.parametrize("seed", range(4))
def test_random_requests_never_500(client, app, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        params = {
            k: quote(rng.randbytes(rng.randrange(0, 12)).hex())
            for k in rng.sample(
                ["msg_signature", "timestamp", "nonce", "echostr"], rng.randrange(0, 5)
            )
        }
        path = f"{rng.choice(PATHS)}?{urlencode(params)}"
        method = rng.choice(["get", "post", "post", "put"])
        resp = getattr(client, method)(path, data=_garbage(rng), content_type="text/xml")
        assert resp.status_code < 500, (method, path, resp.status_code, resp.data)
    with services_of(app).db.begin() as s:
        assert s.scalar(select(func.count()).select_from(InboxEvent)) == 0


def test_mangled_valid_requests_never_500(client, app, app_crypto) -> None:
    rng = random.Random(7)
    for i in range(200):
        enc = app_crypto.encrypt(text_xml("u", "x", 10_000 + i))
        body = bytearray(envelope(enc, app_crypto.receive_id).encode())
        for _ in range(rng.randrange(1, 4)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        resp = client.post(
            f"/wecom/callback?{signed_query(enc)}", data=bytes(body), content_type="text/xml"
        )
        assert resp.status_code in (200, 400, 403), resp.data


def test_unencoded_plus_in_echostr_still_verifies(client, app_crypto) -> None:
    for _ in range(20):  # enough tries that some ciphertexts contain '+'
        enc = app_crypto.encrypt("echo-123")
        if "+" in enc.encrypt:
            break
    raw = f"msg_signature={enc.signature}&timestamp={enc.timestamp}&nonce={enc.nonce}&echostr={enc.encrypt}"
    resp = client.get(f"/wecom/callback?{raw}")
    assert resp.status_code == 200 and resp.data == b"echo-123"
