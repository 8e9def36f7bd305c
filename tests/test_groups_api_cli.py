"""Managed groups through the JSON API and the `wecom-app groups` CLI, against the simulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import API_TOKEN
from tests.world import World as GroupEnv
from tests.world import make_world
from wecom_app.cli import main
from wecom_app.clock import SystemClock
from wecom_app.groups import service
from wecom_app.groups.rules import GroupRules
from wecom_app.groups.service import GroupSpec

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "groups.example.yaml"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def env(database_url: str) -> Iterator[GroupEnv]:
    with make_world(database_url, mirror=True) as running:
        yield running


def run(env: GroupEnv, *args: str) -> str:
    result = CliRunner().invoke(main, list(args), env=env.worker_env(), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return (
        result.stdout if result.exit_code == 0 else result.output
    )  # JSON on stdout; logs on stderr


def test_api_lists_groups_members_and_audit(env: GroupEnv) -> None:
    spec = GroupSpec(name="测试部工作群", owner="zhaochen",
                     rules=GroupRules.from_dict({"departments": [6]}), chatid="qa01")  # fmt: skip
    group, _ = service.create_now(env.services, env.outbox, spec, actor="api-test")
    assert group.status == "active"
    check_api(env.app.test_client())


def check_api(client: Any) -> None:
    assert client.get("/api/v1/groups").status_code == 401
    (row,) = client.get("/api/v1/groups", headers=AUTH).get_json()["groups"]
    assert row["chatid"] == "qa01" and row["owner"] == "zhaochen" and row["members"] >= 2
    detail = client.get("/api/v1/groups/qa01", headers=AUTH).get_json()
    names = {m["userid"]: m["display_name"] for m in detail["member_list"]}
    assert names["zhaochen"].startswith("测试部-")
    assert detail["rules"]["departments"] == [{"id": 6, "include_children": True}]
    assert client.get("/api/v1/groups/nope", headers=AUTH).status_code == 404
    audit = client.get("/api/v1/groups/audit?chatid=qa01&action=create", headers=AUTH).get_json()
    assert [a["outcome"] for a in audit["audit"]] == ["applied"]


def test_cli_apply_config_plan_reconcile_and_audit(env: GroupEnv) -> None:
    dry = json.loads(run(env, "groups", "apply-config", str(EXAMPLE), "--dry-run", "--json"))
    assert [d["action"] for d in dry] == ["create", "create", "create"]
    assert env.calls("appchat/create") == 0
    applied = json.loads(run(env, "groups", "apply-config", str(EXAMPLE), "--json"))
    assert {a["chatid"] for a in applied} == {"rdcenter", "executives", "salesleads"}
    assert "liangbobo" not in env.chat("rdcenter")["userlist"]
    listed = json.loads(run(env, "groups", "list", "--json"))
    assert len(listed) == 3
    with env.sim.state.lock:
        env.sim.state.chats["rdcenter"]["userlist"].append("liangbobo")
    plan = json.loads(run(env, "groups", "plan", "rdcenter", "--json"))
    assert plan[0]["remove"] == [{"userid": "liangbobo", "reason": "不再符合本群规则"}]
    assert "liangbobo" in env.chat("rdcenter")["userlist"]  # plan changes nothing
    result = json.loads(run(env, "groups", "reconcile", "rdcenter", "--json"))
    assert result["queued"]
    real = env.compose_another(clock=SystemClock())  # the CLI queued on the real clock
    try:
        real.outbox().drain()
    finally:
        real.close()
    assert "liangbobo" not in env.chat("rdcenter")["userlist"]
    rows = json.loads(run(env, "groups", "audit", "--userid", "liangbobo", "--json"))
    assert [(r["action"], r["outcome"]) for r in rows][:2] == [("remove", "applied"),
                                                                ("drift", "observed")]  # fmt: skip
    text = run(env, "groups", "show", "rdcenter")
    assert "研发中心工作群" in text and "研发中心-赵明" in text


def test_cli_rejects_unknown_department(env: GroupEnv) -> None:
    result = CliRunner().invoke(
        main, ["groups", "create", "--name", "群", "--owner", "zhaoming", "--department", "404"],
        env=env.worker_env(),
    )  # fmt: skip
    assert result.exit_code == 1 and "未知部门：404" in result.output
