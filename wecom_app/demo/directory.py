"""Demo step: the org chart mirrored by a full sync, 部门+姓名 names, the naming report."""

from __future__ import annotations

from wecom_app.demo.context import Demo


def run(demo: Demo) -> None:
    """Sync the simulator's org, show some mirrored employees and who deviates from the policy."""
    demo.section("通讯录镜像 / org-chart mirror (full sync)")
    demo.say("全量同步：拉取部门树和各部门成员，与镜像比对后一次性写入；没有变化时什么也不写。")
    demo.say("worker 每天 02:00 的 directory_full_sync 任务做同样的事（当天未跑过时启动后补跑）。")
    demo.cli("sync")

    demo.section("镜像中的员工 / mirrored employees with canonical names")
    with demo.api as api:
        answer = api.get(
            "/api/v1/employees", params={"department": 3, "include_children": 1, "limit": 6}
        ).json()
    demo.say("GET /api/v1/employees?department=3&include_children=1  (研发中心及下级部门)")
    for emp in answer["employees"]:
        leader = "（负责人）" if emp["leader_in"] else ""
        demo.say(f"  {emp['userid']:<16} {emp['display_name']:<14} {emp['status']}{leader}")

    demo.section("命名规范 部门-姓名 / naming report (dry run)")
    demo.cli("directory naming --limit 8")
