"""`message/send` and `message/update_template_card`, with WeCom's checks and silent limits."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from wecom_app.simulator.state import SimError, SimState

TASK_ID = re.compile(r"^[0-9a-zA-Z_\-@]+$")
MAX_TASK_ID_BYTES = 128
MAX_KEY_BYTES = 1024
MAX_BUTTONS = 6
# WeCom's docs list no dedicated errcode for a consumed or expired response_code; these are the
# generic "code already used" / "invalid or expired code" answers.
RESPONSE_CODE_USED = 42022
RESPONSE_CODE_INVALID = 40029
CALLBACK_CARDS = ("button_interaction", "vote_interaction", "multiple_interaction")


def _split(value: Any, limit: int, errcode: int, what: str) -> list[str]:
    items = [p for p in str(value or "").split("|") if p]
    if len(items) > limit:
        raise SimError(errcode, f"too many {what}")
    return items


def _require(value: Any, errcode: int, errmsg: str) -> None:
    if not value:
        raise SimError(errcode, errmsg)


def check_template_card(state: SimState, card: dict[str, Any]) -> str:
    """Validate a template card and return its task_id (empty when it has none)."""
    card_type = card.get("card_type")
    _require(card_type, 40058, "missing card_type")
    task_id = str(card.get("task_id") or "")
    if card_type in CALLBACK_CARDS or task_id:
        ok = TASK_ID.match(task_id) and len(task_id.encode()) <= MAX_TASK_ID_BYTES
        if not ok or task_id in state.task_ids:
            raise SimError(42014, "taskid has existed or empty or exceed max len")
    if card_type == "vote_interaction":
        _check_vote(card)
    elif card_type == "multiple_interaction":
        _check_selects(card)
    buttons = card.get("button_list") or []
    if len(buttons) > MAX_BUTTONS or len(card.get("horizontal_content_list") or []) > 6:
        raise SimError(40058, "button_list or horizontal_content_list exceed max size")
    for button in buttons:
        if int(button.get("type", 0)) == 0:
            key = str(button.get("key") or "")
            if not key or len(key.encode()) > MAX_KEY_BYTES:
                raise SimError(42018, "invalid button key")
            if state.config.app_callback is None:
                raise SimError(43012, "app need callback url")
    return task_id


def _check_vote(card: dict[str, Any]) -> None:
    """vote_interaction: a checkbox of 1-20 options (mode 0 single, 1 multiple) and a submit
    button with a key."""
    box = card.get("checkbox")
    if not isinstance(box, dict) or not box.get("question_key"):
        raise SimError(40058, "vote_interaction needs checkbox.question_key")
    options = box.get("option_list") or []
    if not 1 <= len(options) <= 20 or not all(o.get("id") and o.get("text") for o in options):
        raise SimError(40058, "checkbox.option_list must hold 1-20 options with id and text")
    if int(box.get("mode", 0)) not in (0, 1):
        raise SimError(40058, "checkbox.mode must be 0 or 1")
    _check_submit(card)


def _check_selects(card: dict[str, Any]) -> None:
    """multiple_interaction: 1-3 selects of 1-10 options each, and a submit button."""
    selects = card.get("select_list") or []
    if not 1 <= len(selects) <= 3:
        raise SimError(40058, "select_list must hold 1-3 questions")
    for select in selects:
        options = select.get("option_list") or []
        if not select.get("question_key") or not 1 <= len(options) <= 10:
            raise SimError(40058, "each select needs question_key and 1-10 options")
    _check_submit(card)


def _check_submit(card: dict[str, Any]) -> None:
    button = card.get("submit_button")
    key = str((button or {}).get("key") or "")
    if not isinstance(button, dict) or not button.get("text") or not key:
        raise SimError(40058, "submit_button needs text and key")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise SimError(42018, "invalid button key")


def _check_content(state: SimState, body: dict[str, Any]) -> tuple[str, str]:
    msgtype = str(body.get("msgtype") or "")
    payload = body.get(msgtype)
    if msgtype in ("text", "markdown"):
        _require(payload and payload.get("content"), 44004, "empty content")
    elif msgtype == "textcard":
        _require(payload and payload.get("title") and payload.get("url"), 40058, "bad textcard")
    elif msgtype == "template_card":
        if not isinstance(payload, dict):
            raise SimError(40058, "missing template_card")
        return msgtype, check_template_card(state, payload)
    elif msgtype not in ("news", "file", "image"):
        raise SimError(40008, "invalid message type")
    return msgtype, ""


def _reachable(state: SimState, userids: Iterable[str]) -> list[str]:
    members = state.org.members
    return [u for u in userids if u in members and members[u].is_reachable()]


def _resolve(state: SimState, body: dict[str, Any]) -> tuple[set[str], dict[str, list[str]]]:
    limits, org = state.config.limits, state.org
    users = _split(body.get("touser"), limits.max_touser, 40031, "users")
    parties = _split(body.get("toparty"), limits.max_toparty, 82002, "parties")
    tags = _split(body.get("totag"), limits.max_totag, 82003, "tags")
    if not (users or parties or tags):
        raise SimError(82001, "touser, toparty and totag are all empty")
    invalid: dict[str, list[str]] = {"user": [], "party": [], "tag": []}
    targets: set[str] = set()
    for userid in users:
        if userid == "@all":
            targets.update(u for u, m in org.members.items() if m.is_reachable())
        elif (member := org.member(userid)) is not None and member.is_reachable():
            targets.add(member.userid)
        else:
            invalid["user"].append(userid.lower())  # WeCom answers invalid userids lower-cased
    for party in parties:
        if party.isdigit() and int(party) in org.departments:
            targets.update(
                u for u in org.member_ids_under(int(party)) if org.members[u].is_reachable()
            )
        else:
            invalid["party"].append(party)
    for tag_id in tags:
        tag = org.tags.get(int(tag_id)) if tag_id.isdigit() else None
        if tag is None:
            invalid["tag"].append(tag_id)
            continue
        targets.update(_reachable(state, tag.userlist))
        for dept_id in tag.partylist:
            targets.update(_reachable(state, org.member_ids_under(dept_id)))
    return targets, invalid


def _duplicate_key(body: dict[str, Any]) -> str:
    fields = {
        k: v
        for k, v in body.items()
        if k not in ("enable_duplicate_check", "duplicate_check_interval")
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def _find_duplicate(state: SimState, body: dict[str, Any]) -> dict[str, Any] | None:
    if not int(body.get("enable_duplicate_check") or 0):
        return None
    limits = state.config.limits
    interval = int(body.get("duplicate_check_interval") or limits.duplicate_default)
    interval = min(max(interval, 1), limits.duplicate_max)
    seen = state.duplicates.get(_duplicate_key(body))
    if seen and state.now() - seen[0] < timedelta(seconds=interval):
        return seen[1]
    return None


def _deliver(state: SimState, targets: set[str]) -> tuple[list[str], list[str], list[str]]:
    unlicensed = sorted(targets & state.config.unlicensed)
    delivered, dropped = [], []
    now, limits = state.now(), state.config.limits
    for userid in sorted(targets - state.config.unlicensed):
        # Beyond 30/min or 1000/h per member WeCom drops the message without telling anyone.
        if state.windows.member_allows(userid, now, limits):
            delivered.append(userid)
        else:
            dropped.append(userid)
    return delivered, dropped, unlicensed


def _record(
    state: SimState, body: dict[str, Any], msgtype: str, task_id: str, response: dict[str, Any]
) -> dict[str, Any]:
    return {
        "msgid": response["msgid"],
        "msgtype": msgtype,
        "task_id": task_id,
        "content": body.get(msgtype),
        "sent_at": state.now().isoformat(),
        "duplicates": 0,
        "response": response,
    }


def message_send(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `message/send`: resolve recipients, apply limits, record what was delivered."""
    body = body or {}
    if str(body.get("agentid")) != str(state.config.agent_id):
        raise SimError(301002, "agentid does not match access_token")
    duplicate = _find_duplicate(state, body)
    if duplicate is not None:
        duplicate["duplicates"] += 1
        return dict(duplicate["response"])
    msgtype, task_id = _check_content(state, body)
    targets, invalid = _resolve(state, body)
    delivered, dropped, unlicensed = _deliver(state, targets)
    if not delivered and not dropped and not unlicensed:
        raise SimError(81013, "user & party & tag all invalid")
    response = {
        "invaliduser": "|".join(invalid["user"]),
        "invalidparty": "|".join(invalid["party"]),
        "invalidtag": "|".join(invalid["tag"]),
        "unlicenseduser": "|".join(unlicensed),
        "msgid": state.new_msgid(),
    }
    if task_id:
        state.task_ids.add(task_id)
        response["response_code"] = state.new_response_code(task_id, delivered)
    record = _record(state, body, msgtype, task_id, response)
    record.update(delivered=delivered, dropped=dropped, unlicensed=unlicensed, invalid=invalid)
    state.messages.append(record)
    if int(body.get("enable_duplicate_check") or 0):
        state.duplicates[_duplicate_key(body)] = (state.now(), record)
    return dict(response)


