"""Outbox performers: how each kind of queued write is sent through the WeCom client."""

from __future__ import annotations

from typing import Any

from wecom_app.outbox import performer
from wecom_app.wecom.client import WeComClient


@performer("message_send")
def send_message(client: WeComClient, payload: dict[str, Any]) -> dict[str, Any]:
    """Send one message (text, markdown, template card) to up to 1000 members."""
    result = client.message_send(
        payload["msg"],
        touser=payload.get("touser", []),
        toparty=payload.get("toparty", []),
        totag=payload.get("totag", []),
        duplicate_check_interval=payload.get("duplicate_check_interval"),
    )
    return {
        "invaliduser": list(result.invalid_users),
        "unlicenseduser": list(result.unlicensed_users),
        "invalidparty": [str(p) for p in result.invalid_parties],
        "invalidtag": [str(t) for t in result.invalid_tags],
        "msgid": result.msgid,
        "response_code": result.response_code,
    }


@performer("appchat_update")
def update_appchat(client: WeComClient, payload: dict[str, Any]) -> dict[str, Any]:
    """Change a group's members, owner or name."""
    client.appchat_update(
        payload["chatid"],
        name=payload.get("name"),
        owner=payload.get("owner"),
        add_user_list=payload.get("add_user_list", []),
        del_user_list=payload.get("del_user_list", []),
    )
    return {}


@performer("appchat_send")
def send_to_appchat(client: WeComClient, payload: dict[str, Any]) -> dict[str, Any]:
    """Post a message into a group the app created."""
    client.appchat_send(payload["chatid"], payload["msg"])
    return {}


@performer("update_template_card")
def update_card(client: WeComClient, payload: dict[str, Any]) -> dict[str, Any]:
    """Change a clicked card's button (single-use response code)."""
    client.update_template_card(
        payload["userids"],
        payload["response_code"],
        replace_name=payload.get("replace_name"),
        card=payload.get("card"),
    )
    return {}


@performer("user_update")
def update_user(client: WeComClient, payload: dict[str, Any]) -> dict[str, Any]:
    """Write member fields (e.g. alias) through the contacts secret."""
    fields = dict(payload)
    userid = fields.pop("userid")
    client.user_update(userid, **fields)
    return {}
