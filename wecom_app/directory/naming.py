"""The 部门+姓名 naming policy: a template gives every employee one canonical display name.

Placeholders: `{department}` (main department's name), `{name}` (the employee's name) and
`{region}` (the top-level department above the main one, under the root). `naming_report` lists
who deviates in WeCom's alias field; `apply_aliases` queues the alias writes through the outbox.
"""

from __future__ import annotations

import re
import string
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from wecom_app.directory.diff import DeptRecord, EmployeeRecord
from wecom_app.errors import ConfigError
from wecom_app.models import Employee, EmployeeStatus
from wecom_app.outbox import Lane, enqueue
from wecom_app.settings import Settings

DEFAULT_TEMPLATE = "{department}-{name}"
PLACEHOLDERS = frozenset({"department", "name", "region"})
ROOT_DEPARTMENT = 1
# WeCom documents alias limits of 32 or 64 characters depending on the version; keep to 32.
MAX_ALIAS_CHARS = 32
ALIAS_LANE = "directory_alias"
# Alias writes count against the corp's 10,000 calls/min and 150,000/hour API budget; leave
# most of it to everything else.
ALIAS_PACE = Lane(20000, timedelta(hours=1))
NAMED_STATUSES = (EmployeeStatus.ACTIVE, EmployeeStatus.NOT_ACTIVATED)


def check_template(template: str) -> str:
    """Return the template if it uses only known placeholders and names the person."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ValueError(f"命名模板格式错误：{exc}") from None
    unknown = fields - PLACEHOLDERS
    if unknown:
        raise ValueError(f"未知占位符 {{{sorted(unknown)[0]}}}；可用 {{department}}、"
                         "{name} 或 {region}")  # fmt: skip
    if "name" not in fields:
        raise ValueError("命名模板须包含 {name}")
    return template


@dataclass(frozen=True)
class NamingPolicy:
    """A validated naming template."""

    template: str = DEFAULT_TEMPLATE

    def __post_init__(self) -> None:
        check_template(self.template)

    def render(self, name: str, department: str, region: str) -> str:
        """Fill the template for one person."""
        return self.template.format(name=name, department=department, region=region)

    def display_name(self, record: EmployeeRecord, departments: Mapping[int, DeptRecord]) -> str:
        """The canonical name of one employee given the department tree."""
        main = record.main_department
        dept = departments.get(main) if main is not None else None
        region = region_of(main, departments) if main is not None else None
        region_dept = departments.get(region) if region is not None else None
        return self.render(
            record.name, dept.name if dept else "", region_dept.name if region_dept else ""
        )


def policy_from_settings(settings: Settings) -> NamingPolicy:
    """The policy configured by WECOM_NAMING_TEMPLATE (default 部门-姓名); ConfigError if bad."""
    try:
        return NamingPolicy(settings.naming_template or DEFAULT_TEMPLATE)
    except ValueError as exc:
        raise ConfigError("WECOM_NAMING_TEMPLATE", str(exc)) from None


def region_of(dept_id: int, departments: Mapping[int, DeptRecord]) -> int:
    """The top-level department (directly under the root) above dept_id, or dept_id itself."""
    current = dept_id
    for _ in range(64):  # a broken parent chain must not loop forever
        dept = departments.get(current)
        if dept is None or dept.parent_id in (None, 0) or dept.parent_id == ROOT_DEPARTMENT:
            return current
        current = dept.parent_id
    return current


@dataclass(frozen=True)
class Deviation:
    """One employee whose WeCom alias differs from what the policy wants."""

    userid: str
    name: str
    display_name: str
    alias: str
    wanted_alias: str
    kind: str  # missing, different, duplicate, too_long

    def to_dict(self) -> dict[str, str]:
        """As JSON-able data."""
        return asdict(self)


@dataclass(frozen=True)
class NamedPerson:
    """What the report needs about one employee."""

    id: int
    userid: str
    name: str
    display_name: str
    alias: str


def wanted_aliases(people: Iterable[NamedPerson]) -> dict[str, str]:
    """The alias each person should carry: the display name, disambiguated among duplicates.

    Within a group sharing one display name, an alias that is already a disambiguated form of
    it (张伟2, 张伟(架构师)) is kept; the others get the bare name, then numeric suffixes.
    """
    groups: dict[str, list[NamedPerson]] = defaultdict(list)
    for person in people:
        groups[person.display_name].append(person)
    wanted: dict[str, str] = {}
    for canonical, group in groups.items():
        group.sort(key=lambda p: p.id)
        if len(group) == 1:
            wanted[group[0].userid] = canonical
            continue
        pattern = re.compile(re.escape(canonical) + r"(\d+|\(.+\)|（.+）)?")
        taken: set[str] = set()
        for person in group:
            if pattern.fullmatch(person.alias) and person.alias not in taken:
                wanted[person.userid] = person.alias
                taken.add(person.alias)
        suffix = 1
        for person in group:
            if person.userid in wanted:
                continue
            candidate = canonical
            while candidate in taken:
                suffix += 1
                candidate = f"{canonical}{suffix}"
            wanted[person.userid] = candidate
            taken.add(candidate)
    return wanted


def naming_report(people: list[NamedPerson]) -> list[Deviation]:
    """Everyone whose alias is missing, different, or clashes with someone else's name."""
    wanted = wanted_aliases(people)
    counts: dict[str, int] = defaultdict(int)
    for person in people:
        counts[person.display_name] += 1
    found = []
    for person in sorted(people, key=lambda p: p.id):
        target = wanted[person.userid]
        if person.alias == target:
            continue
        if len(target) > MAX_ALIAS_CHARS:
            kind = "too_long"
        elif counts[person.display_name] > 1:
            kind = "duplicate"
        else:
            kind = "missing" if not person.alias else "different"
        found.append(
            Deviation(person.userid, person.name, person.display_name, person.alias, target, kind)
        )
    return found


def named_people(session: Session) -> list[NamedPerson]:
    """Everyone the policy names: active and not-yet-activated employees."""
    query = select(
        Employee.id, Employee.userid, Employee.name, Employee.display_name, Employee.alias
    ).where(Employee.status.in_(NAMED_STATUSES))
    return [
        NamedPerson(row.id, row.userid, row.name, row.display_name, row.alias or "")
        for row in session.execute(query)
    ]


def apply_aliases(
    session: Session, deviations: Iterable[Deviation], now: datetime, contacts_secret: str | None
) -> int:
    """Queue a `user_update` alias write for every fixable deviation; return how many are new."""
    if not contacts_secret:
        raise ConfigError(
            "WECOM_CONTACTS_SECRET", "写入别名需要配置通讯录同步 Secret（WECOM_CONTACTS_SECRET）"
        )
    queued = 0
    for dev in deviations:
        if dev.kind == "too_long":
            continue
        payload = {"userid": dev.userid, "alias": dev.wanted_alias}
        key = f"directory:alias:{dev.userid}:{dev.wanted_alias}"
        if enqueue(session, "user_update", payload, key, now=now, lane=ALIAS_LANE,
                   ref=("employee", dev.userid)):  # fmt: skip
            queued += 1
    return queued
