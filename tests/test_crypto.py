"""Callback crypto: WeCom's official sample vectors, round trips, and every malformed input."""

from __future__ import annotations

import base64
import os
import random
import string

import pytest

from callbacks.xmlparse import parse_xml
from wecom_app.errors import CallbackRejected
from wecom_app.wecom.crypto import CallbackCrypto, decode_aes_key, signature

# WeCom's WXBizMsgCrypt sample (token QDG6eK, CorpID wx5823bf96d3bd56c7).
SAMPLE = CallbackCrypto(
    "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"
)
SAMPLE_ECHOSTR = (
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
)
SAMPLE_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Qczc"
    "dCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLj"
    "vd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMn"
    "vw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k"
    "22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2Yoy"
    "yH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)


def test_official_url_verification_vector() -> None:
    SAMPLE.verify(
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780", SAMPLE_ECHOSTR
    )
    assert SAMPLE.decrypt(SAMPLE_ECHOSTR) == "1616140317555161061"


def test_official_message_vector_decrypts_to_hello() -> None:
    SAMPLE.verify(
        "477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149", SAMPLE_ENCRYPT
    )
    fields = parse_xml(SAMPLE.decrypt(SAMPLE_ENCRYPT))
    assert fields["Content"] == "hello"
    assert fields["FromUserName"] == "mycreate"
    assert fields["MsgId"] == "4561255354251345929"


def test_official_vector_uses_32_byte_padding() -> None:
    # The sample's last block pads with 30 bytes: a 16-byte unpadder would reject it.
    from wechatpy.crypto.base import WeChatCipher

    plain = WeChatCipher(SAMPLE.key).decrypt(base64.b64decode(SAMPLE_ENCRYPT))
    assert plain[-1] > 16


@pytest.mark.parametrize("seed", range(25))
def test_round_trip_random_payloads(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + "收到已离职财务部张三😀<>&\"' \n"
    text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 3000)))
    enc = SAMPLE.encrypt(text)
    SAMPLE.verify(enc.signature, enc.timestamp, enc.nonce, enc.encrypt)
    assert SAMPLE.decrypt(enc.encrypt) == text


def test_signature_is_sorted_sha1() -> None:
    assert signature("b", "a", "d", "c") == signature("a", "b", "c", "d")


@pytest.mark.parametrize("bad", ["abc", "x" * 44, "!" * 43])
def test_aes_key_shape(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_aes_key(bad)


def test_wrong_signature_rejected() -> None:
    with pytest.raises(CallbackRejected) as exc:
        SAMPLE.verify("0" * 40, "1409659589", "263014780", SAMPLE_ECHOSTR)
    assert exc.value.status == 403


def test_wrong_receive_id_rejected() -> None:
    other = CallbackCrypto("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wwOTHERCORP")
    with pytest.raises(CallbackRejected, match="receiveid"):
        SAMPLE.decrypt(other.encrypt("hi").encrypt)


@pytest.mark.parametrize(
    ("ciphertext", "reason"),
    [
        ("not base64 ***", "base64"),
        (base64.b64encode(b"short").decode(), "length"),
    ],
)
def test_malformed_ciphertext_rejected(ciphertext: str, reason: str) -> None:
    with pytest.raises(CallbackRejected, match=reason):
        SAMPLE.decrypt(ciphertext)


@pytest.mark.parametrize("tail", [b"\x00", b"\x21", b"\x05\x05\x04\x05\x05"])
def test_bad_padding_rejected(tail: bytes) -> None:
    from wechatpy.crypto.base import WeChatCipher

    plain = b"A" * (64 - len(tail)) + tail
    raw = WeChatCipher(SAMPLE.key).encrypt(plain)
    with pytest.raises(CallbackRejected, match="padding"):
        SAMPLE.decrypt(base64.b64encode(raw).decode())


def test_length_field_past_the_end_rejected() -> None:
    from wechatpy.crypto.base import WeChatCipher
    from wechatpy.crypto.pkcs7 import PKCS7Encoder

    plain = os.urandom(16) + (10_000).to_bytes(4, "big") + b"<xml/>wx5823bf96d3bd56c7"
    raw = WeChatCipher(SAMPLE.key).encrypt(PKCS7Encoder.encode(plain))
    with pytest.raises(CallbackRejected, match="length"):
        SAMPLE.decrypt(base64.b64encode(raw).decode())
