"""The simulator's tokens, directory APIs, call counting and fault injection, over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests.simulator_fixtures import CORP_ID, Api
from wecom_app.simulator import SimulatorServer


def test_gettoken_issues_distinct_tokens_per_secret(api: Api) -> None:
    answer = api.http.get(
        "/cgi-bin/gettoken", params={"corpid": CORP_ID, "corpsecret": "sim-app-secret"}
    ).json()
    assert answer["errcode"] == 0 and answer["expires_in"] == 7200
    assert api.token("app") != api.token("contacts")


def test_gettoken_rejects_wrong_corpid_and_secret(api: Api) -> None:
    wrong_corp = api.http.get("/cgi-bin/gettoken", params={"corpid": "x", "corpsecret": "y"})
    assert wrong_corp.json()["errcode"] == 40013
    wrong_secret = api.http.get("/cgi-bin/gettoken", params={"corpid": CORP_ID, "corpsecret": "y"})
    assert wrong_secret.json()["errcode"] == 40001


def test_many_wrong_secrets_ban_the_caller_for_an_hour(api: Api) -> None:
    api.sim_post("config", {"limits": {"wrong_secrets_per_hour": 3}})
    try:
        bad = {"corpid": CORP_ID, "corpsecret": "guess"}
        codes = [api.http.get("/cgi-bin/gettoken", params=bad).json()["errcode"] for _ in range(4)]
        assert codes == [40001, 40001, 40001, 45009]
        good = {"corpid": CORP_ID, "corpsecret": "sim-app-secret"}
        assert api.http.get("/cgi-bin/gettoken", params=good).json()["errcode"] == 45009
        api.sim_post("clock", {"advance": 3601})
        assert api.http.get("/cgi-bin/gettoken", params=good).json()["errcode"] == 0
    finally:
        api.sim_post("config", {"limits": {"wrong_secrets_per_hour": 100}})


def test_missing_token_is_41001_and_unknown_is_40014(api: Api) -> None:
    assert (
        api.http.get("/cgi-bin/user/get", params={"userid": "zhaoming"}).json()["errcode"] == 41001
    )
    answer = api.http.get(
        "/cgi-bin/user/get", params={"access_token": "nope", "userid": "zhaoming"}
    )
    assert answer.json()["errcode"] == 40014


def test_token_expires_by_the_clock(api: Api, server: SimulatorServer) -> None:
    assert api.get("user/get", userid="zhaoming")["errcode"] == 0
    api.sim_post("clock", {"advance": 7200})
    assert api.get("user/get", userid="zhaoming")["errcode"] == 42001


def test_revoked_token_is_refused(api: Api) -> None:
    assert api.get("user/get", userid="zhaoming")["errcode"] == 0
    assert api.sim_post("tokens/revoke", {"kind": "app"})["revoked"] == 1
    assert api.get("user/get", userid="zhaoming")["errcode"] == 40014
    api.tokens.clear()
    assert api.get("user/get", userid="zhaoming")["errcode"] == 0
    api.sim_post("tokens/revoke", {"token": api.token("app"), "expire": True})
    assert api.get("user/get", userid="zhaoming")["errcode"] == 42001


def test_department_list_returns_subtree_with_names(api: Api) -> None:
    depts = api.get("department/list", id=3)["department"]
    assert [d["id"] for d in depts] == [3, 4, 5, 6]
    assert depts[1]["name"] == "平台研发部" and depts[1]["parentid"] == 3
    assert len(api.get("department/list")["department"]) == 14
    assert api.get("department/list", id=999)["errcode"] == 60123


def test_department_simplelist_and_get(api: Api) -> None:
    ids = api.get("department/simplelist")["department_id"]
    assert {"id": 1, "parentid": 0, "order": 100000000} in ids
    assert api.get("department/get", id=12)["department"]["name"] == "人力资源部"


def test_user_list_is_not_recursive_and_has_details(api: Api) -> None:
    assert [u["userid"] for u in api.get("user/list", department_id=3)["userlist"]] == [
        "zhaoming",
        "liuxuanmin",
    ]
    platform = api.get("user/list", department_id=4)["userlist"]
    assert len(platform) == 28
    assert {"name", "alias", "position", "direct_leader", "is_leader_in_dept", "status"} <= set(
        platform[0]
    )
    simple = api.get("user/simplelist", department_id=4)["userlist"]
    assert set(simple[0]) == {"userid", "name", "department", "open_userid"}


def test_user_get_unknown_is_60111(api: Api) -> None:
    assert api.get("user/get", userid="zhaoming")["name"] == "赵明"
    assert api.get("user/get", userid="ghost")["errcode"] == 60111


def test_contacts_details_can_be_blocked_with_48009(api: Api) -> None:
    api.sim_post("config", {"contacts_details_blocked": True})
    try:
        assert api.get("user/get", kind="contacts", userid="zhaoming")["errcode"] == 48009
        assert api.get("user/get", userid="zhaoming")["errcode"] == 0
    finally:
        api.sim_post("config", {"contacts_details_blocked": False})


def test_list_id_pages_with_cursor_and_needs_contacts_secret(api: Api) -> None:
    assert api.post("user/list_id", {"limit": 10})["errcode"] == 48002
    seen, cursor = [], ""
    while True:
        page = api.post("user/list_id", {"cursor": cursor, "limit": 40}, kind="contacts")
        assert page["errcode"] == 0
        seen += page["dept_user"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len({e["userid"] for e in seen}) == 149
    assert {"userid": "liangyangmin", "department": 1} in seen
    assert api.post("user/list_id", {"limit": 10001}, kind="contacts")["errcode"] != 0


def test_user_update_changes_alias_with_contacts_secret_only(api: Api) -> None:
    body = {"userid": "zhaoming", "alias": "研发中心-赵明"}
    assert api.post("user/update", body)["errcode"] == 48002
    assert api.post("user/update", body, kind="contacts")["errcode"] == 0
    assert api.get("user/get", userid="zhaoming")["alias"] == "研发中心-赵明"
    too_long = {"userid": "zhaoming", "alias": "长" * 65}
    assert api.post("user/update", too_long, kind="contacts")["errcode"] != 0
    assert (
        api.post("user/update", {"userid": "ghost", "alias": "x"}, kind="contacts")["errcode"]
        == 60111
    )


def test_calls_are_counted_per_path(api: Api) -> None:
    api.get("user/get", userid="zhaoming")
    api.get("user/get", userid="ghost")
    calls = api.sim_get("calls")
    assert calls["calls"]["/cgi-bin/user/get"] == 2
    assert calls["total"] == 3  # and one gettoken


def test_injected_errcode_faults_then_recover(api: Api) -> None:
    api.token("app")
    api.sim_post("faults", {"path": "/cgi-bin/user/get", "errcode": -1, "count": 2})
    assert api.get("user/get", userid="zhaoming")["errcode"] == -1
    assert api.get("user/get", userid="zhaoming")["errcode"] == -1
    assert api.get("user/get", userid="zhaoming")["errcode"] == 0
    api.sim_post("faults", {"path": "*", "errcode": 45009})
    assert api.get("department/get", id=1)["errcode"] == 45009


def test_injected_http_500_drop_and_delay(api: Api) -> None:
    token = api.token("app")
    api.sim_post("faults", {"path": "/cgi-bin/user/get", "kind": "http500"})
    params = {"access_token": token, "userid": "zhaoming"}
    assert api.http.get("/cgi-bin/user/get", params=params).status_code == 500
    api.sim_post("faults", {"path": "/cgi-bin/user/get", "kind": "drop"})
    with pytest.raises(httpx.RemoteProtocolError):
        api.http.get("/cgi-bin/user/get", params=params)
    api.sim_post("faults", {"path": "/cgi-bin/user/get", "kind": "delay", "delay": 0.3})
    with pytest.raises(httpx.ReadTimeout):
        api.http.get("/cgi-bin/user/get", params=params, timeout=0.1)
    assert api.get("user/get", userid="zhaoming")["errcode"] == 0


def test_the_simulator_stops_at_once_even_with_a_connection_open() -> None:
    """Every test world stops one: a stop that waits out a half-second poll adds minutes."""
    import time

    from tests.simulator_fixtures import SAMPLE_ORG
    from wecom_app.simulator import SimulatorServer, load_org

    sim = SimulatorServer(load_org(SAMPLE_ORG)).start()
    with httpx.Client(base_url=sim.url) as http:  # a keep-alive connection left open
        assert http.get("/_sim/clock").status_code == 200
        started = time.perf_counter()
        sim.stop()
        took = time.perf_counter() - started
    assert took < 0.1, f"stop took {took * 1000:.0f} ms"


def test_the_index_lists_every_inspection_and_delivery_endpoint(server: SimulatorServer) -> None:
    from pathlib import Path

    with httpx.Client(base_url=server.url, timeout=10) as http:
        page = http.get("/_sim/")
        listed = http.get("/_sim/?format=json").json()
    assert page.status_code == 200 and "企业微信模拟器" in page.text
    paths = {e["path"] for e in listed["endpoints"]}
    assert {"/_sim/messages", "/_sim/faults", "/_sim/deliver/<event>",
            "/_sim/appchats/<chatid>/invite"} <= paths  # fmt: skip
    assert all(e["doc"] for e in listed["endpoints"]), "every endpoint says what it does"
    assert "card_click" in listed["deliver_events"] and "delete_user" in listed["deliver_events"]
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The WeCom simulator", 1)[1].split("\n## ", 1)[0]
    missing = [p for p in paths if p.split("<", 1)[0].rstrip("/") not in section]
    assert not missing, f"README's simulator section does not name {missing}"
