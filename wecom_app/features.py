"""Imports every feature module so its registrations (handlers, performers, jobs) run."""

from wecom_app import performers  # noqa: F401
