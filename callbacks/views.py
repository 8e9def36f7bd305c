"""Flask adapter for both callback channels: request → verify/decrypt → inbox → 200.

Slow work never runs here: handlers run from the inbox in the worker, so WeCom gets its empty
200 within milliseconds, and only after the event is committed. When the database fails (down,
slow, locked) the answer is a 503 within WeCom's 5 s, the event is kept in the disk spool, and
one log line per half minute says so.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request

from callbacks.events import APP, CONTACTS, parse_event
from callbacks.inbox import Inbox
from callbacks.verify import CallbackRequest, open_message, verify_url
from wecom_app.clock import Clock
from wecom_app.errors import CallbackRejected, DatabaseUnavailable
from wecom_app.settings import Settings
from wecom_app.throttled_log import ThrottledLog
from wecom_app.wecom.crypto import CallbackCrypto

log = logging.getLogger(__name__)

PATHS = {APP: "/wecom/callback", CONTACTS: "/wecom/contacts/callback"}


def channel_cryptos(settings: Settings) -> dict[str, CallbackCrypto]:
    """One CallbackCrypto per configured channel, each with its own token and key."""
    cryptos = {
        APP: CallbackCrypto(
            settings.secret("callback_token"), settings.secret("callback_aes_key"), settings.corp_id
        )
    }
    if settings.contacts_channel_configured:
        cryptos[CONTACTS] = CallbackCrypto(
            settings.secret("contacts_token"), settings.secret("contacts_aes_key"), settings.corp_id
        )
    return cryptos


def callbacks_blueprint(settings: Settings, inbox: Inbox, clock: Clock) -> Blueprint:
    """Build the blueprint serving both channels' GET verification and POST events."""
    bp = Blueprint("callbacks", __name__)
    cryptos = channel_cryptos(settings)
    outage = ThrottledLog(log)

    def make_view(channel: str):
        def view() -> Response:
            crypto = cryptos.get(channel)
            if crypto is None:
                return _reject(channel, CallbackRejected("channel not configured", 404))
            try:
                return _serve(channel, crypto, settings.callback_max_age, inbox, clock)
            except CallbackRejected as exc:
                return _reject(channel, exc)
            except DatabaseUnavailable as exc:
                outage.warning(
                    "inbox", "inbox unavailable, callback kept in the spool, answered 503: %s",
                    exc.reason,
                )  # fmt: skip
                return Response("inbox unavailable", 503, content_type="text/plain")
            except OSError as exc:  # the spool failed too: WeCom may still retry
                outage.warning("spool", "inbox and spool both unavailable: %s", exc)
                return Response("inbox unavailable", 503, content_type="text/plain")

        view.__name__ = f"{channel}_callback"
        return view

    for channel, path in PATHS.items():
        bp.add_url_rule(path, view_func=make_view(channel), methods=["GET", "POST"])
    return bp


def _serve(
    channel: str, crypto: CallbackCrypto, max_age: int, inbox: Inbox, clock: Clock
) -> Response:
    """Answer one verified request on a channel."""
    now = clock.now()
    if request.method == "GET":
        req = CallbackRequest("GET", request.args.to_dict(), b"")
        echo = verify_url(crypto, req, now.timestamp(), max_age)
        log.info("callback url verified channel=%s", channel)
        return Response(echo, 200, content_type="text/plain; charset=utf-8")
    # Announced from the start: a concurrent inbox write may wait a moment for this event and
    # commit both together.
    with inbox.incoming() as announcement:
        req = CallbackRequest("POST", request.args.to_dict(), _read_body())
        plaintext, fields = open_message(crypto, req, now.timestamp(), max_age)
        event = parse_event(channel, fields)
        new = inbox.store(event, plaintext, now, announcement)
    log.info(
        "callback %s channel=%s route=%s key=%s",
        "stored" if new else "duplicate",
        channel,
        event.route,
        event.dedupe_key,
    )
    return Response("", 200)


def _read_body() -> bytes:
    """Read the body within the size limit, before any parsing, straight from the server.

    werkzeug's wrapper around the stream cost as much as decrypting the message (measured), and
    on a chunked body it cut at the limit instead of refusing.
    """
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    stream = request.environ["wsgi.input"]
    length = request.content_length
    if length is None:  # chunked: read to its end, one byte past the limit at most
        if not request.environ.get("wsgi.input_terminated"):
            return b""  # no length and no end marker: WSGI says there is nothing to read
        body: bytes = stream.read(limit + 1)
        if len(body) > limit:
            raise CallbackRejected("body too large", 413)
        return body
    if length > limit:
        raise CallbackRejected("body too large", 413)
    body = stream.read(length)
    if len(body) < length:
        raise CallbackRejected("body shorter than Content-Length")
    return body


def _reject(channel: str, exc: CallbackRejected) -> Response:
    """Log and answer a refused request with its short reason."""
    log.warning(
        "callback rejected channel=%s status=%s reason=%s remote=%s",
        channel,
        exc.status,
        exc.reason,
        request.remote_addr,
    )
    return Response(exc.reason, exc.status, content_type="text/plain; charset=utf-8")
