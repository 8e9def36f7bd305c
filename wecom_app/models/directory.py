"""The org-chart mirror: departments, employees, their memberships, tags and change history.

Employees have a surrogate integer id, so a WeCom userid rename (NewUserID) keeps every group
membership, receipt and history row attached.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from wecom_app.models.base import Base, BigId, UTCDateTime


class EmployeeStatus(StrEnum):
    """An employee's state, from WeCom's status 1/2/4/5 or absence from the directory."""

    ACTIVE = "active"  # 1
    DISABLED = "disabled"  # 2
    NOT_ACTIVATED = "not_activated"  # 4
    DEPARTED = "departed"  # 5, deleted, or no longer in the directory
    OUT_OF_SIGHT = "out_of_sight"  # outside the app's visibility: not (known to have) left

    @classmethod
    def from_wecom(cls, status: int | None) -> EmployeeStatus:
        """Map WeCom's numeric status; unknown values count as active only when 1."""
        return {1: cls.ACTIVE, 2: cls.DISABLED, 4: cls.NOT_ACTIVATED, 5: cls.DEPARTED}.get(
            status or 1, cls.ACTIVE
        )


class Department(Base):
    """A department as WeCom has it (id 1 is the root)."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(255))
    parent_id: Mapped[int | None] = mapped_column(Integer, index=True)
    order: Mapped[int] = mapped_column(BigId, default=0)
    leaders: Mapped[list[str]] = mapped_column(JSON, default=list)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Employee(Base):
    """A member of the corp as mirrored from WeCom."""

    __tablename__ = "employees"
    __table_args__ = (Index("ix_employees_status_main_department", "status", "main_department"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    userid: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(128))  # canonical 部门+姓名 per policy
    alias: Mapped[str | None] = mapped_column(String(128))
    position: Mapped[str | None] = mapped_column(String(128))
    main_department: Mapped[int | None] = mapped_column(Integer)
    departments: Mapped[list[int]] = mapped_column(JSON, default=list)
    leader_in: Mapped[list[int]] = mapped_column(JSON, default=list)  # departments they lead
    direct_leaders: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=EmployeeStatus.ACTIVE)
    wecom_status: Mapped[int | None] = mapped_column(Integer)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    departed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    departed_source: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    memberships: Mapped[list[DepartmentMember]] = relationship(
        back_populates="employee", cascade="all, delete-orphan"
    )

    @property
    def is_active(self) -> bool:
        """Whether the employee counts for groups, notices and SLAs."""
        return self.status == EmployeeStatus.ACTIVE


class DepartmentMember(Base):
    """Employee ↔ department, one row each (WeCom lets a member sit in several departments)."""

    __tablename__ = "department_members"

    employee_id: Mapped[int] = mapped_column(
        ForeignKey("employees.id", ondelete="CASCADE"), primary_key=True
    )
    department_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
    is_leader: Mapped[bool] = mapped_column(Boolean, default=False)

    employee: Mapped[Employee] = relationship(back_populates="memberships")


class Tag(Base):
    """A WeCom tag (标签)."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(128), default="")


class TagMember(Base):
    """A tag's member: an employee (by userid) or a whole department."""

    __tablename__ = "tag_members"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tag_id: Mapped[int] = mapped_column(Integer, index=True)
    userid: Mapped[str | None] = mapped_column(String(64), index=True)
    department_id: Mapped[int | None] = mapped_column(Integer)


class EmployeeHistory(Base):
    """One change to an employee: joined, moved, renamed, userid_changed, disabled, left, ..."""

    __tablename__ = "employee_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    employee_id: Mapped[int] = mapped_column(
        ForeignKey("employees.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    source: Mapped[str] = mapped_column(String(32))  # full_sync, change_contact, unsubscribe...
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
