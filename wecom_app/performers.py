"""The kinds of WeCom write the outbox performs, and what may be repeated after a lost answer.

Repeating a write whose answer was lost is safe only where WeCom deduplicates it or the write
is idempotent (WECOM.md §5, §6):

- a template card carries a task_id that WeCom never accepts twice (42014): after a lost answer,
  42014 means the first send landed;
- a group created with our chatid answers 86215 the second time: the chat exists, adopt it;
- member changes, renames, owner changes and alias writes set a state: repeating them changes
  nothing; a removal of someone already gone answers 86216, handled below;
- a card button update uses a single-use response_code: after a lost answer, "code used" means
  the first update landed.

Texts into a group and plain text messages have nothing WeCom deduplicates by (its duplicate
check is undocumented, WECOM.md §5): they are never repeated.
"""

from __future__ import annotations

import logging
from typing import Any

from wecom_app.errors import WeComError
from wecom_app.outbox import Attempt, Kind, OutboxKinds, always, never
from wecom_app.wecom.api import WeComApi

log = logging.getLogger(__name__)

TASK_ID_TAKEN = 42014
CHAT_EXISTS = 86215
NOT_A_MEMBER = 86216
# The simulator's answers to a spent or expired response_code (WeCom documents none).
RESPONSE_CODE_SPENT = frozenset({42022, 40029})


def is_card(payload: dict[str, Any]) -> bool:
    """Whether a message_send payload is a template card with its own task_id."""
    card = payload.get("msg", {}).get("template_card")
    return isinstance(card, dict) and bool(card.get("task_id"))


def send_message(client: WeComApi, payload: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
    """Send one message (text, markdown, template card) to up to 1000 members."""
    try:
        result = client.message_send(
            payload["msg"],
            touser=payload.get("touser", []),
            toparty=payload.get("toparty", []),
            totag=payload.get("totag", []),
            duplicate_check_interval=payload.get("duplicate_check_interval"),
        )
    except WeComError as exc:
        if exc.errcode == TASK_ID_TAKEN and attempt.after_no_answer and is_card(payload):
            log.info("card task id already used: the unanswered earlier send was delivered")
            return {"delivered_earlier": True, "invaliduser": [], "unlicenseduser": []}
        raise
    return {
        "invaliduser": list(result.invalid_users),
        "unlicenseduser": list(result.unlicensed_users),
        "invalidparty": [str(p) for p in result.invalid_parties],
        "invalidtag": [str(t) for t in result.invalid_tags],
        "msgid": result.msgid,
        "response_code": result.response_code,
    }


def update_appchat(client: WeComApi, payload: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
    """Change a group's members, owner or name; drop removals of people no longer in it.

    86216 fails the whole call when one removed member is not in the chat (adds and owner change
    included), so the chat is read and the call repeated without those members.
    """
    removals = list(payload.get("del_user_list", []))
    try:
        _update(client, payload, removals)
        return {}
    except WeComError as exc:
        if exc.errcode != NOT_A_MEMBER or not removals:
            raise
    members = set(client.appchat_get(payload["chatid"]).userlist)
    stale = [u for u in removals if u not in members]
    left = [u for u in removals if u in members]
    if payload.get("add_user_list") or payload.get("owner") or payload.get("name") or left:
        _update(client, payload, left)
    return {"not_in_chat": stale}


def _update(client: WeComApi, payload: dict[str, Any], removals: list[str]) -> None:
    client.appchat_update(
        payload["chatid"],
        name=payload.get("name"),
        owner=payload.get("owner"),
        add_user_list=payload.get("add_user_list", []),
        del_user_list=removals,
    )


def create_appchat(client: WeComApi, payload: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
    """Create a group with our chatid; one that exists already (86215) is read and adopted."""
    chatid = payload["chatid"]
    try:
        client.appchat_create(payload["name"], payload["owner"], payload["userlist"], chatid)
        members = list(payload["userlist"])
        return {"chatid": chatid, "owner": payload["owner"], "userlist": members}
    except WeComError as exc:
        if exc.errcode != CHAT_EXISTS:
            raise
    chat = client.appchat_get(chatid)
    log.info("group %s exists already (86215): adopted as WeCom has it", chatid)
    return {"chatid": chatid, "owner": chat.owner, "name": chat.name,
            "userlist": list(chat.userlist), "adopted": True}  # fmt: skip


def send_to_appchat(client: WeComApi, payload: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
    """Post a message into a group the app created."""
    client.appchat_send(payload["chatid"], payload["msg"])
    return {}


def update_card(client: WeComApi, payload: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
    """Change a clicked card's button (single-use response code)."""
    try:
        client.update_template_card(
            payload["userids"],
            payload["response_code"],
            replace_name=payload.get("replace_name"),
            card=payload.get("card"),
        )
    except WeComError as exc:
        if exc.errcode in RESPONSE_CODE_SPENT and attempt.after_no_answer:
            return {"updated_earlier": True}
        raise
    return {}


def update_user(client: WeComApi, payload: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
    """Write member fields (e.g. alias) through the contacts secret."""
    fields = dict(payload)
    userid = fields.pop("userid")
    client.user_update(userid, **fields)
    return {}


def register(kinds: OutboxKinds) -> None:
    """Add every kind of WeCom write to the outbox's table."""
    kinds.add_kind(Kind("message_send", send_message, repeatable=is_card))
    kinds.add_kind(Kind("appchat_update", update_appchat, repeatable=always))
    kinds.add_kind(Kind("appchat_create", create_appchat, repeatable=always))
    kinds.add_kind(Kind("appchat_send", send_to_appchat, repeatable=never))
    kinds.add_kind(Kind("update_template_card", update_card, repeatable=always))
    kinds.add_kind(Kind("user_update", update_user, credential="contacts", repeatable=always))
