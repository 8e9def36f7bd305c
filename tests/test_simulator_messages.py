"""message/send and update_template_card in the simulator: recipients, limits, cards, codes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.simulator_fixtures import AGENT_ID, Api, Receiver, start_simulator
from wecom_app.simulator import SimulatorServer


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    receiver = Receiver()
    sim = start_simulator(receiver)
    yield sim
    sim.stop()
    receiver.close()


def card(task_id: str, **extra: Any) -> dict[str, Any]:
    """Build a button_interaction template_card message body."""
    return {
        "touser": "zhaoming|liuxuanmin",
        "agentid": AGENT_ID,
        "msgtype": "template_card",
        "template_card": {
            "card_type": "button_interaction",
            "main_title": {"title": "关于国庆值班安排的通知"},
            "task_id": task_id,
            "button_list": [{"text": "收到", "style": 1, "key": "ack"}],
            **extra,
        },
    }


def test_partly_invalid_recipients_still_send(api: Api) -> None:
    answer = api.send_text("zhaoming|ghost|xieli", toparty="3|999", totag="2|77")
    assert answer["errcode"] == 0
    assert answer["invaliduser"] == "ghost|xieli"  # xieli left the company (status 5)
    assert answer["invalidparty"] == "999" and answer["invalidtag"] == "77"
    [message] = api.sim_get("messages")["messages"]
    assert "zhaoming" in message["delivered"] and "zhangyao" in message["delivered"]


def test_all_invalid_recipients_is_81013(api: Api) -> None:
    assert api.send_text("ghost|nobody")["errcode"] == 81013
    assert api.send_text("", toparty="")["errcode"] == 82001


def test_contacts_secret_cannot_send(api: Api) -> None:
    body = {"touser": "zhaoming", "agentid": AGENT_ID, "msgtype": "text", "text": {"content": "x"}}
    assert api.post("message/send", body, kind="contacts")["errcode"] == 48002
    assert api.post("message/send", {**body, "agentid": 1})["errcode"] == 301002


def test_recipient_count_limits(api: Api) -> None:
    assert api.send_text("|".join(f"u{i}" for i in range(1001)))["errcode"] != 0
    parties = "|".join(str(i) for i in range(101))
    assert api.send_text("zhaoming", toparty=parties)["errcode"] == 82002


def test_unlicensed_users_are_reported(api: Api) -> None:
    api.sim_post("config", {"unlicensed": ["liuxuanmin"]})
    answer = api.send_text("zhaoming|liuxuanmin")
    assert answer["unlicenseduser"] == "liuxuanmin"
    api.sim_post("config", {"unlicensed": []})


def test_duplicate_check_answers_ok_without_second_delivery(api: Api) -> None:
    first = api.send_text("zhaoming", "请确认", enable_duplicate_check=1)
    again = api.send_text("zhaoming", "请确认", enable_duplicate_check=1)
    assert again["errcode"] == 0 and again["msgid"] == first["msgid"]
    assert len(api.sim_get("messages?userid=zhaoming")["messages"]) == 1
    api.sim_post("clock", {"advance": 1801})
    api.send_text("zhaoming", "请确认", enable_duplicate_check=1)
    assert len(api.sim_get("messages?userid=zhaoming")["messages"]) == 2


def test_member_rate_limit_drops_silently(api: Api) -> None:
    answers = [api.send_text("zhaoming", f"第{i}条")["errcode"] for i in range(32)]
    assert answers == [0] * 32
    messages = api.sim_get("messages?userid=zhaoming")["messages"]
    assert sum("zhaoming" in m["delivered"] for m in messages) == 30
    assert [m["dropped"] for m in messages[30:]] == [["zhaoming"], ["zhaoming"]]
    api.sim_post("clock", {"advance": 61})
    api.send_text("zhaoming", "一分钟后")
    assert api.sim_get("messages?userid=zhaoming")["messages"][-1]["delivered"] == ["zhaoming"]


def test_template_card_task_id_rules(api: Api) -> None:
    answer = api.post("message/send", card("notice-1"))
    assert answer["errcode"] == 0 and answer["response_code"]
    assert api.post("message/send", card("notice-1"))["errcode"] == 42014
    assert api.post("message/send", card("bad id!"))["errcode"] == 42014
    assert api.post("message/send", card("x" * 129))["errcode"] == 42014
    buttons = [{"text": str(i), "key": f"k{i}"} for i in range(7)]
    assert api.post("message/send", card("notice-2", button_list=buttons))["errcode"] != 0
    long_key = [{"text": "收到", "key": "k" * 1025}]
    assert api.post("message/send", card("notice-3", button_list=long_key))["errcode"] != 0
    [sent] = api.sim_get("messages?task_id=notice-1")["messages"]
    assert sent["msgtype"] == "template_card"


def test_update_template_card_code_is_single_use(api: Api) -> None:
    code = api.post("message/send", card("notice-9"))["response_code"]
    update = {
        "userids": ["zhaoming"],
        "agentid": AGENT_ID,
        "response_code": code,
        "button": {"replace_name": "已收到"},
    }
    assert api.post("message/update_template_card", update)["errcode"] == 0
    assert api.post("message/update_template_card", update)["errcode"] != 0
    [change] = api.sim_get("messages")["card_updates"]
    assert change["task_id"] == "notice-9" and change["replace_name"] == "已收到"


def test_update_template_card_code_expires_after_72_hours(api: Api) -> None:
    code = api.post("message/send", card("notice-10"))["response_code"]
    api.sim_post("clock", {"advance": 72 * 3600})
    update = {"agentid": AGENT_ID, "response_code": code, "button": {"replace_name": "已收到"}}
    assert api.post("message/update_template_card", update)["errcode"] != 0
    assert (
        api.post("message/update_template_card", {**update, "response_code": "x"})["errcode"] != 0
    )


def test_each_card_click_brings_a_fresh_response_code(api: Api, server: SimulatorServer) -> None:
    api.post("message/send", card("notice-11"))
    server.events.deliver_card_click("zhaoming", "notice-11", "ack")
    server.events.deliver_card_click("zhaoming", "notice-11", "ack")
    codes = [c for c, e in server.state.response_codes.items() if e["userids"] == ["zhaoming"]]
    assert len(set(codes)) == 2
    update = {
        "agentid": AGENT_ID,
        "response_code": codes[0],
        "userids": ["zhaoming"],
        "button": {"replace_name": "已收到"},
    }
    assert api.post("message/update_template_card", update)["errcode"] == 0


def test_recall_within_24_hours(api: Api) -> None:
    first = api.send_text("zhaoming", "撤回我")["msgid"]
    assert api.post("message/recall", {"msgid": first})["errcode"] == 0
    second = api.send_text("zhaoming", "太晚了")["msgid"]
    api.sim_post("clock", {"advance": 24 * 3600})
    assert api.post("message/recall", {"msgid": second})["errcode"] != 0
    assert api.sim_get("messages")["messages"][0]["recalled"] is True
