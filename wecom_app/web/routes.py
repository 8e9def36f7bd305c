"""Imports every feature module that adds routes to the API blueprint."""

from wecom_app.directory import api as directory_api  # noqa: F401
from wecom_app.groups import api as groups_api  # noqa: F401
from wecom_app.notices import api as notices_api  # noqa: F401
from wecom_app.sla import api as sla_api  # noqa: F401
