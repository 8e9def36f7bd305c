"""Managed groups declared in a YAML file (config/groups.example.yaml) and applied in one go.

Every group in the file is validated against the mirror first (unknown departments or tags, more
than 2000 members, bad names); nothing is sent to WeCom unless the whole file is valid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from wecom_app.groups import service
from wecom_app.groups.mirror import org_view
from wecom_app.groups.reconcile import reconcile
from wecom_app.groups.rules import RuleError
from wecom_app.groups.service import GroupSpec
from wecom_app.models import ManagedGroup
from wecom_app.sending import Outbox
from wecom_app.services import Services

ACTOR = "config"


def load_specs(path: str | Path) -> list[GroupSpec]:
    """Read the group declarations from a YAML file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RuleError(f"无法读取群配置 {path}：{exc}") from exc
    items = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise RuleError(f"群配置 {path} 缺少 groups 列表")
    specs = [GroupSpec.from_dict(item) for item in items]
    chatids = [s.chatid for s in specs if s.chatid]
    if len(chatids) != len(set(chatids)):
        raise RuleError("群配置中有重复的 chatid")
    return specs


def apply_config(
    services: Services, outbox: Outbox, path: str | Path, *, dry_run: bool = False
) -> list[dict]:
    """Create, adopt or update each declared group, then reconcile it; return what was done."""
    specs = load_specs(path)
    with services.db.begin() as session:
        org = org_view(session)
        for spec in specs:
            try:
                service.validate(spec, org)
            except RuleError as exc:
                raise RuleError(f"{spec.chatid or spec.name}：{exc}") from None
        known = set(session.scalars(select(ManagedGroup.chatid)))
    results = []
    for spec in specs:
        if dry_run:
            action = "update" if spec.chatid in known else "adopt" if spec.adopt else "create"
            results.append({"chatid": spec.chatid, "name": spec.name, "action": action})
            continue
        results.append(_apply_one(services, outbox, spec, spec.chatid in known))
    return results


def _apply_one(services: Services, outbox: Outbox, spec: GroupSpec, known: bool) -> dict[str, Any]:
    """Bring one declared group into being and queue its reconciliation."""
    if known:
        with services.db.begin() as session:
            group = session.scalars(
                select(ManagedGroup).where(ManagedGroup.chatid == spec.chatid)
            ).one()
            service.define(session, spec, group, services.clock.now())
            group.approval = group.approval or "config"
        action = "update"
    elif spec.adopt:
        service.adopt(services, spec, actor=ACTOR)
        action = "adopt"
    else:
        group, outcome = service.create_now(services, outbox, spec, actor=ACTOR)
        if group.status != "active":
            why = outcome.error if outcome is not None else "已排队，由 worker 创建"
            return {"chatid": group.chatid, "name": spec.name, "action": "create",
                    "status": group.status, "note": why}  # fmt: skip
        action = "create"
    assert spec.chatid is not None
    result = reconcile(services, spec.chatid, actor=ACTOR, cause="apply-config")
    return {"chatid": spec.chatid, "name": spec.name, "action": action,
            "plan": result.plan.to_dict()}  # fmt: skip
