"""Typed callback events parsed from the decrypted XML fields (WECOM.md §3).

`parse_event` never raises on an unknown type: it returns `UnknownEvent`, which is kept in the
inbox and logged. Missing or malformed required fields raise CallbackRejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wecom_app.errors import CallbackRejected

APP = "app"
CONTACTS = "contacts"


@dataclass(frozen=True, slots=True)
class Event:
    """Fields common to every callback."""

    channel: str
    msg_type: str
    from_user: str
    create_time: int
    to_user: str = ""
    agent_id: str | None = None
    event: str | None = None
    change_type: str | None = None

    @property
    def route(self) -> tuple[str, str | None, str | None]:
        """The dispatch key: (MsgType, Event, ChangeType)."""
        return (self.msg_type, self.event, self.change_type)

    @property
    def subject(self) -> str | None:
        """The id this event is about (user, department, tag, task), for keys and queries."""
        return None

    @property
    def dedupe_key(self) -> str:
        """Events dedupe by FromUserName + CreateTime, refined by event, ChangeType and subject.

        The refinement only ever separates events that differ in content (two cards clicked in
        one second, two members changed in one second by `sys`); a WeCom retry repeats them all.
        """
        kind = f"{self.event or ''}:{self.change_type or ''}"
        return f"evt:{self.from_user}:{self.create_time}:{kind}:{self.subject or ''}"


@dataclass(frozen=True, slots=True)
class TextMessage(Event):
    """A text an employee sent to the app."""

    content: str = ""
    msg_id: str = ""

    @property
    def dedupe_key(self) -> str:
        """Messages dedupe by MsgId."""
        return f"msg:{self.msg_id}"


@dataclass(frozen=True, slots=True)
class LocationMessage(Event):
    """A location an employee sent to the app (a check-in): WeCom's Location_X is the
    latitude, Location_Y the longitude, Scale the map's zoom, Label the place's name."""

    latitude: float = 0.0
    longitude: float = 0.0
    scale: int = 0
    label: str = ""
    msg_id: str = ""

    @property
    def dedupe_key(self) -> str:
        """Messages dedupe by MsgId."""
        return f"msg:{self.msg_id}"


@dataclass(frozen=True, slots=True)
class SelectedItem:
    """One answered question of a vote/multiple-choice card."""

    question_key: str
    option_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TemplateCardEvent(Event):
    """A click on a template card button."""

    event_key: str = ""
    task_id: str = ""
    card_type: str = ""
    response_code: str = ""
    selected_items: tuple[SelectedItem, ...] = ()

    @property
    def subject(self) -> str | None:
        """The card's task id."""
        return self.task_id


@dataclass(frozen=True, slots=True)
class EnterAgent(Event):
    """An employee opened the app."""

    event_key: str = ""


@dataclass(frozen=True, slots=True)
class Subscription(Event):
    """subscribe / unsubscribe: a member gained or lost the app (leaving unsubscribes)."""


@dataclass(frozen=True, slots=True)
class UserChange(Event):
    """change_contact for a member: create_user, update_user, delete_user."""

    user_id: str = ""
    new_user_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> str | None:
        """The member's userid."""
        return self.user_id


@dataclass(frozen=True, slots=True)
class PartyChange(Event):
    """change_contact for a department: create_party, update_party, delete_party."""

    party_id: int = 0
    name: str | None = None
    parent_id: int | None = None
    order: int | None = None

    @property
    def subject(self) -> str | None:
        """The department id."""
        return str(self.party_id)


@dataclass(frozen=True, slots=True)
class TagChange(Event):
    """change_contact update_tag: members or departments added to or removed from a tag."""

    tag_id: int = 0
    add_users: tuple[str, ...] = ()
    del_users: tuple[str, ...] = ()
    add_parties: tuple[int, ...] = ()
    del_parties: tuple[int, ...] = ()

    @property
    def subject(self) -> str | None:
        """The tag id."""
        return str(self.tag_id)


@dataclass(frozen=True, slots=True)
class UnknownEvent(Event):
    """Anything we have no type for; stored and logged, never an error."""

    @property
    def dedupe_key(self) -> str:
        """Unknown messages still carry a MsgId sometimes; use the generic event key otherwise."""
        return Event.dedupe_key.fget(self)  # type: ignore[attr-defined]


USER_CHANGES = {"create_user", "update_user", "delete_user"}
PARTY_CHANGES = {"create_party", "update_party", "delete_party"}


