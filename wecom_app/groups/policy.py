"""The group governance policy: who approves requests and how long they wait, how often the
member check runs, what follows a breach of a group's rules, and how surveys stay anonymous.

Built in, it is what the company rules say ("发布负面广告信息者警告一次，第二次再发直接清退出群");
a YAML file named by WECOM_APP_GROUP_POLICY changes it (config/group-policy.example.yaml).
Every error names the file, the line and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from wecom_app.errors import ConfigError
from wecom_app.settings import Settings
from wecom_app.sla.yamlfile import YamlFile, check_keys

WARNING, REMOVAL = "warning", "removal"
STEPS = (WARNING, REMOVAL)
OUTSIDE_JOINS = ("remove", "hold")
# WeCom counts appchat/get against the 10,000 calls/min per API; a check more often than this
# gains nothing (WeCom sends no event for chat changes) and crowds the group lane.
MIN_CHECK_EVERY = timedelta(minutes=30)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d)?\s*$")
_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class ConductRule:
    """What follows each breach of one rule within the window: warning, then removal."""

    steps: tuple[str, ...] = (WARNING, REMOVAL)
    block: timedelta = timedelta(days=30)  # no rejoining for this long after a removal
    penalty: Decimal = Decimal(0)

    def step(self, count: int) -> str:
        """The action for the count-th breach (1-based) within the window."""
        return self.steps[min(count, len(self.steps)) - 1]


BUILTIN_RULES = {
    "广告": ConductRule(),
    "刷屏": ConductRule(),
    "人身攻击": ConductRule(),
    "泄密": ConductRule(steps=(REMOVAL,), block=timedelta(days=90)),
}


@dataclass(frozen=True)
class GroupPolicy:
    """One deployment's group governance settings."""

    request_timeout: timedelta = timedelta(hours=72)
    request_remind_after: timedelta = timedelta(hours=24)
    approvers: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group kind → userids
    check_every: timedelta | None = None  # None: once a day at 09:00
    outside_joins: str = "remove"  # or hold: ask the owner, who may adopt the newcomer
    window: timedelta = timedelta(days=90)
    rules: dict[str, ConductRule] = field(default_factory=lambda: dict(BUILTIN_RULES))
    other: ConductRule = ConductRule()  # a breach named in free text
    removal_block: timedelta = timedelta(days=30)  # a direct removal's rejoin block
    feedback_keywords: tuple[str, ...] = ("匿名反馈", "匿名建议")
    min_breakdown: int = 5

    def rule(self, name: str) -> ConductRule:
        """The policy of one rule (a free-text rule follows `other`)."""
        return self.rules.get(name, self.other)

    def __hash__(self) -> int:
        return id(self)

    @classmethod
    def from_settings(cls, settings: Settings) -> GroupPolicy:
        """The configured policy (built in without WECOM_APP_GROUP_POLICY), read once per
        process and file: a changed file takes effect at the next restart, like the SLA's."""
        path = settings.group_policy_file
        if path not in _LOADED:
            try:
                _LOADED[path] = load_group_policy(path)
            except ConfigError as exc:
                raise ConfigError("WECOM_APP_GROUP_POLICY", f"{exc.key}: {exc.reason}") from None
        return _LOADED[path]


_LOADED: dict[str | None, GroupPolicy] = {}


