"""One validation layer for the API: strict types, a 400 that names the field, never a 500."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import API_TOKEN
from tests.world import World, make_world
from wecom_app.bench.mirror import load_mirror

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with make_world(database_url, serve=False) as w:
        load_mirror(w.services.db, w.sim.state.org, w.clock.now())
        yield w


def post(world: World, path: str, data: Any = None, raw: bytes | None = None) -> Any:
    client = world.app.test_client()
    payload = raw if raw is not None else json.dumps(data).encode()
    return client.post(path, data=payload, headers={**AUTH, "Content-Type": "application/json"})


def get(world: World, path: str) -> Any:
    return world.app.test_client().get(path, headers=AUTH)


NOTICE = {"title": "停电通知", "audience": {"users": ["huangyao"]}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**NOTICE, "audience": {"everyone": "false"}}, "everyone"),
        ({**NOTICE, "audience": {"departments": [{"id": 3, "subtree": "false"}]}}, "subtree"),
        ({**NOTICE, "require_ack": "false"}, "require_ack"),
        ({**NOTICE, "title": {"a": 1}}, "title"),
        ({**NOTICE, "title": "停\x00电"}, "title"),
        ({**NOTICE, "body": "\ud800"}, "body"),
        ({**NOTICE, "audience": {"departments": ["²"]}}, "部门 id"),
        ({**NOTICE, "audience": {"departments": ["٣"]}}, "部门 id"),
        ({**NOTICE, "audience": {"departments": [2**40]}}, "部门 id"),
        ({**NOTICE, "audience": {"tags": [True]}}, "tags"),
        ({**NOTICE, "sla_minutes": "٣٠"}, "响应时限"),
        ({**NOTICE, "x": [[[[[[[[[[[[1]]]]]]]]]]]]}, "嵌套过深"),
    ],
)
def test_wrong_input_is_refused_by_name(world: World, body: Any, field: str) -> None:
    resp = post(world, "/api/v1/notices?dry_run=1", body)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert field in resp.get_json()["error"]


def test_true_booleans_still_work(world: World) -> None:
    body = {
        **NOTICE,
        "require_ack": False,
        "audience": {"departments": [{"id": 4, "subtree": False}]},
    }
    resp = post(world, "/api/v1/notices?dry_run=1", body)
    assert resp.status_code == 200 and resp.get_json()["recipients"] > 1


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"[1, 2]",
        b'"title"',
        b"",
        b"\xff\xfe{",
        b'{"title": "a",}',
        b"[" * 5000,
        b'{"title": "a", "sla_minutes": NaN}',
        b'{"sla_minutes": -Infinity}',
    ],
)
def test_a_body_that_is_not_a_json_object_says_so(world: World, raw: bytes) -> None:
    resp = post(world, "/api/v1/notices", raw=raw)
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert "请求体" in error and "标题" not in error


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/employees?limit=abc",
        "/api/v1/employees?department=²",
        "/api/v1/employees?offset=99999999999999999999999",
        "/api/v1/employees?include_children=maybe",
        "/api/v1/employees?status=%00",
        "/api/v1/notices?limit=-5",
        "/api/v1/notices/1?offset=abc",
        "/api/v1/groups/audit?limit=abc",
        "/api/v1/reports/overdue?as_of=9999-12-31",
        "/api/v1/reports/overdue?as_of=0001-01-01",
        "/api/v1/reports/overdue?notice=²",
        "/api/v1/reports/overdue?format=pdf",
    ],
)
def test_wrong_query_parameters_are_400(world: World, path: str) -> None:
    resp = get(world, path)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.get_json()["error"]


def test_unknown_paths_answer_json_in_plain_chinese(world: World) -> None:
    resp = get(world, "/api/v1/nothing-here")
    assert resp.status_code == 404 and resp.get_json() == {"error": "没有这个地址"}
    assert "没有这个地址".encode() in resp.data  # not \\u-escaped
    assert get(world, "/api/v1/notices/%C2%B2").status_code == 404
    assert world.app.test_client().delete("/api/v1/notices", headers=AUTH).status_code == 405


# -- every route, fuzzed ---------------------------------------------------------------------

NASTY = [
    "", "0", "-1", "1", "abc", "²", "٣", "1e3", "9" * 30, str(2**31), str(2**63), "\x00",
    "9999-12-31", "0001-01-01", "2026-13-45", "true", "false", "null", "[]", "{}", "收到",
    "'; DROP TABLE notices; --", "a" * 3000, "#1", "%", "../..", "2026-01-05T09:00+08:00",
]  # fmt: skip
JSON_ATOMS: list[Any] = [
    None, True, False, 0, -1, 2**70, 1.5, 1e308, "", "\x00", "\ud800", "²", "收到", "a" * 5000,
    [], {}, ["huangyao"], [3], [{"id": 3}], {"users": ["huangyao"]},
]  # fmt: skip
FIELDS = ["title", "body", "author", "audience", "type", "sla_minutes", "sla", "require_ack",
          "second_button", "sender", "users", "departments", "tags", "groups", "everyone",
          "post_to_groups", "id", "subtree"]  # fmt: skip
PARAMS = ["limit", "offset", "status", "department", "include_children", "include_deleted",
          "receipts", "dry_run", "as_of", "notice", "format", "chatid", "userid", "action",
          "outcome"]  # fmt: skip


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 4 and roll < 0.25:
        return {rng.choice(FIELDS): _json_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    if depth < 4 and roll < 0.35:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return rng.choice(JSON_ATOMS)


def _body(rng: random.Random) -> bytes:
    if rng.random() < 0.15:
        return rng.randbytes(rng.randrange(0, 30))
    data = {rng.choice(FIELDS): _json_value(rng) for _ in range(rng.randrange(6))}
    if rng.random() < 0.5:
        data.setdefault("title", "测试")
        data.setdefault("audience", {"users": ["huangyao"]})
    return json.dumps(data).encode()


def test_no_input_to_any_route_is_a_500(world: World) -> None:
    rng = random.Random(20261201)
    rules = [r for r in world.app.url_map.iter_rules() if r.rule.startswith("/api/v1/")]
    client = world.app.test_client()
    seen: dict[int, int] = {}
    for _ in range(700):
        rule = rng.choice(rules)
        method = rng.choice(sorted(rule.methods - {"HEAD", "OPTIONS"}))
        path = rule.rule
        for arg in rule.arguments:
            value = rng.choice([*NASTY, "1", "qa-chat"])
            path = path.replace(f"<{arg}>", quote(value, safe="") or "x")
        query = "&".join(
            f"{rng.choice(PARAMS)}={quote(rng.choice(NASTY), safe='')}"
            for _ in range(rng.randrange(4))
        )
        url = f"{path}?{query}" if query else path
        if method == "POST":
            resp = client.post(url, data=_body(rng), headers={**AUTH, "Content-Type": "application/json"})  # fmt: skip
        else:
            resp = client.get(url, headers=AUTH)
        seen[resp.status_code] = seen.get(resp.status_code, 0) + 1
        assert resp.status_code < 500, (method, url, resp.get_data(as_text=True)[:300])
        if resp.mimetype == "application/json":
            assert resp.get_json() is not None
        else:
            assert resp.status_code == 200 and "reports/overdue" in url, (url, resp.mimetype)
    assert seen.get(400, 0) > 50 and seen.get(200, 0) > 50  # both sides were exercised


def test_every_time_in_the_api_is_iso_8601_with_an_offset(world: World) -> None:
    from datetime import datetime

    employees = get(world, "/api/v1/employees?limit=5").get_json()["employees"]
    stamps = [e["joined_at"] for e in employees]
    assert stamps and all(datetime.fromisoformat(s).utcoffset() is not None for s in stamps)