def parse_event(channel: str, f: dict[str, Any]) -> Event:
    """Build the typed event for a decrypted message's fields."""
    base = _base(channel, f)
    msg_type, event, change = base["msg_type"], base["event"], base["change_type"]
    if msg_type == "text":
        msg_id = _text(f, "MsgId")
        if not msg_id.isdigit():
            raise CallbackRejected("text message without a numeric MsgId")
        return TextMessage(**base, content=_text(f, "Content"), msg_id=msg_id)
    if msg_type == "location":
        return _location(base, f)
    if msg_type != "event":
        return UnknownEvent(**base)
    if event == "template_card_event":
        return TemplateCardEvent(
            **base,
            event_key=_text(f, "EventKey"),
            task_id=_text(f, "TaskId"),
            card_type=_text(f, "CardType"),
            response_code=_text(f, "ResponseCode"),
            selected_items=_selected_items(f.get("SelectedItems")),
        )
    if event == "enter_agent":
        return EnterAgent(**base, event_key=_text(f, "EventKey"))
    if event in ("subscribe", "unsubscribe"):
        return Subscription(**base)
    if event == "change_contact":
        return _contact_event(base, change, f)
    return UnknownEvent(**base)


def _location(base: dict[str, Any], f: dict[str, Any]) -> LocationMessage:
    msg_id = _text(f, "MsgId")
    if not msg_id.isdigit():
        raise CallbackRejected("location message without a numeric MsgId")
    try:
        latitude, longitude = float(_text(f, "Location_X")), float(_text(f, "Location_Y"))
    except ValueError:
        raise CallbackRejected("location message without numeric Location_X/Location_Y") from None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise CallbackRejected("location message with coordinates out of range")
    scale = _text(f, "Scale")
    return LocationMessage(**base, latitude=latitude, longitude=longitude,
                           scale=int(scale) if scale.isdigit() else 0,
                           label=_text(f, "Label")[:255], msg_id=msg_id)  # fmt: skip


def _base(channel: str, f: dict[str, Any]) -> dict[str, Any]:
    """Read the fields every callback has."""
    msg_type = _text(f, "MsgType")
    if not msg_type:
        raise CallbackRejected("message without MsgType")
    create_time = _text(f, "CreateTime")
    if not create_time.isdigit():
        raise CallbackRejected("message without a numeric CreateTime")
    event = _text(f, "Event") or None
    return {
        "channel": channel,
        "msg_type": msg_type,
        "from_user": _text(f, "FromUserName"),
        "create_time": int(create_time),
        "to_user": _text(f, "ToUserName"),
        "agent_id": _text(f, "AgentID") or None,
        "event": event,
        "change_type": (_text(f, "ChangeType") or None) if event == "change_contact" else None,
    }


def _contact_event(base: dict[str, Any], change: str | None, f: dict[str, Any]) -> Event:
    """Parse the member, department and tag variants of change_contact."""
    if change in USER_CHANGES:
        user_id = _text(f, "UserID")
        if not user_id:
            raise CallbackRejected(f"{change} without UserID")
        fields = {k: v for k, v in f.items() if isinstance(v, str) and k not in _ENVELOPE}
        return UserChange(
            **base, user_id=user_id, new_user_id=_text(f, "NewUserID") or None, fields=fields
        )
    if change in PARTY_CHANGES:
        return PartyChange(
            **base,
            party_id=_int(f, "Id", required=True) or 0,
            name=_text(f, "Name") or None,
            parent_id=_int(f, "ParentId"),
            order=_int(f, "Order"),
        )
    if change == "update_tag":
        return TagChange(
            **base,
            tag_id=_int(f, "TagId", required=True) or 0,
            add_users=_split(f, "AddUserItems"),
            del_users=_split(f, "DelUserItems"),
            add_parties=tuple(int(x) for x in _split(f, "AddPartyItems") if x.isdigit()),
            del_parties=tuple(int(x) for x in _split(f, "DelPartyItems") if x.isdigit()),
        )
    return UnknownEvent(**base)


_ENVELOPE = {
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Event",
    "ChangeType",
    "AgentID",
}


def _selected_items(node: Any) -> tuple[SelectedItem, ...]:
    """Read SelectedItems, accepting both OptionIds/OptionId and OpitonIds/OpitonId."""
    if not isinstance(node, dict):
        return ()
    items = node.get("SelectedItem", [])
    items = items if isinstance(items, list) else [items]
    result = []
    for item in items:
        if not isinstance(item, dict):
            continue
        ids = item.get("OptionIds") or item.get("OpitonIds") or {}
        raw = ids.get("OptionId", ids.get("OpitonId", [])) if isinstance(ids, dict) else []
        options = raw if isinstance(raw, list) else [raw]
        result.append(SelectedItem(str(item.get("QuestionKey", "")), tuple(map(str, options))))
    return tuple(result)


def _text(f: dict[str, Any], key: str) -> str:
    """A leaf field as text ('' when absent or not a leaf)."""
    value = f.get(key, "")
    return value if isinstance(value, str) else ""


def _int(f: dict[str, Any], key: str, *, required: bool = False) -> int | None:
    """A leaf field as int; refuse a required one that is missing or not a number."""
    text = _text(f, key)
    if text.lstrip("-").isdigit():
        return int(text)
    if required:
        raise CallbackRejected(f"missing or non-numeric {key}")
    return None


def _split(f: dict[str, Any], key: str) -> tuple[str, ...]:
    """A comma-separated field as a tuple of non-empty parts."""
    return tuple(p for p in _text(f, key).split(",") if p)
