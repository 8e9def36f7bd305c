"""The simulator's org charts: the shipped sample, generated benchmark orgs, and speed."""

from __future__ import annotations

from collections import Counter

import httpx

from tests.simulator_fixtures import SAMPLE_ORG
from wecom_app.simulator import SimulatorServer, generate_org, load_org


def test_sample_org_is_a_believable_company() -> None:
    org = load_org(SAMPLE_ORG)
    assert 140 <= len(org.members) <= 160 and len(org.departments) >= 12
    statuses = Counter(m.status for m in org.members.values())
    assert statuses[2] >= 2 and statuses[4] >= 2 and statuses[5] >= 2
    for dept in org.departments.values():
        assert dept.department_leader, dept.name
    aliases = [m.alias for m in org.members.values()]
    assert (
        sum(
            m.alias == f"{org.departments[m.main_department].name}-{m.name}"
            for m in org.members.values()
        )
        > 50
    )
    assert "" in aliases
    assert all(m.direct_leader for m in org.members.values() if m.userid != "liangyangmin")
    assert {t.tagname for t in org.tags.values()} >= {"管理层"}


def test_generated_org_is_deterministic_and_deep() -> None:
    first, second = generate_org(3000, 200, seed=5), generate_org(3000, 200, seed=5)
    assert [m.name for m in first.members.values()] == [m.name for m in second.members.values()]
    depths = Counter(first.depth(d) for d in first.departments)
    assert max(depths) == 5 and depths[4] > 0
    assert all(d.department_leader for d in first.departments.values())
    leaders = [m for m in first.members.values() if m.direct_leader]
    assert len(leaders) >= 2990


def test_user_list_over_a_large_org_lists_each_departments_own_members() -> None:
    """How fast is for scripts/bench_sync to say; here: the answers are right."""
    org = generate_org(20_000, 1_000)
    with SimulatorServer(org) as sim, httpx.Client(base_url=sim.url, trust_env=False) as http:
        config = sim.state.config
        token = http.get(
            "/cgi-bin/gettoken", params={"corpid": config.corp_id, "corpsecret": config.app_secret}
        ).json()
        for dept_id in range(1, 101):
            answer = http.get(
                "/cgi-bin/user/list",
                params={"access_token": token["access_token"], "department_id": dept_id},
            ).json()
            listed = {u["userid"] for u in answer["userlist"]}
            direct = {m.userid for m in org.members.values() if dept_id in m.department}
            assert listed == direct
