"""The groups file is checked like the policy files: unknown keys and malformed values refused,
each with its line, all at once; then every group against the mirror, all at once too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.world import World, make_world
from wecom_app.cli import main
from wecom_app.groups.config import GroupsFileError, apply_config, load_specs

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "groups.example.yaml"
BAD = """grops: []
groups:
  - chatid: rd-center
    name: 研发中心工作群
    kind: 部门群
    owner: zhaoming
    quiet_hours: yes please
    rules:
      departmnts: [3]
      users: zhaoming
  - name: 无群主
    rules:
      departments:
        - {id: 2, children: false}
  - {chatid: dup, name: a, owner: zhaoming}
  - {chatid: dup, name: b, owner: zhaoming}
"""


def test_every_mistake_is_named_with_its_line_at_once(tmp_path: Path) -> None:
    path = tmp_path / "groups.yaml"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(GroupsFileError) as caught:
        load_specs(path)
    found = [p.removeprefix(f"{path}:") for p in caught.value.problems]
    assert found == [
        "1: grops: 未知的键（可用：groups）",
        "3: groups.0.chatid: 只能由字母和数字组成，至多 32 位",
        "5: groups.0.kind: 须为 高管群、部门工作群、项目群、其他 之一",
        "7: groups.0.quiet_hours: 须为 true 或 false",
        "9: groups.0.rules.departmnts: 未知的键（可用：departments, exclude, include_leaders, "
        "tags, users）",
        "10: groups.0.rules.users: 须为列表，如 [3, 研发中心] 或 [zhangsan, lisi]",
        "11: groups.1.owner: 必填，须为文字",
        "14: groups.1.rules.departments.0.children: 未知的键（可用：id, include_children, name）",
        "16: groups.3.chatid: 与第 3 个群的 chatid 重复",
    ]
    assert str(caught.value).startswith("群配置有 9 处错误，未做任何变更")


def test_the_example_loads_with_its_purposes() -> None:
    specs = load_specs(EXAMPLE)
    assert [s.chatid for s in specs] == ["rdcenter", "executives", "salesleads"]
    assert specs[0].purpose == "研发中心日常工作通知与协作"


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with make_world(database_url, mirror=True) as running:
        yield running


def test_the_mirror_check_lists_every_group_it_refuses(world: World, tmp_path: Path) -> None:
    path = tmp_path / "groups.yaml"
    path.write_text(
        "groups:\n"
        "  - {chatid: a1, name: 甲, owner: zhaoming, rules: {departments: [999]}}\n"
        "  - {chatid: b2, name: 乙, owner: nobody, rules: {departments: [3]}}\n"
        "  - {chatid: c3, name: 丙, owner: zhaoming, rules: {departments: [3]}}\n",
        encoding="utf-8",
    )
    with pytest.raises(GroupsFileError) as caught:
        apply_config(world.services, world.outbox, path)
    assert [p.split(": ", 1)[1] for p in caught.value.problems] == [
        "a1：未知部门：999", "b2：群主 nobody 不是在职员工"]  # fmt: skip
    assert world.calls("appchat/create") == 0
    result = CliRunner().invoke(main, ["groups", "apply-config", str(path), "--dry-run"],
                                env=world.worker_env())  # fmt: skip
    assert result.exit_code == 1 and "群配置有 2 处错误" in result.output
    assert "a1：未知部门：999" in result.output


def test_numbers_are_read_as_text_and_a_list_for_a_chatid_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "groups.yaml"
    path.write_text("groups:\n  - {chatid: 12345, name: 甲, owner: 10086}\n"
                    "  - {chatid: [a], name: 乙, owner: zhaoming}\n", encoding="utf-8")  # fmt: skip
    with pytest.raises(GroupsFileError) as caught:
        load_specs(path)
    assert [p.removeprefix(f"{path}:") for p in caught.value.problems] == [
        "3: groups.1.chatid: 只能由字母和数字组成，至多 32 位"]  # fmt: skip
    path.write_text("groups:\n  - {chatid: 12345, name: 甲, owner: 10086}\n", encoding="utf-8")
    (spec,) = load_specs(path)
    assert (spec.chatid, spec.owner) == ("12345", "10086")
