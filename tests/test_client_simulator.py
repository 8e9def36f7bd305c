"""The WeCom client against the simulator over real HTTP: tokens, retries, errors, limits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.simulator_fixtures import SAMPLE_ORG
from wecom_app.clock import FakeClock
from wecom_app.errors import ConfigError, WeComError, WeComNetworkError
from wecom_app.simulator import SimConfig, SimulatorServer, load_org
from wecom_app.simulator.state import Fault
from wecom_app.wecom.client import WeComClient

CONFIG = dict(corp_id="wwclienttest", agent_id=1000002, app_secret="app-s", contacts_secret="con-s")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock):
    with SimulatorServer(load_org(SAMPLE_ORG), SimConfig(**CONFIG), clock) as server:
        yield server


@pytest.fixture
def client(sim, clock):
    sleeps: list[float] = []
    c = WeComClient(
        "wwclienttest",
        1000002,
        "app-s",
        "con-s",
        base_url=sim.url,
        clock=clock,
        sleep=sleeps.append,
    )
    c.sleeps = sleeps  # type: ignore[attr-defined]
    yield c
    c.close()


def test_one_token_per_secret_cached(client, sim) -> None:
    for _ in range(3):
        client.department_list()
    list(client.iter_user_ids())
    assert sim.state.calls["/cgi-bin/gettoken"] == 2


def test_expired_token_refreshed_once(client, sim, clock) -> None:
    client.department_list()
    clock.advance(timedelta(hours=2, minutes=1))
    client.department_list()
    assert sim.state.calls["/cgi-bin/gettoken"] == 2


def test_revoked_token_refreshed_once(client, sim) -> None:
    client.user_get("zhaoming")
    sim.state.revoke_tokens(kind="app")
    assert client.user_get("zhaoming").name == "赵明"
    assert sim.state.calls["/cgi-bin/gettoken"] == 2


def test_token_error_after_refresh_is_raised_not_looped(client, sim) -> None:
    client.user_get("zhaoming")
    sim.state.faults.append(Fault("/cgi-bin/user/get", "errcode", 5, errcode=42001))
    with pytest.raises(WeComError) as exc:
        client.user_get("zhaoming")
    assert exc.value.errcode == 42001
    assert sim.state.calls["/cgi-bin/user/get"] == 3  # first call, one retry after refresh


@pytest.mark.parametrize("errcode", [-1, 45033])
def test_busy_errors_retried_with_backoff(client, sim, errcode) -> None:
    sim.state.faults.append(Fault("/cgi-bin/department/list", "errcode", 2, errcode=errcode))
    assert client.department_list()
    assert len(client.sleeps) == 2 and client.sleeps[1] > client.sleeps[0] * 0.99


def test_retries_are_bounded(client, sim) -> None:
    sim.state.faults.append(Fault("/cgi-bin/department/list", "errcode", 50, errcode=-1))
    with pytest.raises(WeComError) as exc:
        client.department_list()
    assert exc.value.errcode == -1
    assert sim.state.calls["/cgi-bin/department/list"] == 4  # 1 + max_retries


@pytest.mark.parametrize("kind", ["http500", "drop"])
def test_network_failures_retried(client, sim, kind) -> None:
    sim.state.faults.append(Fault("/cgi-bin/department/list", kind, 1))
    assert client.department_list()
    sim.state.faults.append(Fault("/cgi-bin/department/list", kind, 10))
    with pytest.raises(WeComNetworkError):
        client.department_list()


def test_other_errors_raise_at_once_with_errcode(client, sim) -> None:
    with pytest.raises(WeComError) as exc:
        client.user_get("no-such-user")
    assert exc.value.errcode == 60111 and sim.state.calls["/cgi-bin/user/get"] == 1


def test_wrong_secret(sim, clock) -> None:
    with (
        WeComClient("wwclienttest", 1000002, "wrong", base_url=sim.url, clock=clock) as c,
        pytest.raises(WeComError) as exc,
    ):
        c.department_list()
    assert exc.value.errcode == 40001 and "wrong" not in str(exc.value)


def test_contacts_only_apis_need_the_contacts_secret(sim, clock) -> None:
    with (
        WeComClient("wwclienttest", 1000002, "app-s", base_url=sim.url, clock=clock) as c,
        pytest.raises(ConfigError) as exc,
    ):
        c.user_list_id()
    assert exc.value.key == "WECOM_CONTACTS_SECRET"


def test_send_reports_invalid_users_and_drops_silently_over_the_member_limit(client, sim) -> None:
    result = client.message_send(
        {"msgtype": "text", "text": {"content": "hi"}}, touser=["zhaoming", "ghost"]
    )
    assert result.invalid_users == ("ghost",)
    for i in range(40):
        client.message_send({"msgtype": "text", "text": {"content": f"n{i}"}}, touser=["zhangyao"])
    delivered = sum("zhangyao" in m["delivered"] for m in sim.state.messages)
    dropped = sum("zhangyao" in m["dropped"] for m in sim.state.messages)
    assert (delivered, dropped) == (30, 10)


def test_appchat_round_trip(client) -> None:
    chatid = client.appchat_create("项目群", "zhaoming", ["zhaoming", "zhangyao"])
    client.appchat_update(chatid, add_user_list=["luoxinlei"], del_user_list=["zhangyao"])
    chat = client.appchat_get(chatid)
    assert chat.owner == "zhaoming" and set(chat.userlist) == {"zhaoming", "luoxinlei"}
    with pytest.raises(WeComError) as exc:
        client.appchat_get("nosuchchat")
    assert exc.value.errcode == 86003
