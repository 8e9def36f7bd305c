"""Managed groups declared in a YAML file (config/groups.example.yaml) and applied in one go.

The file is checked like the policy files: unknown keys and malformed values are refused, every
one of them with its line, all at once; then every group is validated against the mirror
(unknown departments or tags, more than 2000 members, bad names). Nothing is sent to WeCom
unless the whole file is valid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from wecom_app.errors import ConfigError
from wecom_app.groups import service
from wecom_app.groups.mirror import org_view
from wecom_app.groups.reconcile import reconcile
from wecom_app.groups.rules import RuleError
from wecom_app.groups.service import GroupSpec
from wecom_app.models import ManagedGroup
from wecom_app.sending import Outbox
from wecom_app.services import Services
from wecom_app.sla.yamlfile import YamlFile

ACTOR = "config"


GROUP_KEYS = {"chatid", "name", "kind", "purpose", "owner", "backup_owner", "rules", "adopt",
              "quiet_hours"}  # fmt: skip
RULE_KEYS = {"departments", "tags", "users", "exclude", "include_leaders"}
DEPARTMENT_KEYS = {"id", "name", "include_children"}


class GroupsFileError(RuleError):
    """A groups file with mistakes: every one of them, each with its line."""

    def __init__(self, problems: list[str]) -> None:
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"群配置有 {len(problems)} 处错误，未做任何变更：\n{lines}")
        self.problems = problems


def load_specs(path: str | Path) -> list[GroupSpec]:
    """Read the group declarations from a YAML file; refuse unknown keys and malformed values,
    naming the line of each, all at once."""
    try:
        doc = YamlFile(path)
    except ConfigError as exc:
        raise GroupsFileError([f"{exc.key}: {exc.reason}"]) from None
    found: list[tuple[int, str]] = []

    def problem(where: tuple[str | int, ...], reason: str) -> None:
        exc = doc.error(where, reason)
        found.append((doc.line_of(where), f"{exc.key}: {exc.reason}"))

    def problems() -> list[str]:
        return [text for _, text in sorted(found, key=lambda f: f[0])]

    for key in doc.data:
        if key != "groups":
            problem((str(key),), "未知的键（可用：groups）")
    items = doc.data.get("groups")
    if not isinstance(items, list):
        problem(("groups",), "须为群定义的列表")
        raise GroupsFileError(problems())
    specs: list[GroupSpec] = []
    seen: dict[str, int] = {}
    for n, item in enumerate(items):
        where: tuple[str | int, ...] = ("groups", n)
        if not isinstance(item, dict):
            problem(where, "须为映射（chatid: …, name: …）")
            continue
        before = len(found)
        _check_group(item, where, problem)
        chatid = item.get("chatid")
        if not isinstance(chatid, str):
            chatid = None  # a wrong type is reported by _check_group
        if chatid and chatid in seen:
            problem((*where, "chatid"), f"与第 {seen[chatid] + 1} 个群的 chatid 重复")
        elif chatid:
            seen[chatid] = n
        if len(found) == before:  # its keys are sound: read it
            specs.append(GroupSpec.from_dict(item))
    if found:
        raise GroupsFileError(problems())
    return specs


def _check_group(item: dict[str, Any], where: tuple[str | int, ...], problem: Any) -> None:
    for key in item:
        if key not in GROUP_KEYS:
            problem((*where, str(key)), f"未知的键（可用：{', '.join(sorted(GROUP_KEYS))}）")
    for key in ("name", "owner", "backup_owner", "chatid", "kind", "purpose"):
        value = item.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            item[key] = str(value)  # YAML reads 10086 (an employee number) as a number
    for key in ("name", "owner"):
        if not isinstance(item.get(key), str) or not item.get(key):
            problem((*where, key), "必填，须为文字")
    for key in ("adopt", "quiet_hours"):
        if key in item and not isinstance(item[key], bool):
            problem((*where, key), "须为 true 或 false")
    chatid = item.get("chatid")
    if chatid is not None and not (isinstance(chatid, str) and service.CHATID.match(chatid)):
        problem((*where, "chatid"), "只能由字母和数字组成，至多 32 位")
    if "kind" in item and item["kind"] not in service.KINDS:
        problem((*where, "kind"), f"须为 {'、'.join(service.KINDS)} 之一")
    rules = item.get("rules")
    if rules is None:
        return
    if not isinstance(rules, dict):
        problem((*where, "rules"), "须为映射（departments: …, users: …）")
        return
    for key, value in rules.items():
        at = (*where, "rules", str(key))
        if key not in RULE_KEYS:
            problem(at, f"未知的键（可用：{', '.join(sorted(RULE_KEYS))}）")
        elif key == "include_leaders" and not isinstance(value, bool):
            problem(at, "须为 true 或 false")
        elif key != "include_leaders" and not isinstance(value, list):
            problem(at, "须为列表，如 [3, 研发中心] 或 [zhangsan, lisi]")
        elif key == "departments":
            for m, dept in enumerate(value):
                if isinstance(dept, dict):
                    for k in dept:
                        if k not in DEPARTMENT_KEYS:
                            problem(
                                (*at, m, str(k)), "未知的键（可用：id, include_children, name）"
                            )
                elif not isinstance(dept, int | str) or isinstance(dept, bool):
                    problem((*at, m), "须为部门 id、名称或 {id: …, include_children: …}")


def apply_config(
    services: Services, outbox: Outbox, path: str | Path, *, dry_run: bool = False
) -> list[dict]:
    """Create, adopt or update each declared group, then reconcile it; return what was done."""
    specs = load_specs(path)
    with services.db.begin() as session:
        org = org_view(session)
        problems = []
        for spec in specs:
            try:
                service.validate(spec, org)
            except RuleError as exc:
                problems.append(f"{path}: {spec.chatid or spec.name}：{exc}")
        if problems:
            raise GroupsFileError(problems)
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
