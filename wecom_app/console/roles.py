"""Who is looking, and what they may see: decided on the server, for every page and query.

- Administrators and HR, named in settings by userid (WECOM_CONSOLE_ADMINS) or by tag
  (WECOM_CONSOLE_ADMIN_TAGS), see and act on everything.
- A department leader (from the mirror's `leader_in`) sees and acts on their departments and
  everything below them.
- A group owner sees the managed groups they own.
- Everyone sees their own notices.

A page asks the viewer (`Viewer.sees_department`, `Viewer.scope`) and answers 403 when the
answer is no; queries filter by `scope` so a list never carries what its reader may not see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wecom_app.directory.queries import department_subtree_ids
from wecom_app.models import Employee, EmployeeStatus, ManagedGroup, Tag, TagMember


@dataclass(frozen=True)
class AdminRule:
    """Who counts as an administrator: userids and tags (ids or names), from settings."""

    userids: frozenset[str] = frozenset()
    tags: tuple[str, ...] = ()

    @classmethod
    def parse(cls, userids: str | None, tags: str | None) -> AdminRule:
        """Read the comma-separated settings; blanks are ignored."""
        return cls(
            frozenset(u.strip().lower() for u in _items(userids)),
            tuple(t.strip() for t in _items(tags)),
        )

    def holds(self, session: Session, userid: str, departments: Iterable[int] = ()) -> bool:
        """Whether this member (sitting in these departments) is an administrator."""
        if userid.lower() in self.userids:
            return True
        if not self.tags:
            return False
        ids = [int(t) for t in self.tags if t.isdigit()]
        names = [t for t in self.tags if not t.isdigit()]
        tag_ids = set(ids) | set(session.scalars(select(Tag.id).where(Tag.name.in_(names))))
        if not tag_ids:
            return False
        direct = session.scalar(
            select(func.count())
            .select_from(TagMember)
            .where(TagMember.tag_id.in_(tag_ids), func.lower(TagMember.userid) == userid.lower())
        )
        if direct:
            return True
        depts = set(
            session.scalars(
                select(TagMember.department_id).where(
                    TagMember.tag_id.in_(tag_ids), TagMember.department_id.is_not(None)
                )
            )
        )
        if not depts:
            return False
        covered = department_subtree_ids(session, {d for d in depts if d is not None})
        return bool(set(departments) & covered)


def _items(text: str | None) -> Iterable[str]:
    return [part for part in (text or "").replace("，", ",").split(",") if part.strip()]


@dataclass(frozen=True)
class Viewer:
    """A signed-in member and what they may see."""

    userid: str
    name: str
    display_name: str
    employee_id: int | None
    admin: bool = False
    led: frozenset[int] = frozenset()  # departments they lead
    scope: frozenset[int] | None = frozenset()  # departments they see; None: all
    owned_groups: frozenset[int] = field(default_factory=frozenset)

    @property
    def leader(self) -> bool:
        """Whether they lead at least one department."""
        return bool(self.led)

    @property
    def sees_others(self) -> bool:
        """Whether any page shows them people other than themselves."""
        return self.admin or self.leader

    @property
    def role_label(self) -> str:
        """How the console names their role."""
        if self.admin:
            return "管理员/人事"
        if self.leader:
            return "部门负责人"
        return "员工"

    def sees_department(self, department_id: int | None) -> bool:
        """Whether this department's people and figures are theirs to see."""
        if self.scope is None:
            return True
        return department_id is not None and department_id in self.scope

    def sees_group(self, group_id: int) -> bool:
        """Whether they may open this managed group."""
        return self.admin or group_id in self.owned_groups


def viewer_for(session: Session, userid: str, admins: AdminRule) -> Viewer | None:
    """The viewer for a signed-in member, or None if they are not an active employee."""
    emp = session.scalars(select(Employee).where(Employee.userid == userid)).one_or_none()
    if emp is None:  # WeCom userids ignore case; the exact match above uses the index
        emp = session.scalars(
            select(Employee).where(func.lower(Employee.userid) == userid.lower())
        ).one_or_none()
    if emp is None or emp.status != EmployeeStatus.ACTIVE:
        return None
    admin = admins.holds(session, emp.userid, emp.departments or ())
    led = frozenset(emp.leader_in or ())
    scope: frozenset[int] | None
    if admin:
        scope = None
    elif led:
        scope = frozenset(department_subtree_ids(session, led))
    else:
        scope = frozenset()
    owned = frozenset(
        session.scalars(
            select(ManagedGroup.id).where(
                (ManagedGroup.owner_id == emp.id) | (ManagedGroup.backup_owner_id == emp.id)
            )
        )
    )
    return Viewer(
        userid=emp.userid,
        name=emp.name,
        display_name=emp.display_name,
        employee_id=emp.id,
        admin=admin,
        led=led,
        scope=scope,
        owned_groups=owned,
    )
