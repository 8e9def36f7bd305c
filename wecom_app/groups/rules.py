"""Membership rules over plain data: who belongs in a group, and why (no I/O, no database).

A rule set names departments (with or without sub-departments, optionally their leaders only),
tags, explicit users and exclusions. Only active employees count. Unknown departments, tags or
users, and rule sets that would give more than 2000 members, are refused before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wecom_app.errors import AppError

MAX_MEMBERS = 2000
MAX_NAME_CHARS = 50


class RuleError(AppError, ValueError):
    """A rule set that cannot be applied; the message says what is wrong, in Chinese."""


@dataclass(frozen=True)
class DepartmentRule:
    """Members of one department (by id or name), with sub-departments unless told otherwise."""

    department: int | str
    include_children: bool = True


@dataclass(frozen=True)
class GroupRules:
    """What decides a managed group's membership."""

    departments: tuple[DepartmentRule, ...] = ()
    tags: tuple[int | str, ...] = ()
    users: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    include_leaders: bool = False  # also the leaders of the listed departments

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> GroupRules:
        """Read rules from their JSON/YAML form; a bare department id means with children."""
        data = data or {}
        departments = []
        for item in data.get("departments") or []:
            if isinstance(item, Mapping):
                dept = item.get("id", item.get("name"))
                if dept is None:
                    raise RuleError("部门规则缺少 id 或 name")
                departments.append(DepartmentRule(dept, bool(item.get("include_children", True))))
            else:
                departments.append(DepartmentRule(item))
        return cls(
            departments=tuple(departments),
            tags=tuple(data.get("tags") or ()),
            users=tuple(str(u) for u in data.get("users") or ()),
            exclude=tuple(str(u) for u in data.get("exclude") or ()),
            include_leaders=bool(data.get("include_leaders", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in the database."""
        return {
            "departments": [
                {"id": d.department, "include_children": d.include_children}
                for d in self.departments
            ],
            "tags": list(self.tags),
            "users": list(self.users),
            "exclude": list(self.exclude),
            "include_leaders": self.include_leaders,
        }


@dataclass(frozen=True)
class Person:
    """What rules need to know about an employee."""

    userid: str
    active: bool
    departments: tuple[int, ...] = ()
    leader_in: tuple[int, ...] = ()
    display_name: str = ""


@dataclass
class OrgView:
    """A read-only snapshot of the mirror: departments, people and tags."""

    departments: dict[int, tuple[str, int | None]] = field(
        default_factory=dict
    )  # id → name, parent
    people: dict[str, Person] = field(default_factory=dict)
    tags: dict[int, tuple[str, frozenset[str], frozenset[int]]] = field(default_factory=dict)

    def subtree(self, root: int) -> set[int]:
        """A department and all departments below it."""
        children: dict[int | None, list[int]] = {}
        for dept_id, (_, parent) in self.departments.items():
            children.setdefault(parent, []).append(dept_id)
        found, stack = set(), [root]
        while stack:
            current = stack.pop()
            if current not in found:
                found.add(current)
                stack.extend(children.get(current, ()))
        return found

    def department_id(self, ref: int | str) -> int:
        """Resolve a department by id or unique name, or raise RuleError."""
        if isinstance(ref, int) or str(ref).isdigit():
            dept_id = int(ref)
            if dept_id not in self.departments:
                raise RuleError(f"未知部门：{dept_id}")
            return dept_id
        matches = [i for i, (name, _) in self.departments.items() if name == ref]
        if not matches:
            raise RuleError(f"未知部门：{ref}")
        if len(matches) > 1:
            raise RuleError(f"部门名称“{ref}”不唯一，请改用部门 id：{sorted(matches)}")
        return matches[0]

    def tag_id(self, ref: int | str) -> int:
        """Resolve a tag by id or unique name, or raise RuleError."""
        if isinstance(ref, int) or str(ref).isdigit():
            if int(ref) not in self.tags:
                raise RuleError(f"未知标签：{ref}")
            return int(ref)
        matches = [i for i, (name, _, _) in self.tags.items() if name == ref]
        if len(matches) != 1:
            raise RuleError(f"未知或不唯一的标签：{ref}")
        return matches[0]


def desired_members(
    rules: GroupRules, org: OrgView, owners: Iterable[str] = (), limit: int | None = MAX_MEMBERS
) -> dict[str, str]:
    """Evaluate rules to {userid: reason} for the active employees who belong in the group
    (`limit`: a group's 2000; None for an audience that is not a group, e.g. a survey's)."""
    reasons: dict[str, str] = {}

    def want(userids: Iterable[str], reason: str) -> None:
        for userid in userids:
            reasons.setdefault(userid, reason)

    by_department: dict[int, list[str]] = {}
    for person in org.people.values():
        for dept_id in person.departments:
            by_department.setdefault(dept_id, []).append(person.userid)
    for rule in rules.departments:
        root = org.department_id(rule.department)
        scope = org.subtree(root) if rule.include_children else {root}
        name = org.departments[root][0]
        label = f"部门：{name}" + ("（含下级）" if rule.include_children else "")
        for dept_id in sorted(scope):
            want(by_department.get(dept_id, ()), label)
        if rules.include_leaders:
            leaders = [p.userid for p in org.people.values() if root in p.leader_in]
            want(leaders, f"部门负责人：{name}")
    for ref in rules.tags:
        tag_id = org.tag_id(ref)
        tag_name, userids, dept_ids = org.tags[tag_id]
        want(sorted(userids), f"标签：{tag_name}")
        # a department in a tag holds its sub-departments too, as WeCom sends to a tag and as
        # a notice to the tag reaches: a tag means the same people everywhere
        covered = set().union(*(org.subtree(d) for d in dept_ids if d in org.departments))
        for dept_id in sorted(covered):
            want(by_department.get(dept_id, ()), f"标签：{tag_name}")
    unknown = [u for u in rules.users if u not in org.people]
    if unknown:
        raise RuleError(f"未知成员：{', '.join(unknown)}")
    want(rules.users, "指定成员")
    want((o for o in owners if o in org.people), "群主")
    excluded = set(rules.exclude)
    members = {
        userid: reason
        for userid, reason in reasons.items()
        if userid not in excluded and org.people.get(userid, _GONE).active
    }
    if limit is not None and len(members) > limit:
        raise RuleError(f"规则将产生 {len(members)} 名成员，超过企业微信群上限 {MAX_MEMBERS} 人")
    return members


def check_name(name: str) -> str:
    """Return a valid group name or raise RuleError (1 to 50 characters, no line breaks)."""
    text = (name or "").strip()
    if not text:
        raise RuleError("群名称不能为空")
    if len(text) > MAX_NAME_CHARS:
        raise RuleError(f"群名称超过 {MAX_NAME_CHARS} 个字符：{text}")
    if any(c in text for c in "\r\n\t"):
        raise RuleError("群名称不能包含换行或制表符")
    return text


_GONE = Person(userid="", active=False)
