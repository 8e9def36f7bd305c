"""SLA policies per notice type: response time, reminder points, escalation, penalty.

Two types always exist, as the company rules set them: `notice` (通知: the default, no fine)
and `task` (任务, a leader's task: answered within 30 working minutes or it costs 100元). A
policy file has a `default` section (which `notice` is) and optional `types.<name>` sections
that change those two or add more; a type inherits every key it does not set from the default.
See config/sla-policy.example.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from wecom_app.sla.yamlfile import YamlFile, check_keys

TARGETS = ("direct_leaders", "department_leaders")
# When a hand-over counts as 推诿: to someone outside the giver's department (and below it),
# back to the leader who gave the task, or any hand-over after the task's first.
SHIRKING_RULES = ("outside_department", "back_to_leader", "repeat")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|hour|hours|minutes)?\s*$")


@dataclass(frozen=True)
class EscalationLevel:
    """Escalate once the receipt is overdue by `after` (working time), to `to`."""

    after: timedelta
    to: str  # one of TARGETS


@dataclass(frozen=True)
class SlaPolicy:
    """How one kind of notice is chased: its SLA, reminder fractions, escalation, penalty."""

    reminders: tuple[float, ...] = (0.5, 1.0)
    escalation: tuple[EscalationLevel, ...] = (
        EscalationLevel(timedelta(minutes=15), "direct_leaders"),
        EscalationLevel(timedelta(minutes=60), "department_leaders"),
    )
    penalty: Decimal = Decimal(0)
    currency: str = "CNY"
    sla: timedelta | None = None  # the type's response time; None: the notice's own (30 min)
    label: str = ""  # what people read, e.g. 任务
    # 转交 that count as 推诿 ("对群里能够解决的问题绝不推诿…否则每次罚款50元")
    shirking: frozenset[str] = frozenset(SHIRKING_RULES)
    shirking_penalty: Decimal = Decimal(50)
    urgent: bool = False  # posted into a group even inside its quiet hours


DEFAULT_TYPE = "notice"
TASK = SlaPolicy(sla=timedelta(minutes=30), penalty=Decimal(100), label="任务")
CHECKIN = SlaPolicy(sla=timedelta(minutes=30), label="位置报到")


def builtin_types(default: SlaPolicy) -> dict[str, SlaPolicy]:
    """`notice`, `task` and `checkin` over a default policy (they keep its reminders)."""
    return {
        DEFAULT_TYPE: replace(default, label=default.label or "通知"),
        "task": replace(default, sla=TASK.sla, penalty=TASK.penalty, label=TASK.label),
        "checkin": replace(default, sla=CHECKIN.sla, penalty=CHECKIN.penalty, label=CHECKIN.label),
    }


@dataclass(frozen=True)
class PolicyBook:
    """The default policy and the per-type ones (always at least `notice`, `task` and
    `checkin`)."""

    default: SlaPolicy = SlaPolicy()
    types: dict[str, SlaPolicy] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", {**builtin_types(self.default), **self.types})

    def for_type(self, notice_type: str | None) -> SlaPolicy:
        """The policy for a notice type, falling back to the default."""
        return self.types.get(notice_type or "", self.default)

    def describe(self) -> str:
        """The types for an error message: 'notice（通知）、task（任务）'."""
        return "、".join(f"{n}（{p.label}）" if p.label else n for n, p in self.types.items())

    def __hash__(self) -> int:
        return id(self)


def load_policy(path: str | Path | None, text: str | None = None) -> PolicyBook:
    """Read a policy file; None gives the built-in default. Errors name the line and key."""
    if path is None and text is None:
        return PolicyBook()
    doc = YamlFile(path or "<policy>", text)
    check_keys(doc, (), doc.data, {"default", "types"})
    default = _policy(doc, ("default",), doc.data.get("default") or {}, SlaPolicy())
    types_value = doc.data.get("types") or {}
    check_keys(
        doc, ("types",), types_value, set(types_value) if isinstance(types_value, dict) else set()
    )
    types = builtin_types(default)  # what a file's task section builds on
    for name, section in types_value.items():
        if not _TYPE_NAME.match(str(name)):
            raise doc.error(("types", str(name)), "类型名须为 1-32 个 ASCII 字母、数字、- 或 _")
        types[str(name)] = _policy(
            doc, ("types", str(name)), section or {}, types.get(str(name), default)
        )
    return PolicyBook(types[DEFAULT_TYPE], types)


_TYPE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _policy(doc: YamlFile, path: tuple[str, ...], data: Any, base: SlaPolicy) -> SlaPolicy:
    check_keys(
        doc,
        path,
        data,
        {"reminders", "escalation", "penalty", "sla", "label", "handover", "urgent"},
    )
    reminders = base.reminders
    if "reminders" in data:
        reminders = _reminders(doc, (*path, "reminders"), data["reminders"])
    escalation = base.escalation
    if "escalation" in data:
        escalation = _escalation(doc, (*path, "escalation"), data["escalation"])
    penalty, currency = base.penalty, base.currency
    if "penalty" in data:
        section = data["penalty"]
        check_keys(doc, (*path, "penalty"), section, {"amount", "currency"})
        penalty = _amount(doc, (*path, "penalty", "amount"), section.get("amount", 0))
        currency = str(section.get("currency", currency))
    sla = base.sla
    if "sla" in data:
        sla = _duration(doc, (*path, "sla"), data["sla"])
        if not timedelta(minutes=1) <= sla <= timedelta(days=30):
            raise doc.error((*path, "sla"), "须在 1 分钟到 30 天之间")
    label = str(data.get("label", base.label)).strip()[:16]
    shirking, shirking_penalty = base.shirking, base.shirking_penalty
    if "handover" in data:
        section = data["handover"] or {}
        check_keys(doc, (*path, "handover"), section, {"shirking", "penalty"})
        if "shirking" in section:
            rules = section["shirking"] or []
            unknown = (
                [r for r in rules if r not in SHIRKING_RULES] if isinstance(rules, list) else rules
            )
            if unknown:
                raise doc.error((*path, "handover", "shirking"),
                                f"须为以下规则的列表：{'、'.join(SHIRKING_RULES)}")  # fmt: skip
            shirking = frozenset(rules)
        if "penalty" in section:
            shirking_penalty = _amount(doc, (*path, "handover", "penalty"), section["penalty"])
    urgent = base.urgent
    if "urgent" in data:
        if not isinstance(data["urgent"], bool):
            raise doc.error((*path, "urgent"), "须为 true 或 false")
        urgent = data["urgent"]
    return SlaPolicy(reminders, escalation, penalty, currency, sla, label, shirking,
                     shirking_penalty, urgent)  # fmt: skip


def _reminders(doc: YamlFile, path: tuple[str, ...], value: Any) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise doc.error(path, '须为时限百分比的列表，例如 ["50%", "100%"]')
    out = []
    for i, item in enumerate(value or []):
        text = str(item).strip()
        try:
            frac = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise doc.error((*path, i), f'须为百分比（如 "50%"），实为 {item!r}') from None
        if not 0 < frac <= 10:
            raise doc.error((*path, i), "须大于时限的 0%，且不超过 1000%")
        out.append(frac)
    if out != sorted(set(out)):
        raise doc.error(path, "提醒点须递增且互不相同")
    return tuple(out)


def _escalation(doc: YamlFile, path: tuple[str, ...], value: Any) -> tuple[EscalationLevel, ...]:
    if not isinstance(value, list):
        raise doc.error(path, "须为升级级别的列表 {after, to}")
    levels = []
    for i, item in enumerate(value or []):
        check_keys(doc, (*path, i), item, {"after", "to"})
        to = item.get("to")
        if to not in TARGETS:
            raise doc.error((*path, i, "to"), f"须为 {', '.join(TARGETS)} 之一，实为 {to!r}")
        levels.append(EscalationLevel(_duration(doc, (*path, i, "after"), item.get("after")), to))
    if [lv.after for lv in levels] != sorted(lv.after for lv in levels):
        raise doc.error(path, "各级升级的延迟须递增")
    return tuple(levels)


def _duration(doc: YamlFile, path: tuple[Any, ...], value: Any) -> timedelta:
    match = _DURATION.match(str(value)) if value is not None else None
    if match is None or isinstance(value, bool):
        raise doc.error(path, f'须为时长，如 15（分钟）、"15m" 或 "2h"，实为 {value!r}')
    number, unit = float(match.group(1)), match.group(2) or "m"
    return timedelta(hours=number) if unit.startswith("h") else timedelta(minutes=number)


def _amount(doc: YamlFile, path: tuple[str, ...], value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise doc.error(path, f"须为金额，实为 {value!r}") from None
    if amount < 0 or not amount.is_finite():
        raise doc.error(path, "不能为负数")
    return amount
