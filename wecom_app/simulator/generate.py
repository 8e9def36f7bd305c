"""Deterministic generation of large, believable org charts for benchmarks."""

from __future__ import annotations

import random

from wecom_app.simulator.org import (
    ACTIVE,
    DISABLED,
    LEFT,
    NOT_ACTIVATED,
    ROOT_DEPARTMENT,
    Department,
    Member,
    Org,
    Tag,
)

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯"
    "邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚"
    "桂英华玉兰建国志红文斌浩宇欣怡子涵梓轩思远雨婷佳琪晨阳一鸣俊熙"
)
UNITS = ("事业部", "中心", "部", "组", "小组")
TOPICS = (
    "研发",
    "产品",
    "市场",
    "销售",
    "财务",
    "人力资源",
    "行政",
    "法务",
    "客户成功",
    "运维",
    "数据",
    "质量",
    "采购",
    "供应链",
    "品牌",
    "安全",
    "交付",
    "售前",
    "培训",
    "战略",
)
REGIONS = ("华东", "华南", "华北", "西南", "华中", "西北", "东北", "杭州", "上海", "深圳", "北京")
POSITIONS = ("工程师", "高级工程师", "专员", "主管", "经理", "顾问", "分析师", "设计师", "助理")


def _department_name(rng: random.Random, depth: int, serial: int) -> str:
    if depth == 2:
        return f"{rng.choice(TOPICS)}{UNITS[0]}{serial}"
    if depth == 3:
        return f"{rng.choice(REGIONS)}{rng.choice(TOPICS)}{UNITS[1]}"
    return f"{rng.choice(TOPICS)}{UNITS[min(depth - 2, len(UNITS) - 1)]}{serial % 97}"


def _level_sizes(count: int) -> list[int]:
    second = min(count - 1, max(8, count // 300))
    third = min(count - 1 - second, int(count * 0.08))
    fourth = min(count - 1 - second - third, int(count * 0.32))
    return [second, third, fourth, count - 1 - second - third - fourth]


def _build_tree(rng: random.Random, count: int, corp_name: str) -> list[Department]:
    depts = [Department(ROOT_DEPARTMENT, corp_name, 0, 100000000)]
    parents = [ROOT_DEPARTMENT]
    next_id = 2
    # Fill level by level so that most departments sit 3 to 5 levels deep, like real corps.
    for depth, size in enumerate(_level_sizes(count), start=2):
        level = []
        for _ in range(size):
            parent = parents[rng.randrange(len(parents))]
            depts.append(
                Department(next_id, _department_name(rng, depth, next_id), parent, next_id * 10)
            )
            level.append(next_id)
            next_id += 1
        parents = level or parents
    return depts


def _person_name(rng: random.Random) -> str:
    given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(SURNAMES) + given


def _status(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.96:
        return ACTIVE
    if roll < 0.98:
        return NOT_ACTIVATED
    return DISABLED if roll < 0.995 else LEFT


def generate_org(employees: int = 100_000, departments: int = 5_000, seed: int = 20260105) -> Org:
    """Generate a deterministic org chart of the given size with leaders and direct leaders."""
    rng = random.Random(seed)
    corp_name = "杭州云栖数智科技有限公司"
    depts = _build_tree(rng, departments, corp_name)
    by_id = {d.id: d for d in depts}
    members: list[Member] = []
    for index in range(employees):
        # The first member of each department leads it; the rest are spread at random.
        dept = depts[index] if index < len(depts) else depts[rng.randrange(1, len(depts))]
        is_leader = index < len(depts)
        name = _person_name(rng)
        dept_name = dept.name
        alias = f"{dept_name}-{name}" if rng.random() < 0.6 else ""
        member = Member(
            userid=f"u{index:06d}",
            name=name,
            department=[dept.id],
            is_leader_in_dept=[1 if is_leader else 0],
            position=("负责人" if is_leader else rng.choice(POSITIONS)),
            alias=alias,
            status=ACTIVE if is_leader else _status(rng),
        )
        if is_leader:
            dept.department_leader = [member.userid]
        members.append(member)
    for member in members:
        dept = by_id[member.main_department]
        leaders = dept.department_leader
        if member.userid in leaders and dept.parentid:
            leaders = by_id[dept.parentid].department_leader
        member.direct_leader = [u for u in leaders if u != member.userid][:1]
    tags = [
        Tag(1, "管理层", [d.department_leader[0] for d in depts if d.department_leader][:500]),
        Tag(2, "全体研发", [], [d.id for d in depts if d.parentid == ROOT_DEPARTMENT][:3]),
    ]
    return Org(depts, members, tags, corp_name=corp_name)
