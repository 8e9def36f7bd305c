"""Small builders shared by tests: WeCom-shaped XML and encrypted requests."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from wecom_app.clock import FakeClock
from wecom_app.wecom.crypto import CallbackCrypto, Encrypted


def xml_message(fields: dict[str, Any], cdata: bool = True) -> str:
    """Render a flat WeCom message; strings in CDATA like WeCom sends them."""
    parts = []
    for key, value in fields.items():
        text = str(value)
        wrapped = f"<![CDATA[{text}]]>" if cdata and not isinstance(value, int) else text
        parts.append(f"<{key}>{wrapped}</{key}>")
    return "<xml>" + "".join(parts) + "</xml>"


def envelope(enc: Encrypted, to_user: str, agent_id: str | None = "1000002") -> str:
    """The POST body WeCom sends around an encrypted message."""
    agent = f"<AgentID><![CDATA[{agent_id}]]></AgentID>" if agent_id else ""
    return f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName>{agent}<Encrypt><![CDATA[{enc.encrypt}]]></Encrypt></xml>"


def signed_query(enc: Encrypted, **extra: str) -> str:
    """The query string that travels with an encrypted message."""
    return urlencode(
        {"msg_signature": enc.signature, "timestamp": enc.timestamp, "nonce": enc.nonce, **extra}
    )


def post_event(client: Any, path: str, crypto: CallbackCrypto, xml: str, **enc_kwargs: Any) -> Any:
    """Encrypt a message as WeCom would and POST it to a callback path."""
    enc = crypto.encrypt(xml, **enc_kwargs)
    body = envelope(enc, crypto.receive_id)
    return client.post(f"{path}?{signed_query(enc)}", data=body, content_type="text/xml")


def text_xml(user: str, content: str, msg_id: int, create_time: int = 1700000000) -> str:
    """A text message to the app."""
    return xml_message(
        {
            "ToUserName": "ww5823bf96d3bd56c7",
            "FromUserName": user,
            "CreateTime": create_time,
            "MsgType": "text",
            "Content": content,
            "MsgId": msg_id,
            "AgentID": 1000002,
        }
    )


def inbox_values(key: str, **extra: object) -> dict[str, object]:
    """Column values of one app-channel inbox row with the given dedupe key."""
    return {
        "channel": "app",
        "dedupe_key": key,
        "msg_type": "text",
        "from_user": "zhangsan",
        "create_time": 1700000000,
        "raw_xml": "<xml/>",
        "received_at": FakeClock().now(),
        "status": "pending",
        "attempts": 0,
        **extra,
    }