def load_group_policy(path: str | Path | None, text: str | None = None) -> GroupPolicy:
    """Read a group policy file; None gives the built-in policy."""
    if path is None and text is None:
        return GroupPolicy()
    doc = YamlFile(path or "<group-policy>", text)
    data = doc.data
    check_keys(doc, (), data, {"requests", "member_check", "conduct", "surveys"})
    base = GroupPolicy()
    requests = data.get("requests") or {}
    check_keys(doc, ("requests",), requests, {"timeout", "remind_after", "approvers"})
    timeout = _duration(doc, ("requests", "timeout"), requests.get("timeout"), base.request_timeout)
    remind = _duration(
        doc, ("requests", "remind_after"), requests.get("remind_after"), base.request_remind_after
    )
    if remind >= timeout:
        raise doc.error(("requests", "remind_after"), "提醒时间须早于超时时间")
    approvers: dict[str, tuple[str, ...]] = {}
    raw_approvers = requests.get("approvers") or {}
    if not isinstance(raw_approvers, dict):
        raise doc.error(("requests", "approvers"), "须为映射：群类型: [审批人账号]")
    for kind, who in raw_approvers.items():
        people = [who] if isinstance(who, str) else who
        named = isinstance(people, list) and people and all(isinstance(p, str) for p in people)
        if not named:
            raise doc.error(("requests", "approvers", str(kind)), "须为审批人账号或账号列表")
        approvers[str(kind)] = tuple(people)
    check = data.get("member_check") or {}
    check_keys(doc, ("member_check",), check, {"every", "outside_joins"})
    every = None
    if check.get("every") is not None:
        every = _duration(doc, ("member_check", "every"), check.get("every"), timedelta(days=1))
        if every < MIN_CHECK_EVERY:
            raise doc.error(
                ("member_check", "every"), "至少间隔 30 分钟（企业微信不推送群变动，更频繁无益）"
            )
    outside = str(check.get("outside_joins") or base.outside_joins)
    if outside not in OUTSIDE_JOINS:
        raise doc.error(
            ("member_check", "outside_joins"), "须为 remove（移出）或 hold（交群主审批）"
        )
    conduct = data.get("conduct") or {}
    check_keys(doc, ("conduct",), conduct, {"window", "rules", "other", "removal_block"})
    window = _duration(doc, ("conduct", "window"), conduct.get("window"), base.window)
    removal_block = _duration(
        doc, ("conduct", "removal_block"), conduct.get("removal_block"), base.removal_block
    )
    rules = dict(BUILTIN_RULES)
    raw_rules = conduct.get("rules") or {}
    if not isinstance(raw_rules, dict):
        raise doc.error(("conduct", "rules"), "须为映射：规则名: {steps, block, penalty}")
    for name, section in raw_rules.items():
        rules[str(name)] = _rule(doc, ("conduct", "rules", str(name)), section, ConductRule())
    other = _rule(doc, ("conduct", "other"), conduct.get("other"), base.other)
    surveys = data.get("surveys") or {}
    check_keys(doc, ("surveys",), surveys, {"min_breakdown", "feedback_keywords"})
    minimum = surveys.get("min_breakdown", base.min_breakdown)
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 2:
        raise doc.error(("surveys", "min_breakdown"), "须为不小于 2 的整数")
    keywords = surveys.get("feedback_keywords", list(base.feedback_keywords))
    if (
        not isinstance(keywords, list)
        or not keywords
        or not all(isinstance(k, str) and k.strip() for k in keywords)
    ):
        raise doc.error(("surveys", "feedback_keywords"), "须为非空的关键词列表")
    return GroupPolicy(
        request_timeout=timeout, request_remind_after=remind, approvers=approvers,
        check_every=every, outside_joins=outside, window=window, rules=rules, other=other,
        removal_block=removal_block, feedback_keywords=tuple(k.strip() for k in keywords),
        min_breakdown=minimum,
    )  # fmt: skip


def _rule(doc: YamlFile, path: tuple[str, ...], data: Any, base: ConductRule) -> ConductRule:
    if data is None:
        return base
    check_keys(doc, path, data, {"steps", "block", "penalty"})
    steps = data.get("steps", list(base.steps))
    if not isinstance(steps, list) or not steps or any(s not in STEPS for s in steps):
        raise doc.error((*path, "steps"), "须为 warning（警告）/ removal（清退）组成的列表")
    block = _duration(doc, (*path, "block"), data.get("block"), base.block)
    try:
        penalty = Decimal(str(data.get("penalty", base.penalty)))
    except InvalidOperation:
        raise doc.error((*path, "penalty"), "须为金额") from None
    if penalty < 0 or not penalty.is_finite():
        raise doc.error((*path, "penalty"), "不能为负数")
    return ConductRule(tuple(steps), block, penalty)


def _duration(doc: YamlFile, path: tuple[str, ...], value: Any, default: timedelta) -> timedelta:
    if value is None:
        return default
    match = _DURATION.match(str(value)) if not isinstance(value, bool) else None
    if match is None:
        raise doc.error(path, f'须为时长，如 "30m"、"24h" 或 "90d"，实为 {value!r}')
    number, unit = float(match.group(1)), match.group(2) or "h"
    return timedelta(**{_UNITS[unit]: number})
