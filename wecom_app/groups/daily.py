"""The daily membership check (每日检查群成员): reconcile every managed group against WeCom."""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import select

from wecom_app.errors import AppError, CredentialFailing, WeComError, WeComNetworkError
from wecom_app.groups.mirror import org_view
from wecom_app.groups.reconcile import reconcile
from wecom_app.groups.rules import RuleError
from wecom_app.jobs import JobContext
from wecom_app.models import ManagedGroup
from wecom_app.services import Services

log = logging.getLogger(__name__)

ACTOR = "daily_check"


# Answers that mean "stop asking for now": the rest of the groups would get the same.
STOP_ERRCODES = frozenset({45009, 45033})


def check_all(
    services: Services, *, actor: str = ACTOR, stopping: threading.Event | None = None
) -> dict[str, Any]:
    """Reconcile every managed group; summarise drift found and changes queued.

    The check stops early, saying so, when the worker is stopping, when WeCom is unreachable or
    refuses our secret, or when it answers a frequency limit: the next run picks up.
    """
    with services.db.read() as session:
        chatids = list(
            session.scalars(
                select(ManagedGroup.chatid)
                .where(ManagedGroup.status.not_in(("creating", "archived")))
                .order_by(ManagedGroup.id)
            )
        )
        org = org_view(session)  # one snapshot for all groups; the check takes seconds
    summary: dict[str, Any] = {"groups": len(chatids), "drifted": [], "changes_queued": 0,
                               "errors": []}  # fmt: skip
    for index, chatid in enumerate(chatids):
        if stopping is not None and stopping.is_set():
            summary["stopped_early"] = {"checked": index, "reason": "worker stopping"}
            break
        try:
            result = reconcile(services, chatid, actor=actor, cause="每日检查", org=org)
        except (WeComNetworkError, CredentialFailing) as exc:
            summary["stopped_early"] = {"checked": index, "reason": str(exc)}
            break
        except (WeComError, RuleError, AppError) as exc:
            if isinstance(exc, WeComError) and exc.errcode in STOP_ERRCODES:
                summary["stopped_early"] = {"checked": index, "reason": str(exc)}
                break
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


def daily_check(ctx: JobContext) -> dict[str, Any]:
    """Every morning at 09:00 (Asia/Shanghai): repair and report membership drift."""
    return check_all(ctx.services, stopping=ctx.stopping)
