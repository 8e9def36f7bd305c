"""SQLAlchemy 2.x typed models; import this package to register every table on Base.metadata."""

from wecom_app.models.base import Base, UTCDateTime
from wecom_app.models.console import ConsoleAction, ConsoleSession, ConsoleSnapshot
from wecom_app.models.directory import (
    Department,
    DepartmentMember,
    Employee,
    EmployeeHistory,
    EmployeeStatus,
    Tag,
    TagMember,
)
from wecom_app.models.governance import (
    Feedback,
    GroupBlock,
    GroupRequest,
    GroupViolation,
    RequestState,
    Survey,
    SurveyBallot,
    SurveyTally,
)
from wecom_app.models.groups import AuditOutcome, GroupAudit, GroupMember, ManagedGroup
from wecom_app.models.inbox import InboxEvent, InboxStatus
from wecom_app.models.jobs import JobRun
from wecom_app.models.notices import (
    AckChannel,
    CheckIn,
    Handover,
    MemberSend,
    Notice,
    NoticeDepartment,
    NoticeSchedule,
    NoticeStatus,
    Receipt,
    ReceiptState,
    ScheduleStatus,
)
from wecom_app.models.outbox import Hold, OutboxMessage, OutboxStatus
from wecom_app.models.tokens import ApiToken

__all__ = [
    "AckChannel",
    "ApiToken",
    "AuditOutcome",
    "Base",
    "CheckIn",
    "ConsoleAction",
    "ConsoleSession",
    "ConsoleSnapshot",
    "Department",
    "DepartmentMember",
    "Employee",
    "EmployeeHistory",
    "EmployeeStatus",
    "Feedback",
    "GroupAudit",
    "GroupBlock",
    "GroupMember",
    "GroupRequest",
    "GroupViolation",
    "Handover",
    "Hold",
    "InboxEvent",
    "InboxStatus",
    "JobRun",
    "ManagedGroup",
    "MemberSend",
    "Notice",
    "NoticeDepartment",
    "NoticeSchedule",
    "NoticeStatus",
    "OutboxMessage",
    "OutboxStatus",
    "Receipt",
    "ReceiptState",
    "RequestState",
    "ScheduleStatus",
    "Survey",
    "SurveyBallot",
    "SurveyTally",
    "Tag",
    "TagMember",
    "UTCDateTime",
]
