"""The org-chart diff: plain records of both sides and a pure function comparing them.

`WeComSnapshot` is what WeCom says now; `MirrorSnapshot` is what the database holds. `diff`
returns what a full sync must change, touching nothing; the apply step lives in `sync.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from wecom_app.models import EmployeeStatus
from wecom_app.wecom.types import Department as WeComDepartment
from wecom_app.wecom.types import User


@dataclass(frozen=True, slots=True)
class DeptRecord:
    """A department's mirrored fields."""

    id: int
    name: str
    parent_id: int | None
    order: int
    leaders: tuple[str, ...] = ()

    @classmethod
    def from_wecom(cls, dept: WeComDepartment) -> DeptRecord:
        """Build a record from WeCom's department JSON type."""
        parent = dept.parentid or None
        return cls(dept.id, dept.name, parent, dept.order, tuple(dept.department_leader))


@dataclass(frozen=True, slots=True)
class EmployeeRecord:
    """An employee's mirrored fields; `display_name` follows the naming policy."""

    userid: str
    name: str
    status: str
    wecom_status: int | None = None
    alias: str | None = None
    position: str | None = None
    main_department: int | None = None
    departments: tuple[int, ...] = ()
    leader_in: tuple[int, ...] = ()
    direct_leaders: tuple[str, ...] = ()
    display_name: str = ""

    @classmethod
    def from_user(cls, user: User) -> EmployeeRecord:
        """Build a record from WeCom's member; display_name is filled in by the naming policy."""
        flags = user.is_leader_in_dept
        leader_in = tuple(d for d, flag in zip(user.department, flags, strict=False) if flag)
        main = user.main_department or (user.department[0] if user.department else None)
        return cls(
            userid=user.userid,
            name=user.name,
            status=EmployeeStatus.from_wecom(user.status).value,
            wecom_status=user.status,
            alias=user.alias or None,
            position=user.position or None,
            main_department=main,
            departments=tuple(user.department),
            leader_in=leader_in,
            direct_leaders=tuple(user.direct_leader),
        )

    def changed_fields(self, other: EmployeeRecord) -> list[str]:
        """Names of the fields that differ from another record of the same person."""
        return [name for name in _COMPARED if getattr(self, name) != getattr(other, name)]


_COMPARED = (
    "userid",
    "name",
    "status",
    "wecom_status",
    "alias",
    "position",
    "main_department",
    "departments",
    "leader_in",
    "direct_leaders",
    "display_name",
)


@dataclass
class WeComSnapshot:
    """Everything a full sync learned from WeCom.

    `known_userids` holds members that exist but were not listed (outside the app's
    visibility, learned from user/list_id): they must not be taken for departed.
    """

    departments: dict[int, DeptRecord]
    employees: dict[str, EmployeeRecord]
    known_userids: set[str] = field(default_factory=set)
    # tag id → (name, member userids, whole departments), from tag/list and tag/get
    tags: dict[int, tuple[str, tuple[str, ...], tuple[int, ...]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MirrorEmployee:
    """An employee row as a plain record plus what the diff needs to know about it."""

    id: int
    record: EmployeeRecord
    updated_at: datetime


@dataclass
class MirrorSnapshot:
    """The database's view, loaded as plain records."""

    departments: dict[int, DeptRecord]
    deleted_departments: set[int]
    employees: dict[str, MirrorEmployee]


@dataclass
class DirectoryDiff:
    """What a full sync changes: departments and employees added, changed, gone."""

    departments_added: list[DeptRecord] = field(default_factory=list)
    departments_changed: list[DeptRecord] = field(default_factory=list)
    departments_removed: list[int] = field(default_factory=list)
    added: list[EmployeeRecord] = field(default_factory=list)
    changed: list[tuple[MirrorEmployee, EmployeeRecord]] = field(default_factory=list)
    # a userid change no callback told of: the old row, and the member under the new userid
    renamed: list[tuple[MirrorEmployee, EmployeeRecord]] = field(default_factory=list)
    departed: list[MirrorEmployee] = field(default_factory=list)
    unchanged: int = 0

    def summary(self) -> dict[str, int]:
        """Counts for humans and `--json`."""
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "renamed": len(self.renamed),
            "departed": len(self.departed),
            "unchanged": self.unchanged,
            "departments_added": len(self.departments_added),
            "departments_changed": len(self.departments_changed),
            "departments_removed": len(self.departments_removed),
        }


def diff(mirror: MirrorSnapshot, wecom: WeComSnapshot, fetched_at: datetime) -> DirectoryDiff:
    """Compare the mirror with WeCom.

    Rows the mirror changed after `fetched_at` (a callback applied while the sync was fetching)
    are newer than the snapshot and are left alone; the next sync compares them again.
    """
    result = DirectoryDiff()
    _diff_departments(mirror, wecom, result)
    for userid, record in wecom.employees.items():
        current = mirror.employees.get(userid)
        if current is None:
            result.added.append(record)
        elif current.updated_at > fetched_at:
            result.unchanged += 1
        elif current.record.changed_fields(record):
            result.changed.append((current, record))
        else:
            result.unchanged += 1
    for userid, current in mirror.employees.items():
        if userid in wecom.employees:
            continue
        gone = userid not in wecom.known_userids
        leaving = gone and current.record.status != EmployeeStatus.DEPARTED
        if leaving and current.updated_at <= fetched_at:
            result.departed.append(current)
            continue
        result.unchanged += 1
    _pair_renames(result)
    return result


def _pair_renames(result: DirectoryDiff) -> None:
    """Take a vanished member and a newcomer for one person whose userid changed, when sure.

    A departure always comes with `delete_user` (or status 5), so a member who vanished without
    one and a newcomer of the same name are one person under a new userid when nothing else
    could be meant: the newcomer sits in the vanished member's departments, or the vanished
    member already went out of sight through an `update_user` (what a thin rename looks like);
    and exactly one vanished member and one newcomer carry that name.
    """
    if not result.departed or not result.added:
        return
    vanished: dict[str, list[MirrorEmployee]] = {}
    for member in result.departed:
        vanished.setdefault(member.record.name, []).append(member)
    newcomers: dict[str, list[EmployeeRecord]] = {}
    for record in result.added:
        newcomers.setdefault(record.name, []).append(record)
    paired: set[str] = set()
    for name, gone in vanished.items():
        came = newcomers.get(name, [])
        if len(gone) != 1 or len(came) != 1 or not name:
            continue
        old, new = gone[0], came[0]
        hidden = old.record.status == EmployeeStatus.OUT_OF_SIGHT
        if hidden or set(old.record.departments) == set(new.departments):
            result.renamed.append((old, new))
            paired.update((old.record.userid, new.userid))
    if paired:
        result.departed = [m for m in result.departed if m.record.userid not in paired]
        result.added = [r for r in result.added if r.userid not in paired]


def _diff_departments(mirror: MirrorSnapshot, wecom: WeComSnapshot, out: DirectoryDiff) -> None:
    for dept_id, record in wecom.departments.items():
        current = mirror.departments.get(dept_id)
        if current is None:
            out.departments_added.append(record)
        elif current != record or dept_id in mirror.deleted_departments:
            out.departments_changed.append(record)
    out.departments_removed = sorted(
        d
        for d in mirror.departments
        if d not in wecom.departments and d not in mirror.deleted_departments
    )


def by_userid(records: Iterable[EmployeeRecord]) -> dict[str, EmployeeRecord]:
    """Index records by userid; a member listed in several departments appears once."""
    return {r.userid: r for r in records}
