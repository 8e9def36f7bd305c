"""Imports every feature module so its registrations (handlers, performers, jobs) run."""

from wecom_app import groups, performers  # noqa: F401
from wecom_app.directory import incremental, sync  # noqa: F401
from wecom_app.notices import acks, delivery, pacing, text  # noqa: F401
from wecom_app.sla import sweeper  # noqa: F401
