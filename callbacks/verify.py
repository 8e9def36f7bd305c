"""Turn a raw callback request into a decrypted message, or refuse it with CallbackRejected.

Steps, each small: required query parameters, timestamp age, envelope parsing, signature,
decryption. The Flask view only adapts the HTTP request to `CallbackRequest`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callbacks.xmlparse import parse_xml
from wecom_app.errors import CallbackRejected
from wecom_app.wecom.crypto import CallbackCrypto


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """The parts of an HTTP callback request the protocol cares about."""

    method: str
    query: dict[str, str]
    body: bytes


def require(query: dict[str, str], *names: str) -> list[str]:
    """Return the named query parameters, or refuse naming the first one missing."""
    values = []
    for name in names:
        value = query.get(name, "")
        if not value:
            raise CallbackRejected(f"missing parameter: {name}")
        values.append(value)
    return values


def check_timestamp(timestamp: str, now: float, max_age: int) -> None:
    """Refuse a non-numeric timestamp, and one too far from now when max_age > 0."""
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise CallbackRejected("bad timestamp")
    if max_age and abs(now - int(timestamp)) > max_age:
        raise CallbackRejected("stale timestamp", 403)


def verify_url(crypto: CallbackCrypto, req: CallbackRequest, now: float, max_age: int) -> str:
    """Check a GET URL-verification request and return the decrypted echostr."""
    signature, timestamp, nonce, echostr = require(
        req.query, "msg_signature", "timestamp", "nonce", "echostr"
    )
    check_timestamp(timestamp, now, max_age)
    # Base64 has no spaces: a space here is a '+' that a proxy failed to keep URL-encoded.
    echostr = echostr.replace(" ", "+")
    crypto.verify(signature, timestamp, nonce, echostr)
    return crypto.decrypt(echostr)


def open_message(
    crypto: CallbackCrypto, req: CallbackRequest, now: float, max_age: int
) -> tuple[str, dict[str, Any]]:
    """Check and decrypt a POSTed event; return its XML text and parsed fields."""
    signature, timestamp, nonce = require(req.query, "msg_signature", "timestamp", "nonce")
    check_timestamp(timestamp, now, max_age)
    if not req.body:
        raise CallbackRejected("empty body")
    envelope = parse_xml(req.body)
    encrypt = envelope.get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt:
        raise CallbackRejected("missing Encrypt element")
    crypto.verify(signature, timestamp, nonce, encrypt)
    plaintext = crypto.decrypt(encrypt)
    return plaintext, parse_xml(plaintext.encode("utf-8"))
