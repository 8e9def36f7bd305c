"""Audience resolution as a pure function: an audience spec over a directory snapshot → recipients.

The spec is plain JSON, so notices keep it as written:

    {"users": ["zhangsan"], "departments": [3, {"id": 4, "subtree": false}],
     "tags": [1], "groups": ["chatid"], "leaders_of": [5], "everyone": false,
     "post_to_groups": false}

Departments include their sub-departments unless `subtree` is false; a managed group means its
current members (with `post_to_groups` the notice is also posted into the group); `leaders_of`
means the leaders of those departments (a task for 移动研发部's 责任人). Only active
employees are recipients; each appears once, with the first reason that included them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wecom_app import checks

SPEC_KEYS = ("users", "departments", "tags", "groups", "leaders_of", "everyone", "post_to_groups")


class AudienceError(ValueError):
    """The audience spec is malformed (not unknown ids: those are reported, not raised)."""


@dataclass(frozen=True, slots=True)
class Person:
    """An employee as audience resolution sees them."""

    id: int
    userid: str
    active: bool
    departments: tuple[int, ...]
    main_department: int | None


@dataclass(slots=True)
class Directory:
    """The part of the mirror audience resolution reads: departments, people, tags."""

    parents: dict[int, int | None]  # department id → parent id
    names: dict[int, str]
    people: list[Person]
    tag_users: dict[int, set[str]] = field(default_factory=dict)
    tag_departments: dict[int, set[int]] = field(default_factory=dict)
    groups: dict[str, tuple[str, set[str]]] = field(default_factory=dict)  # chatid → name, users
    leaders: dict[int, list[str]] = field(default_factory=dict)  # department id → leader userids

    def children(self) -> dict[int, list[int]]:
        """Department id → its direct sub-departments."""
        result: dict[int, list[int]] = {d: [] for d in self.parents}
        for dept, parent in self.parents.items():
            if parent is not None and parent in result and parent != dept:
                result[parent].append(dept)
        return result


@dataclass(frozen=True, slots=True)
class Recipient:
    """One resolved recipient and why they are included."""

    employee_id: int
    userid: str
    department_id: int | None
    reason: str


@dataclass(slots=True)
class Audience:
    """The outcome: recipients, plus everything named that could not be used."""

    recipients: list[Recipient]
    unknown: list[str] = field(default_factory=list)  # "user:x", "department:9", "tag:3"
    inactive: list[str] = field(default_factory=list)  # named users who are not active

    def by_department(self, names: Mapping[int, str]) -> list[dict[str, Any]]:
        """Recipient counts per main department, largest first."""
        counts = Counter(r.department_id for r in self.recipients)
        return [
            {"department_id": d, "department": names.get(d, "") if d else "", "count": n}
            for d, n in sorted(counts.items(), key=lambda item: (-item[1], item[0] or 0))
        ]


def normalise_spec(spec: Any) -> dict[str, Any]:
    """Check an audience spec's shape and return it in canonical form."""
    if not isinstance(spec, dict):
        raise AudienceError('受众必须是对象，例如 {"departments": [3]}')
    extra = set(spec) - set(SPEC_KEYS)
    if extra:
        raise AudienceError(f"受众中有未知字段：{', '.join(sorted(extra))}")
    users = _strings(spec.get("users"), "users")
    tags = _ints(spec.get("tags"), "tags")
    departments = []
    for item in _list(spec.get("departments"), "departments"):
        if isinstance(item, dict):
            extra_keys = set(item) - {"id", "subtree"}
            if extra_keys:
                raise AudienceError(f"departments 中有未知字段：{', '.join(sorted(extra_keys))}")
            dept_id, subtree = item.get("id"), item.get("subtree")
        else:
            dept_id, subtree = item, None
        try:
            ident = checks.integer(dept_id, "departments 中的部门 id", 1)
            whole = checks.boolean(subtree, "departments 中的 subtree", default=True)
        except checks.InputError as exc:
            raise AudienceError(str(exc)) from None
        departments.append({"id": ident, "subtree": whole})
    groups = _strings(spec.get("groups"), "groups")
    return {
        "users": users,
        "departments": departments,
        "tags": tags,
        "groups": groups,
        "leaders_of": _ints(spec.get("leaders_of"), "leaders_of"),
        "everyone": _flag(spec.get("everyone"), "everyone"),
        "post_to_groups": _flag(spec.get("post_to_groups"), "post_to_groups"),
    }


def _flag(value: Any, name: str) -> bool:
    try:
        return checks.boolean(value, name, default=False)
    except checks.InputError as exc:
        raise AudienceError(str(exc)) from None


