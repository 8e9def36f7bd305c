"""Typed results of WeCom API calls, built from WeCom's JSON with `from_api`.

WeCom leaves out fields the caller may not see (and new self-built apps get fewer fields since
2022-06-20), so every constructor tolerates missing keys. Recipient lists in send results come
back as "a|b|c" strings; `split_ids` turns them into tuples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

JSON = Mapping[str, Any]


def split_ids(value: Any) -> tuple[str, ...]:
    """Turn WeCom's "a|b|c" string (or a list, as some endpoints send) into a tuple of ids."""
    if not value:
        return ()
    if isinstance(value, str):
        return tuple(part for part in value.split("|") if part)
    return tuple(str(part) for part in value)


def _ints(value: Any) -> tuple[int, ...]:
    """Turn a list of numbers (or a "1|2" / "1,2" string) into a tuple of ints."""
    if not value:
        return ()
    if isinstance(value, str):
        return tuple(int(part) for part in value.replace(",", "|").split("|") if part)
    return tuple(int(part) for part in value)


def _strs(value: Any) -> tuple[str, ...]:
    """Turn a list of strings into a tuple, treating a missing value as empty."""
    return tuple(str(part) for part in value or ())


def _opt_int(value: Any) -> int | None:
    """Return value as an int, or None when WeCom left it out."""
    return None if value is None or value == "" else int(value)


@dataclass(frozen=True)
class Department:
    """A department with its name and leaders (department/list, department/get)."""

    id: int
    name: str
    parentid: int
    order: int
    department_leader: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, data: JSON) -> Department:
        """Build a Department from one element of WeCom's `department` list."""
        return cls(
            id=int(data["id"]),
            name=str(data.get("name", "")),
            parentid=int(data.get("parentid", 0)),
            order=int(data.get("order", 0)),
            department_leader=_strs(data.get("department_leader")),
        )


@dataclass(frozen=True)
class DepartmentRef:
    """A department without its name (department/simplelist)."""

    id: int
    parentid: int
    order: int

    @classmethod
    def from_api(cls, data: JSON) -> DepartmentRef:
        """Build a DepartmentRef from one element of WeCom's `department_id` list."""
        return cls(
            id=int(data["id"]),
            parentid=int(data.get("parentid", 0)),
            order=int(data.get("order", 0)),
        )


@dataclass(frozen=True)
class User:
    """A member as user/get and user/list describe them; status 1 active, 2 disabled, 4 not
    yet activated, 5 left the company."""

    userid: str
    name: str
    department: tuple[int, ...] = ()
    main_department: int | None = None
    is_leader_in_dept: tuple[int, ...] = ()
    direct_leader: tuple[str, ...] = ()
    position: str = ""
    alias: str = ""
    # A member WeCom lists without a status exists, so it counts as active.
    status: int = 1

    @classmethod
    def from_api(cls, data: JSON) -> User:
        """Build a User from WeCom's member JSON."""
        return cls(
            userid=str(data["userid"]),
            name=str(data.get("name", "")),
            department=_ints(data.get("department")),
            main_department=_opt_int(data.get("main_department")),
            is_leader_in_dept=_ints(data.get("is_leader_in_dept")),
            direct_leader=_strs(data.get("direct_leader")),
            position=str(data.get("position") or ""),
            alias=str(data.get("alias") or ""),
            status=int(data.get("status", 1)),
        )


@dataclass(frozen=True)
class UserRef:
    """A member with name and departments only (user/simplelist)."""

    userid: str
    name: str
    department: tuple[int, ...] = ()

    @classmethod
    def from_api(cls, data: JSON) -> UserRef:
        """Build a UserRef from one element of user/simplelist's `userlist`."""
        return cls(
            userid=str(data["userid"]),
            name=str(data.get("name", "")),
            department=_ints(data.get("department")),
        )


@dataclass(frozen=True)
class TagDetail:
    """A tag as tag/get gives it: its name, member userids and the departments it holds."""

    id: int
    name: str
    userids: tuple[str, ...]
    departments: tuple[int, ...]


@dataclass(frozen=True)
class ListIdPage:
    """One page of user/list_id: (userid, department) rows and the cursor for the next page."""

    next_cursor: str
    dept_user: tuple[tuple[str, int], ...]

    @classmethod
    def from_api(cls, data: JSON) -> ListIdPage:
        """Build a ListIdPage from user/list_id's answer; an empty cursor means the last page."""
        rows = tuple(
            (str(row["userid"]), int(row.get("department", 0)))
            for row in data.get("dept_user") or ()
        )
        return cls(next_cursor=str(data.get("next_cursor") or ""), dept_user=rows)


@dataclass(frozen=True)
class SendResult:
    """What message/send reports: recipients it could not reach, the msgid, a response code."""

    invalid_users: tuple[str, ...] = ()
    invalid_parties: tuple[str, ...] = ()
    invalid_tags: tuple[str, ...] = ()
    unlicensed_users: tuple[str, ...] = ()
    msgid: str = ""
    response_code: str | None = None

    @classmethod
    def from_api(cls, data: JSON) -> SendResult:
        """Build a SendResult from message/send's answer."""
        return cls(
            invalid_users=split_ids(data.get("invaliduser")),
            invalid_parties=split_ids(data.get("invalidparty")),
            invalid_tags=split_ids(data.get("invalidtag")),
            unlicensed_users=split_ids(data.get("unlicenseduser")),
            msgid=str(data.get("msgid") or ""),
            response_code=data.get("response_code") or None,
        )


@dataclass(frozen=True)
class AppChat:
    """A group chat created by this app (appchat/get's `chat_info`)."""

    chatid: str
    name: str
    owner: str
    userlist: tuple[str, ...]

    @classmethod
    def from_api(cls, data: JSON) -> AppChat:
        """Build an AppChat from appchat/get's `chat_info` object."""
        return cls(
            chatid=str(data["chatid"]),
            name=str(data.get("name", "")),
            owner=str(data.get("owner", "")),
            userlist=_strs(data.get("userlist")),
        )
