"""The simulated directory: departments, members and tags, with the indexes the APIs need."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

ROOT_DEPARTMENT = 1
ACTIVE, DISABLED, NOT_ACTIVATED, LEFT = 1, 2, 4, 5


@dataclass(slots=True)
class Department:
    """A department as `department/get` returns it."""

    id: int
    name: str
    parentid: int
    order: int = 0
    department_leader: list[str] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        """Render the department the way `department/list` does."""
        return {
            "id": self.id,
            "name": self.name,
            "parentid": self.parentid,
            "order": self.order,
            "department_leader": list(self.department_leader),
        }


@dataclass(slots=True)
class Member:
    """A member with the fields a self-built app still receives since 2022-06-20."""

    userid: str
    name: str
    department: list[int]
    main_department: int = 0
    is_leader_in_dept: list[int] = field(default_factory=list)
    direct_leader: list[str] = field(default_factory=list)
    position: str = ""
    alias: str = ""
    status: int = ACTIVE

    def __post_init__(self) -> None:
        if not self.main_department and self.department:
            self.main_department = self.department[0]
        if len(self.is_leader_in_dept) != len(self.department):
            self.is_leader_in_dept = [0] * len(self.department)

    def to_api(self) -> dict[str, Any]:
        """Render the member the way `user/get` and `user/list` do."""
        return {
            "userid": self.userid,
            "name": self.name,
            "department": list(self.department),
            "main_department": self.main_department,
            "is_leader_in_dept": list(self.is_leader_in_dept),
            "direct_leader": list(self.direct_leader),
            "position": self.position,
            "alias": self.alias,
            "status": self.status,
            "open_userid": "wo" + self.userid,
        }

    def is_reachable(self) -> bool:
        """Tell whether messages to this member are accepted (active or not yet activated)."""
        return self.status in (ACTIVE, NOT_ACTIVATED)


@dataclass(slots=True)
class Tag:
    """A tag: a named set of members and departments."""

    tagid: int
    tagname: str
    userlist: list[str] = field(default_factory=list)
    partylist: list[int] = field(default_factory=list)


def _copy_member(member: Member) -> Member:
    return replace(
        member,
        department=list(member.department),
        is_leader_in_dept=list(member.is_leader_in_dept),
        direct_leader=list(member.direct_leader),
    )


class Org:
    """The whole directory with lazily rebuilt lookup indexes."""

    def __init__(
        self,
        departments: list[Department],
        members: list[Member],
        tags: list[Tag] | None = None,
        corp_name: str = "",
    ) -> None:
        self.corp_name = corp_name
        self.departments = {d.id: d for d in departments}
        self.members = {m.userid: m for m in members}
        self.tags = {t.tagid: t for t in tags or []}
        self._children: dict[int, list[int]] = {}
        self._dept_members: dict[int, list[str]] = {}
        self._sorted_ids: list[str] = []
        self._dirty = True

    def copy(self) -> Org:
        """Return an independent copy, used to reset the simulator to its starting directory."""
        return Org(
            [
                replace(d, department_leader=list(d.department_leader))
                for d in self.departments.values()
            ],
            [_copy_member(m) for m in self.members.values()],
            [
                replace(t, userlist=list(t.userlist), partylist=list(t.partylist))
                for t in self.tags.values()
            ],
            corp_name=self.corp_name,
        )

    def touch(self) -> None:
        """Mark the indexes stale after a mutation."""
        self._dirty = True

    def _reindex(self) -> None:
        if not self._dirty:
            return
        children: dict[int, list[int]] = {d: [] for d in self.departments}
        for dept in sorted(self.departments.values(), key=lambda d: (-d.order, d.id)):
            children.setdefault(dept.parentid, []).append(dept.id)
        dept_members: dict[int, list[str]] = {d: [] for d in self.departments}
        for member in self.members.values():
            for dept_id in member.department:
                dept_members.setdefault(dept_id, []).append(member.userid)
        self._children, self._dept_members = children, dept_members
        self._sorted_ids = sorted(self.members)
        self._folded = {u.lower(): u for u in self.members}
        self._dirty = False

    def member(self, userid: str) -> Member | None:
        """The member with this userid in any letter case (WeCom's userids ignore case)."""
        found = self.members.get(userid)
        if found is not None:
            return found
        self._reindex()
        canonical = self._folded.get(userid.lower())
        return self.members.get(canonical) if canonical else None

    def children(self, dept_id: int) -> list[int]:
        """Return the direct sub-department ids of a department."""
        self._reindex()
        return self._children.get(dept_id, [])

    def subtree(self, dept_id: int) -> list[int]:
        """Return a department id and all its descendants, parents first."""
        result, stack = [], [dept_id]
        while stack:
            current = stack.pop()
            result.append(current)
            stack.extend(reversed(self.children(current)))
        return result

    def members_of(self, dept_id: int) -> list[Member]:
        """Return the members directly in a department (not recursive, like `user/list`)."""
        self._reindex()
        return [self.members[u] for u in self._dept_members.get(dept_id, [])]

    def member_ids_under(self, dept_id: int) -> set[str]:
        """Return the userids of everyone in a department or any of its sub-departments."""
        self._reindex()
        found: set[str] = set()
        for dept in self.subtree(dept_id):
            found.update(self._dept_members.get(dept, []))
        return found

    def sorted_userids(self) -> list[str]:
        """Return all userids in a stable order, for cursor paging."""
        self._reindex()
        return self._sorted_ids

    def depth(self, dept_id: int) -> int:
        """Return how many levels below the root a department sits (root is 1)."""
        level = 1
        while dept_id in self.departments and self.departments[dept_id].parentid:
            dept_id = self.departments[dept_id].parentid
            level += 1
        return level


def org_from_dict(data: dict[str, Any]) -> Org:
    """Build an Org from the plain structure of a sample-org YAML file."""
    departments = [Department(**d) for d in data.get("departments", [])]
    members = [Member(**m) for m in data.get("members", [])]
    tags = [Tag(**t) for t in data.get("tags", [])]
    org = Org(departments, members, tags, corp_name=data.get("corp_name", ""))
    fill_department_leaders(org)
    return org


def fill_department_leaders(org: Org) -> None:
    """Derive each department's leader list from members flagged as leaders, when missing."""
    for dept in org.departments.values():
        if dept.department_leader:
            continue
        dept.department_leader = [
            m.userid
            for m in org.members_of(dept.id)
            if m.is_leader_in_dept[m.department.index(dept.id)]
        ]


def load_org(path: str | Path) -> Org:
    """Load an org chart from a YAML file (departments, members, tags)."""
    with open(path, encoding="utf-8") as handle:
        return org_from_dict(yaml.safe_load(handle))


def org_to_dict(org: Org) -> dict[str, Any]:
    """Turn an Org into the plain structure written to YAML."""
    return {
        "corp_name": org.corp_name,
        "departments": [asdict(d) for d in org.departments.values()],
        "members": [asdict(m) for m in org.members.values()],
        "tags": [asdict(t) for t in org.tags.values()],
    }