def resolve(spec: Mapping[str, Any], directory: Directory) -> Audience:
    """Resolve a normalised spec to active, deduplicated recipients with reasons."""
    by_userid = {p.userid: p for p in directory.people}
    chosen: dict[int, Recipient] = {}
    audience = Audience([])

    def add(person: Person, reason: str) -> None:
        if person.active and person.id not in chosen:
            dept = person.main_department or (person.departments[0] if person.departments else None)
            chosen[person.id] = Recipient(person.id, person.userid, dept, reason)

    if spec.get("everyone"):
        for person in directory.people:
            add(person, "全员")
    for userid in spec.get("users", []):
        named = by_userid.get(userid)
        if named is None:
            audience.unknown.append(f"user:{userid}")
        elif not named.active:
            audience.inactive.append(userid)
        else:
            add(named, "指定成员")
    for dept_id in spec.get("leaders_of", []):
        if dept_id not in directory.parents:
            audience.unknown.append(f"department:{dept_id}")
            continue
        name = directory.names.get(dept_id, str(dept_id))
        heads = [by_userid[u] for u in directory.leaders.get(dept_id, ()) if u in by_userid]
        if not any(h.active for h in heads):
            audience.unknown.append(f"leader:{dept_id}")
        for head in heads:
            add(head, f"部门 {name} 负责人")
    wanted = _department_reasons(spec.get("departments", []), directory, audience.unknown)
    wanted_tags = _tag_departments(spec.get("tags", []), directory, audience.unknown)
    children = directory.children()
    for tag_id, depts in wanted_tags.items():
        for dept in depts:
            for sub in subtree(dept, children):
                wanted.setdefault(sub, f"标签 {tag_id}")
        for userid in sorted(directory.tag_users.get(tag_id, ())):
            tagged = by_userid.get(userid)
            if tagged is not None:
                add(tagged, f"标签 {tag_id}")
    if wanted:
        for person in directory.people:
            for dept in person.departments:
                if dept in wanted:
                    add(person, wanted[dept])
                    break
    for chatid in spec.get("groups", []):
        if chatid not in directory.groups:
            audience.unknown.append(f"group:{chatid}")
            continue
        name, members = directory.groups[chatid]
        for userid in sorted(members):
            member = by_userid.get(userid)
            if member is not None:
                add(member, f"群 {name}")
    audience.recipients = list(chosen.values())
    return audience


def subtree(dept_id: int, children: Mapping[int, list[int]]) -> list[int]:
    """A department id and every id below it."""
    found, stack, seen = [], [dept_id], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        found.append(current)
        stack.extend(children.get(current, ()))
    return found


def _department_reasons(
    items: Iterable[Mapping[str, Any]], directory: Directory, unknown: list[str]
) -> dict[int, str]:
    """Department id → reason, for every department the spec names (with subtrees)."""
    children = directory.children()
    wanted: dict[int, str] = {}
    for item in items:
        dept_id = int(item["id"])
        if dept_id not in directory.parents:
            unknown.append(f"department:{dept_id}")
            continue
        name = directory.names.get(dept_id, str(dept_id))
        if item.get("subtree", True):
            for sub in subtree(dept_id, children):
                wanted.setdefault(sub, f"部门 {name}（含下级）")
        else:
            wanted.setdefault(dept_id, f"部门 {name}")
    return wanted


def _tag_departments(
    tags: Iterable[int], directory: Directory, unknown: list[str]
) -> dict[int, set[int]]:
    """Tag id → departments it holds, reporting tags the mirror does not know."""
    known = set(directory.tag_users) | set(directory.tag_departments)
    result = {}
    for tag_id in tags:
        if tag_id not in known:
            unknown.append(f"tag:{tag_id}")
            continue
        result[tag_id] = {d for d in directory.tag_departments.get(tag_id, ()) if d}
    return result


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise AudienceError(f"{name} 必须是列表")
    return value


def _strings(value: Any, name: str) -> list[str]:
    items = _list(value, name)
    if not all(isinstance(v, str) and v.strip() and len(v) <= 64 for v in items):
        raise AudienceError(f"{name} 中每一项必须是非空字符串（最多 64 字）")
    try:
        cleaned = [checks.clean(v, name).strip() for v in items]
    except checks.InputError as exc:
        raise AudienceError(str(exc)) from None
    return list(dict.fromkeys(cleaned))


def _ints(value: Any, name: str) -> list[int]:
    items = _list(value, name)
    try:
        return list(dict.fromkeys(checks.integer(v, f"{name} 中的 id", 1) for v in items))
    except checks.InputError as exc:
        raise AudienceError(str(exc)) from None