def _consume_response_code(state: SimState, code: str) -> dict[str, Any]:
    entry = state.response_codes.get(code)
    if entry is None:
        raise SimError(RESPONSE_CODE_INVALID, "invalid response_code")
    if entry["used"]:
        raise SimError(RESPONSE_CODE_USED, "response_code has been used")
    ttl = timedelta(hours=state.config.limits.response_code_hours)
    if state.now() - entry["issued_at"] >= ttl:
        raise SimError(RESPONSE_CODE_INVALID, "response_code expired")
    entry["used"] = True
    return entry


def update_template_card(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `message/update_template_card`: consume a response_code once, within its TTL."""
    body = body or {}
    if str(body.get("agentid")) != str(state.config.agent_id):
        raise SimError(301002, "agentid does not match access_token")
    button = body.get("button") or {}
    card = body.get("template_card")
    if not card and not button.get("replace_name"):
        raise SimError(42020, "missing button replace_name")
    entry = _consume_response_code(state, str(body.get("response_code") or ""))
    userids = list(body.get("userids") or [])
    if int(body.get("atall") or 0) or not userids:
        userids = list(entry["userids"])
    invalid = [u for u in userids if u not in state.org.members]
    state.card_updates.append(
        {
            "task_id": entry["task_id"],
            "userids": [u for u in userids if u not in invalid],
            "replace_name": button.get("replace_name"),
            "template_card": card,
            "at": state.now().isoformat(),
        }
    )
    return {"invaliduser": invalid}


def message_recall(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `message/recall`: withdraw an app message sent within the last 24 hours."""
    msgid = str((body or {}).get("msgid") or "")
    record = next((m for m in state.messages if m["msgid"] == msgid), None)
    if record is None:
        raise SimError(40058, "invalid msgid")
    sent_at = datetime.fromisoformat(record["sent_at"])
    if state.now() - sent_at >= timedelta(hours=state.config.limits.recall_hours):
        raise SimError(40058, "msgid can only be recalled within 24 hours")
    record["recalled"] = True
    return {}
