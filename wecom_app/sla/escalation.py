"""Who an overdue receipt escalates to: direct leaders, then department leaders up the tree.

Departed (or otherwise inactive) leaders are skipped; a level that finds nobody hands over to
the next level at once, so an overdue person whose direct leader left still reaches someone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from wecom_app.models import Department, Employee, EmployeeStatus
from wecom_app.sla.policy import EscalationLevel


@dataclass(frozen=True, slots=True)
class Person:
    """The few facts about an employee that escalation needs."""

    id: int
    userid: str
    display_name: str
    active: bool
    main_department: int | None
    direct_leaders: tuple[str, ...]


@dataclass
class OrgView:
    """Departments (id → parent, leaders) and the people looked up so far, by userid."""

    parents: dict[int, int | None]
    leaders: dict[int, tuple[str, ...]]
    people: dict[str, Person]

    def targets(
        self, person: Person, department: int | None, levels: Sequence[EscalationLevel], start: int
    ) -> tuple[list[str], int]:
        """Active leaders for the first level from `start` that has any new ones, and that level.

        A level skips leaders an earlier level already told (a department leader who is also
        the direct leader hands level 2 to the leader above). Returns ([], len(levels)) when no
        remaining level finds anyone.
        """
        told: set[str] = set()
        for index, level in enumerate(levels):
            found = self._level(person, department, level, told)
            if index >= start and found:
                return found, index + 1
            told.update(found)
        return [], len(levels)

    def _level(
        self, person: Person, department: int | None, level: EscalationLevel, told: set[str]
    ) -> list[str]:
        if level.to == "direct_leaders":
            return [u for u in self._active(person.direct_leaders, person.userid) if u not in told]
        return self._department_leaders(department or person.main_department, person, told)

    def _department_leaders(
        self, department: int | None, person: Person, skip: set[str]
    ) -> list[str]:
        seen: set[int] = set()
        while department is not None and department not in seen:
            seen.add(department)
            found = [
                u for u in self._active(self.leaders.get(department, ()), person.userid)
                if u not in skip
            ]  # fmt: skip
            if found:
                return found
            department = self.parents.get(department)
        return []

    def _active(self, userids: Iterable[str], exclude: str) -> list[str]:
        out = []
        for userid in userids:
            who = self.people.get(userid)
            if who is not None and who.active and userid != exclude and userid not in out:
                out.append(userid)
        return out


def person_of(emp: Any) -> Person:
    """A Person from an Employee row (ORM object or a row of the same columns)."""
    return Person(
        emp.id,
        emp.userid,
        emp.display_name or emp.name,
        emp.status == EmployeeStatus.ACTIVE,
        emp.main_department,
        tuple(emp.direct_leaders or ()),
    )


PERSON_COLUMNS = (
    Employee.id,
    Employee.userid,
    Employee.display_name,
    Employee.name,
    Employee.status,
    Employee.main_department,
    Employee.direct_leaders,
)


def people_by_id(session: Session, ids: Iterable[int]) -> dict[int, Person]:
    """Employees by surrogate id, in chunks."""
    wanted, out = sorted(set(ids)), {}
    for start in range(0, len(wanted), 20_000):
        chunk = wanted[start : start + 20_000]
        for row in session.execute(select(*PERSON_COLUMNS).where(Employee.id.in_(chunk))):
            out[row.id] = person_of(row)
    return out


def org_view(session: Session, people: Iterable[Person]) -> OrgView:
    """Departments and every possible leader of these people, in a few queries."""
    parents, leaders = {}, {}
    for dept_id, parent_id, dept_leaders in session.execute(
        select(Department.id, Department.parent_id, Department.leaders).where(
            Department.deleted.is_(False)
        )
    ):
        parents[dept_id] = parent_id
        leaders[dept_id] = tuple(dept_leaders or ())
    wanted = {u for p in people for u in p.direct_leaders}
    wanted |= {u for group in leaders.values() for u in group}
    found: dict[str, Person] = {}
    ordered = sorted(wanted)
    for start in range(0, len(ordered), 1000):
        chunk = ordered[start : start + 1000]
        for row in session.execute(select(*PERSON_COLUMNS).where(Employee.userid.in_(chunk))):
            found[row.userid] = person_of(row)
    return OrgView(parents, leaders, found)
