"""The group governance policy file: the shipped example is the built-in policy, and every
mistake is refused with its file, line and key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from wecom_app.errors import ConfigError
from wecom_app.groups.policy import REMOVAL, WARNING, GroupPolicy, load_group_policy

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "group-policy.example.yaml"


def test_the_example_is_the_built_in_policy_with_an_approver_for_executives() -> None:
    shipped, built_in = load_group_policy(EXAMPLE), GroupPolicy()
    assert shipped.approvers == {"高管群": ("liangyangmin",)}
    for key in ("request_timeout", "request_remind_after", "check_every", "outside_joins",
                "window", "rules", "other", "removal_block", "feedback_keywords",
                "min_breakdown"):  # fmt: skip
        assert getattr(shipped, key) == getattr(built_in, key), key


def test_the_steps_follow_the_company_rule() -> None:
    ads = GroupPolicy().rule("广告")
    assert [ads.step(n) for n in (1, 2, 3)] == [WARNING, REMOVAL, REMOVAL]
    assert GroupPolicy().rule("泄密").step(1) == REMOVAL
    assert GroupPolicy().rule("在群里卖保险").step(1) == WARNING  # free text follows `other`


def test_durations_and_a_custom_rule() -> None:
    policy = load_group_policy(None, "member_check:\n  every: 6h\nconduct:\n  rules:\n"
                                     "    迟到: {steps: [warning, warning, removal], penalty: 20}\n")  # fmt: skip
    assert policy.check_every == timedelta(hours=6)
    rule = policy.rule("迟到")
    assert rule.step(2) == WARNING and rule.step(3) == REMOVAL and str(rule.penalty) == "20"


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("requets: {}\n", ":1", "未知的键"),
        ("requests:\n  timeout: soon\n", ":2", "须为时长"),
        ("requests:\n  timeout: 2h\n  remind_after: 3h\n", ":3", "提醒时间须早于超时时间"),
        ("requests:\n  approvers:\n    项目群: 3\n", ":3", "审批人账号"),
        ("member_check:\n  every: 5m\n", ":2", "至少间隔 30 分钟"),
        ("member_check:\n  outside_joins: kick\n", ":2", "remove"),
        ("conduct:\n  rules:\n    广告: {steps: [ban]}\n", ":3", "warning"),
        ("conduct:\n  other: {penalty: -5}\n", ":2", "不能为负数"),
        ("surveys:\n  min_breakdown: 1\n", ":2", "不小于 2"),
    ],
)
def test_mistakes_name_the_line_and_key(text: str, where: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_group_policy("policy.yaml", text)
    assert caught.value.key == f"policy.yaml{where}" and says in caught.value.reason


def test_a_bad_file_stops_start_up_naming_the_setting(tmp_path: Path) -> None:
    from tests.conftest import base_settings
    from wecom_app.settings import load_settings

    bad = tmp_path / "policy.yaml"
    bad.write_text("conduct:\n  window: forever\n", encoding="utf-8")
    settings = load_settings(**base_settings(group_policy_file=str(bad)))
    with pytest.raises(ConfigError) as caught:
        GroupPolicy.from_settings(settings)
    assert caught.value.key == "WECOM_APP_GROUP_POLICY"
    assert f"{bad}:2" in caught.value.reason and "须为时长" in caught.value.reason
