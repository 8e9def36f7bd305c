"""Directory APIs: departments, members, `user/list_id` paging and `user/update`."""

from __future__ import annotations

import base64
from typing import Any

from wecom_app.simulator.org import Member
from wecom_app.simulator.state import CONTACTS, SimError, SimState

MAX_ALIAS_CHARS = 64
UPDATABLE = (
    "name",
    "alias",
    "position",
    "department",
    "main_department",
    "is_leader_in_dept",
    "direct_leader",
)


def _int_arg(args: dict[str, Any], name: str, default: int | None = None) -> int:
    raw = args.get(name, default)
    try:
        return int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise SimError(40058, f"invalid {name}") from exc


def _department_id(state: SimState, args: dict[str, Any], name: str) -> int:
    dept_id = _int_arg(args, name)
    if dept_id not in state.org.departments:
        raise SimError(60123, "invalid party id")
    return dept_id


def _block_details(state: SimState, kind: str) -> None:
    if kind == CONTACTS and state.config.contacts_details_blocked:
        raise SimError(48009, "api forbidden for contacts sync from a new ip")


def department_list(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `department/list`: the subtree under `id` (or the whole tree) with names."""
    root = _department_id(state, args, "id") if args.get("id") else 1
    org = state.org
    return {"department": [org.departments[d].to_api() for d in org.subtree(root)]}


def department_simplelist(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `department/simplelist`: ids, parents and order only."""
    root = _department_id(state, args, "id") if args.get("id") else 1
    depts = [state.org.departments[d] for d in state.org.subtree(root)]
    return {
        "department_id": [{"id": d.id, "parentid": d.parentid, "order": d.order} for d in depts]
    }


def department_get(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `department/get`: one department."""
    dept_id = _department_id(state, args, "id")
    return {"department": state.org.departments[dept_id].to_api()}


def user_list(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `user/list`: full details of the members directly in one department."""
    _block_details(state, kind)
    dept_id = _department_id(state, args, "department_id")
    return {"userlist": [m.to_api() for m in state.org.members_of(dept_id)]}


def user_simplelist(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `user/simplelist`: userid, name and departments of one department's members."""
    dept_id = _department_id(state, args, "department_id")
    return {
        "userlist": [
            {
                "userid": m.userid,
                "name": m.name,
                "department": list(m.department),
                "open_userid": "wo" + m.userid,
            }
            for m in state.org.members_of(dept_id)
        ]
    }


def _member(state: SimState, userid: Any) -> Member:
    member = state.org.members.get(str(userid or ""))
    if member is None:
        raise SimError(60111, "userid not found")
    return member


def user_get(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `user/get`: one member's details, 60111 when unknown."""
    _block_details(state, kind)
    return _member(state, args.get("userid")).to_api()


def _decode_cursor(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except ValueError as exc:
        raise SimError(40058, "invalid cursor") from exc


def user_list_id(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `user/list_id`: (userid, department) pairs a page at a time, with next_cursor."""
    body = body or {}
    limit = _int_arg(body, "limit", 1000)
    if not 1 <= limit <= state.config.limits.max_list_id:
        raise SimError(40058, "invalid limit")
    start = _decode_cursor(str(body.get("cursor") or ""))
    userids = state.org.sorted_userids()
    page = userids[start : start + limit]
    dept_user = [
        {"userid": u, "department": d} for u in page for d in state.org.members[u].department
    ]
    result: dict[str, Any] = {"dept_user": dept_user}
    if start + limit < len(userids):
        result["next_cursor"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
    else:
        result["next_cursor"] = ""
    return result


def _validate_update(state: SimState, body: dict[str, Any]) -> None:
    if "alias" in body and len(str(body["alias"])) > MAX_ALIAS_CHARS:
        raise SimError(40058, "alias exceed max length")
    if "name" in body and not 0 < len(str(body["name"])) <= 64:
        raise SimError(60112, "invalid name")
    for dept_id in body.get("department") or []:
        if int(dept_id) not in state.org.departments:
            raise SimError(60123, "invalid party id")


def user_update(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `user/update` (contacts secret): change alias, name, departments and the like."""
    body = body or {}
    member = _member(state, body.get("userid"))
    _validate_update(state, body)
    for name in UPDATABLE:
        if name in body:
            setattr(member, name, body[name])
    if "enable" in body:
        member.status = 1 if int(body["enable"]) else 2
    if "department" in body and "is_leader_in_dept" not in body:
        member.is_leader_in_dept = [0] * len(member.department)
    state.org.touch()
    return {}


def tag_list(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `tag/list`: every tag with its name."""
    tags = sorted(state.org.tags.values(), key=lambda t: t.tagid)
    return {"taglist": [{"tagid": t.tagid, "tagname": t.tagname} for t in tags]}


def tag_get(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `tag/get`: a tag's name, its members (userid and name) and its departments."""
    raw = str(args.get("tagid") or "")
    tag = state.org.tags.get(int(raw)) if raw.isascii() and raw.isdigit() else None
    if tag is None:
        raise SimError(40068, "invalid tagid")
    members = [state.org.members[u] for u in tag.userlist if u in state.org.members]
    return {
        "tagname": tag.tagname,
        "userlist": [{"userid": m.userid, "name": m.name} for m in members],
        "partylist": list(tag.partylist),
    }
