"""App group chats (appchat): create, update, get and send, with WeCom's rules and limits."""

from __future__ import annotations

import re
import secrets
from typing import Any

from wecom_app.simulator.limits import DAY, HOUR, MINUTE
from wecom_app.simulator.state import SimError, SimState

CHATID = re.compile(r"^[0-9a-zA-Z]{1,32}$")
MAX_NAME_CHARS = 50
SENDABLE = ("text", "markdown", "textcard", "news", "file", "image", "voice", "video", "mpnews")


def _check_visibility(state: SimState) -> None:
    if not state.config.visibility_root:
        raise SimError(48002, "api forbidden: app visibility must be the root department")


def _count_change(state: SimState, creating: bool) -> None:
    limits, now = state.config.limits, state.now()
    per_day = [(DAY, limits.appchat_creates_per_day)]
    if creating and state.windows.count("appchat:create", now, DAY) >= per_day[0][1]:
        raise SimError(45009, "api freq out of limit: appchat create per day")
    if not state.windows.allow("appchat:change", now, [(HOUR, limits.appchat_changes_per_hour)]):
        raise SimError(45009, "api freq out of limit: appchat change per hour")
    if creating:
        state.windows.allow("appchat:create", now, per_day)


def _check_name(name: Any) -> str:
    text = str(name or "")
    if len(text) > MAX_NAME_CHARS:
        raise SimError(86004, "invalid chat name")
    return text


def _check_users(state: SimState, userids: list[str]) -> None:
    for userid in userids:
        member = state.org.members.get(userid)
        if member is None:
            raise SimError(60111, f"userid not found: {userid}")
        if not member.is_reachable():
            raise SimError(86007, f"invalid chat member: {userid}")


def _chat(state: SimState, chatid: Any) -> dict[str, Any]:
    chat = state.chats.get(str(chatid or ""))
    if chat is None or chat.get("foreign"):
        raise SimError(86003, "chatid not found")
    return chat


def _check_size(state: SimState, userlist: list[str]) -> None:
    limits = state.config.limits
    if not limits.appchat_min_members <= len(userlist) <= limits.appchat_max_members:
        raise SimError(86006, "chat member count out of range")


def _new_chatid(state: SimState, requested: Any) -> str:
    if requested in (None, ""):
        return "wr" + secrets.token_hex(15)
    chatid = str(requested)
    if not CHATID.match(chatid):
        raise SimError(86001, "invalid chatid")
    if chatid in state.chats:
        raise SimError(86215, "chatid already exists")
    return chatid


def appchat_create(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `appchat/create`: validate name, owner, members and chatid, then make the chat."""
    body = body or {}
    _check_visibility(state)
    name = _check_name(body.get("name"))
    userlist = list(dict.fromkeys(body.get("userlist") or []))
    _check_size(state, userlist)
    _check_users(state, userlist)
    owner = str(body.get("owner") or userlist[0])
    if owner not in userlist:
        raise SimError(86207, "chat owner not in userlist")
    chatid = _new_chatid(state, body.get("chatid"))
    _count_change(state, creating=True)
    state.chats[chatid] = {
        "chatid": chatid,
        "name": name,
        "owner": owner,
        "userlist": userlist,
        "messages": [],
        "changes": [],
    }
    return {"chatid": chatid}


def appchat_update(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `appchat/update`: rename, change owner, add and remove members."""
    body = body or {}
    _check_visibility(state)
    chat = _chat(state, body.get("chatid"))
    adds = [u for u in body.get("add_user_list") or [] if u not in chat["userlist"]]
    # Removing people who already left the directory must work, so only adds are checked.
    _check_users(state, adds)
    dels = set(body.get("del_user_list") or [])
    old_members = set(chat["userlist"])
    strangers = sorted(dels - old_members)
    if strangers and state.config.strict_removals:
        # WECOM.md §6: the whole call fails, additions and owner change included.
        raise SimError(86216, f"user not in chat: {strangers[0]}")
    userlist = [u for u in chat["userlist"] if u not in dels] + adds
    if len(userlist) > state.config.limits.appchat_max_members:
        raise SimError(86006, "chat member count out of range")
    owner = str(body.get("owner") or chat["owner"])
    if body.get("owner") and owner not in userlist:
        raise SimError(86005, "invalid chat owner")
    name = _check_name(body["name"]) if "name" in body else chat["name"]
    _count_change(state, creating=False)
    chat.update(name=name, owner=owner, userlist=userlist)
    chat["changes"].append(
        {
            "at": state.now().isoformat(),
            "added": adds,
            "removed": sorted(dels & old_members),
            "name": name,
            "owner": owner,
        }
    )
    return {}


def appchat_get(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `appchat/get`: chat_info of a chat this app created."""
    _check_visibility(state)
    chat = _chat(state, args.get("chatid"))
    return {"chat_info": {k: chat[k] for k in ("chatid", "name", "owner", "userlist")}}


def appchat_send(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `appchat/send`: post a message into a chat (no template cards in groups)."""
    body = body or {}
    _check_visibility(state)
    chat = _chat(state, body.get("chatid"))
    msgtype = str(body.get("msgtype") or "")
    if msgtype not in SENDABLE:
        raise SimError(40008, "invalid message type")
    content = body.get(msgtype)
    if msgtype in ("text", "markdown") and not (content or {}).get("content"):
        raise SimError(44004, "empty content")
    delivered, dropped = _group_recipients(state, chat["userlist"])
    msgid = state.new_msgid()
    chat["messages"].append(
        {
            "msgid": msgid,
            "msgtype": msgtype,
            "content": content,
            "sent_at": state.now().isoformat(),
            "recipients": delivered,
            "dropped": dropped,
        }
    )
    return {"msgid": msgid}


def _group_recipients(state: SimState, userlist: list[str]) -> tuple[list[str], list[str]]:
    # One member gets at most 200 app group messages a minute; WeCom drops the rest silently.
    rule = [(MINUTE, state.config.limits.appchat_member_per_minute)]
    delivered: list[str] = []
    dropped: list[str] = []
    for userid in userlist:
        allowed = state.windows.allow(f"appchat-member:{userid}", state.now(), rule)
        (delivered if allowed else dropped).append(userid)
    return delivered, dropped


def add_foreign_chat(state: SimState, chatid: str, name: str, userlist: list[str]) -> None:
    """Add a group chat a person created in the client; this app can neither read nor change it."""
    state.chats[chatid] = {
        "chatid": chatid,
        "name": name,
        "owner": userlist[0] if userlist else "",
        "userlist": list(userlist),
        "messages": [],
        "changes": [],
        "foreign": True,
    }


def member_invites(state: SimState, chatid: str, by: str, userids: list[str]) -> list[str]:
    """A member adds people to an app group chat in the client (WeCom tells the app nothing:
    no callback exists for chat changes); return who was added."""
    chat = _chat(state, chatid)
    if by not in chat["userlist"]:
        raise SimError(86007, f"{by} is not a member of the chat")
    adds = [u for u in userids if u not in chat["userlist"] and u in state.org.members]
    chat["userlist"] = chat["userlist"] + adds
    chat["changes"].append({"at": state.now().isoformat(), "added": adds, "removed": [],
                            "name": chat["name"], "owner": chat["owner"], "by": by})  # fmt: skip
    return adds
