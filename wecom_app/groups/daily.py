"""The daily membership check (每日检查群成员): reconcile every managed group against WeCom."""

from __future__ import annotations

import logging
from datetime import time
from typing import Any

from sqlalchemy import select

from wecom_app.errors import AppError, WeComError
from wecom_app.groups.mirror import org_view
from wecom_app.groups.reconcile import reconcile
from wecom_app.groups.rules import RuleError
from wecom_app.jobs import job
from wecom_app.models import ManagedGroup

log = logging.getLogger(__name__)

ACTOR = "daily_check"


def check_all(services: Any, *, actor: str = ACTOR) -> dict[str, Any]:
    """Reconcile every managed group; summarise drift found and changes queued."""
    with services.db.begin() as session:
        chatids = list(session.scalars(select(ManagedGroup.chatid).order_by(ManagedGroup.id)))
        org = org_view(session)  # one snapshot for all groups; the check takes seconds
    summary: dict[str, Any] = {"groups": len(chatids), "drifted": [], "changes_queued": 0,
                               "errors": []}  # fmt: skip
    for chatid in chatids:
        try:
            result = reconcile(services, chatid, actor=actor, cause="每日检查", org=org)
        except (WeComError, RuleError, AppError) as exc:
            log.warning("daily check of %s failed: %s", chatid, exc)
            summary["errors"].append({"chatid": chatid, "error": str(exc)})
            continue
        drift = result.drift
        if (
            drift.get("joined_outside")
            or drift.get("left_outside")
            or result.plan.add
            or (result.plan.remove or drift.get("owner_changed") or drift.get("name_changed"))
        ):
            summary["drifted"].append(
                {"chatid": chatid, **{k: v for k, v in drift.items() if v and k != "at"}}
            )
        summary["changes_queued"] += len(result.plan.add) + len(result.plan.remove)
    return summary


@job("groups_daily_check", daily_at=time(9, 0))
def daily_check(services: Any) -> dict[str, Any]:
    """Every morning at 09:00 (Asia/Shanghai): repair and report membership drift."""
    return check_all(services)
