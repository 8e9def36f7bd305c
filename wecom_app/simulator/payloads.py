"""Plaintext callback XML exactly as WeCom builds it: CDATA strings, numeric CreateTime."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wecom_app.simulator.org import Department, Member

_NUMERIC = {
    "CreateTime",
    "AgentID",
    "MsgId",
    "Id",
    "ParentId",
    "Order",
    "TagId",
    "Status",
    "MainDepartment",
}


def _element(name: str, value: Any) -> str:
    if isinstance(value, list):
        return f"<{name}>{''.join(_element(k, v) for k, v in value)}</{name}>"
    if name in _NUMERIC:
        return f"<{name}>{value}</{name}>"
    return f"<{name}><![CDATA[{value}]]></{name}>"


def render(fields: Iterable[tuple[str, Any]]) -> str:
    """Render (name, value) pairs as a WeCom callback XML document; lists nest."""
    return "<xml>" + "".join(_element(k, v) for k, v in fields if v is not None) + "</xml>"


def _header(corp_id: str, sender: str, create_time: int, msg_type: str) -> list[tuple[str, Any]]:
    return [
        ("ToUserName", corp_id),
        ("FromUserName", sender),
        ("CreateTime", create_time),
        ("MsgType", msg_type),
    ]


def text_message(
    corp_id: str, agent_id: int, userid: str, content: str, msg_id: int, create_time: int
) -> str:
    """Build the XML of a text a member sent to the app."""
    fields = _header(corp_id, userid, create_time, "text")
    fields += [("Content", content), ("MsgId", msg_id), ("AgentID", agent_id)]
    return render(fields)


def location_message(
    corp_id: str, agent_id: int, userid: str, place: tuple[float, float, int, str], msg_id: int,
    create_time: int,
) -> str:  # fmt: skip
    """Build the XML of a location a member sent to the app: (latitude, longitude, scale,
    label) as Location_X, Location_Y, Scale and Label."""
    latitude, longitude, scale, label = place
    fields = _header(corp_id, userid, create_time, "location")
    fields += [("Location_X", f"{latitude:.6f}"), ("Location_Y", f"{longitude:.6f}"),
               ("Scale", scale), ("Label", label), ("MsgId", msg_id),
               ("AgentID", agent_id)]  # fmt: skip
    return render(fields)


def app_event(
    corp_id: str, agent_id: int, userid: str, event: str, create_time: int, event_key: str = ""
) -> str:
    """Build the XML of enter_agent, subscribe or unsubscribe."""
    fields = _header(corp_id, userid, create_time, "event")
    fields += [("Event", event), ("EventKey", event_key), ("AgentID", agent_id)]
    return render(fields)


def card_event(
    corp_id: str,
    agent_id: int,
    userid: str,
    create_time: int,
    *,
    event_key: str,
    task_id: str,
    card_type: str,
    response_code: str,
    selected: list[tuple[str, list[str]]] | None = None,
    option_spelling: str = "OptionIds",
) -> str:
    """Build the XML of a template_card_event (a card button or option clicked)."""
    fields = _header(corp_id, userid, create_time, "event")
    fields += [
        ("Event", "template_card_event"),
        ("EventKey", event_key),
        ("TaskId", task_id),
        ("CardType", card_type),
        ("ResponseCode", response_code),
        ("AgentID", agent_id),
    ]
    if selected:
        item_name = option_spelling[:-1]  # OptionIds -> OptionId, OpitonIds -> OpitonId
        items = [
            (
                "SelectedItem",
                [("QuestionKey", key), (option_spelling, [(item_name, o) for o in options])],
            )
            for key, options in selected
        ]
        fields.append(("SelectedItems", items))
    return render(fields)


def _joined(values: Iterable[Any]) -> str:
    return ",".join(str(v) for v in values)


def user_fields(member: Member) -> list[tuple[str, Any]]:
    """Return every member field a legacy contacts callback carries."""
    return [
        ("Name", member.name),
        ("Department", _joined(member.department)),
        ("MainDepartment", member.main_department),
        ("IsLeaderInDept", _joined(member.is_leader_in_dept)),
        ("DirectLeader", _joined(member.direct_leader)),
        ("Position", member.position),
        ("Status", member.status),
        ("Alias", member.alias),
    ]


def contact_user(
    corp_id: str,
    change_type: str,
    create_time: int,
    userid: str,
    member: Member | None,
    *,
    new_style: bool,
    new_userid: str | None = None,
    thin_keeps_new_userid: bool = True,
) -> str:
    """Build a create_user / update_user / delete_user change_contact event."""
    fields = _header(corp_id, "sys", create_time, "event")
    fields += [("Event", "change_contact"), ("ChangeType", change_type), ("UserID", userid)]
    if new_userid and (thin_keeps_new_userid or not new_style):
        fields.append(("NewUserID", new_userid))
    if member is not None and change_type != "delete_user":
        fields += (
            user_fields(member) if not new_style else [("Department", _joined(member.department))]
        )
    return render(fields)


def contact_party(corp_id: str, change_type: str, create_time: int, dept: Department) -> str:
    """Build a create_party / update_party / delete_party change_contact event."""
    fields = _header(corp_id, "sys", create_time, "event")
    fields += [("Event", "change_contact"), ("ChangeType", change_type), ("Id", dept.id)]
    if change_type != "delete_party":
        fields += [("Name", dept.name), ("ParentId", dept.parentid), ("Order", dept.order)]
    return render(fields)


def contact_tag(corp_id: str, create_time: int, tagid: int, changes: dict[str, list[Any]]) -> str:
    """Build an update_tag change_contact event (members or departments added or removed)."""
    fields = _header(corp_id, "sys", create_time, "event")
    fields += [("Event", "change_contact"), ("ChangeType", "update_tag"), ("TagId", tagid)]
    for name in ("AddUserItems", "DelUserItems", "AddPartyItems", "DelPartyItems"):
        if changes.get(name):
            fields.append((name, _joined(changes[name])))
    return render(fields)
