"""Pure core of managed groups: rule evaluation and membership plans."""

from __future__ import annotations

import pytest

from wecom_app.groups.plan import make_plan
from wecom_app.groups.rules import GroupRules, OrgView, Person, RuleError, desired_members


def org() -> OrgView:
    view = OrgView(departments={1: ("公司", None), 2: ("研发", 1), 3: ("测试", 2), 4: ("财务", 1)})
    people = [
        Person("boss", True, (1,), (1,)),
        Person("dev1", True, (2,), (2,)),
        Person("dev2", True, (2,)),
        Person("qa1", True, (3,)),
        Person("qa2", False, (3,)),  # disabled or departed
        Person("fin1", True, (4,)),
    ]
    view.people = {p.userid: p for p in people}
    view.tags = {7: ("消防安全员", frozenset({"fin1"}), frozenset({3}))}
    return view


def test_departments_with_and_without_children() -> None:
    rules = GroupRules.from_dict({"departments": [2]})
    assert set(desired_members(rules, org())) == {"dev1", "dev2", "qa1"}
    only = GroupRules.from_dict({"departments": [{"id": 2, "include_children": False}]})
    assert set(desired_members(only, org())) == {"dev1", "dev2"}


def test_names_tags_users_exclusions_and_leaders() -> None:
    rules = GroupRules.from_dict(
        {
            "departments": [{"name": "测试", "include_children": False}],
            "tags": ["消防安全员"],
            "users": ["boss"],
            "exclude": ["fin1"],
        }
    )
    members = desired_members(rules, org())
    assert members == {"qa1": "部门：测试", "boss": "指定成员"}
    leaders = GroupRules.from_dict({"departments": [4], "include_leaders": True})
    assert set(desired_members(leaders, org())) == {"fin1"}
    top = GroupRules.from_dict({"departments": [{"id": 1, "include_children": False}],
                                "include_leaders": True})  # fmt: skip
    assert set(desired_members(top, org())) == {"boss"}


def test_unknown_references_are_rejected_with_a_message() -> None:
    for rules, message in [
        ({"departments": [99]}, "未知部门：99"),
        ({"departments": ["不存在的部门"]}, "未知部门"),
        ({"tags": [8]}, "未知标签"),
        ({"users": ["ghost"]}, "未知成员：ghost"),
    ]:
        with pytest.raises(RuleError, match=message):
            desired_members(GroupRules.from_dict(rules), org())


def test_more_than_2000_members_is_rejected() -> None:
    view = org()
    for i in range(2001):
        view.people[f"u{i}"] = Person(f"u{i}", True, (4,))
    with pytest.raises(RuleError, match="超过企业微信群上限 2000"):
        desired_members(GroupRules.from_dict({"departments": [4]}), view)


def test_plan_is_one_call_with_adds_removes_owner_and_name() -> None:
    plan = make_plan("c1", {"a": "r", "b": "r", "c": "r"}, ["a", "x"], actual_owner="a",
                     preferred_owners=["b"], actual_name="旧", desired_name="新")  # fmt: skip
    assert (plan.add, plan.remove, plan.owner, plan.name) == (("b", "c"), ("x",), "b", "新")
    (call,) = plan.updates()
    assert call.payload("c1") == {"chatid": "c1", "add_user_list": ["b", "c"],
                                  "del_user_list": ["x"], "owner": "b", "name": "新"}  # fmt: skip


def test_departing_owner_is_replaced_before_removal() -> None:
    plan = make_plan("c1", {"b": "r", "c": "r"}, ["a", "b", "c", "d"], actual_owner="a",
                     preferred_owners=[None, "c"])  # fmt: skip
    first, second = plan.updates()
    assert (first.owner, first.remove) == ("c", ("d",))
    assert second.remove == ("a",) and second.owner is None


def test_queued_changes_are_not_planned_again() -> None:
    plan = make_plan("c1", {"a": "r", "b": "r"}, ["a", "x"], actual_owner="a",
                     pending_add=["b"], pending_remove=["x"])  # fmt: skip
    assert plan.empty and plan.updates() == []
