"""Callback delivery from the simulator to a real receiver: crypto, payloads, retries, URL check."""

from __future__ import annotations

from collections.abc import Iterator
from xml.etree import ElementTree  # our own simulator's output: trusted
from xml.etree.ElementTree import Element

import pytest

from tests.simulator_fixtures import AGENT_ID, CORP_ID, Api, Receiver, start_simulator
from tests.world import until
from wecom_app.simulator import SimulatorServer


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def server(receiver: Receiver) -> Iterator[SimulatorServer]:
    sim = start_simulator(receiver)
    yield sim
    sim.stop()


@pytest.fixture
def api(server: SimulatorServer, receiver: Receiver) -> Iterator[Api]:
    server.state.reset()
    server.state.config.new_style_contact_events = True
    receiver.received.clear()
    receiver.attempts = receiver.fail_next = receiver.sleep_next = 0
    receiver.echo_wrong = False
    client = Api(server)
    yield client
    client.http.close()


def last_xml(receiver: Receiver) -> Element:
    return ElementTree.fromstring(receiver.received[-1]["xml"])


def test_text_message_arrives_encrypted_and_signed(
    api: Api, server: SimulatorServer, receiver: Receiver
) -> None:
    result = server.events.deliver_text("zhaoming", "收到", msg_id=7166937284947423616)
    assert result.ok and result.attempts == 1
    xml = last_xml(receiver)
    assert xml.findtext("ToUserName") == CORP_ID
    assert xml.findtext("FromUserName") == "zhaoming"
    assert xml.findtext("MsgType") == "text" and xml.findtext("Content") == "收到"
    assert xml.findtext("MsgId") == "7166937284947423616"
    assert xml.findtext("AgentID") == str(AGENT_ID)
    assert int(xml.findtext("CreateTime") or 0) > 0
    assert "<![CDATA[收到]]>" in receiver.received[-1]["xml"]
    assert receiver.received[-1]["agent_id"] == str(AGENT_ID)


def test_card_click_with_selected_items_in_both_spellings(
    server: SimulatorServer, api: Api, receiver: Receiver
) -> None:
    for spelling in ("OptionIds", "OpitonIds"):
        server.events.deliver_card_click(
            "zhaoming",
            "vote-1",
            "submit",
            card_type="vote_interaction",
            selected=[("q1", ["a", "b"])],
            option_spelling=spelling,
        )
        xml = last_xml(receiver)
        assert xml.findtext("Event") == "template_card_event"
        assert xml.findtext("TaskId") == "vote-1" and xml.findtext("EventKey") == "submit"
        assert xml.findtext("ResponseCode")
        item = xml.find("SelectedItems/SelectedItem")
        assert item is not None and item.findtext("QuestionKey") == "q1"
        ids = [e.text for e in item.findall(f"{spelling}/{spelling[:-1]}")]
        assert ids == ["a", "b"]


def test_app_events(server: SimulatorServer, api: Api, receiver: Receiver) -> None:
    for event in ("enter_agent", "subscribe", "unsubscribe"):
        assert server.events.deliver_app_event("zhaoming", event).ok
        assert last_xml(receiver).findtext("Event") == event


def test_delete_user_removes_member_and_sends_event(
    api: Api, server: SimulatorServer, receiver: Receiver
) -> None:
    assert server.events.delete_user("liuxuanmin").ok
    xml = last_xml(receiver)
    assert receiver.received[-1]["channel"] == "contacts"
    assert xml.findtext("FromUserName") == "sys"
    assert xml.findtext("ChangeType") == "delete_user" and xml.findtext("UserID") == "liuxuanmin"
    assert api.get("user/get", userid="liuxuanmin")["errcode"] == 60111
    server.events.delete_user("zhangyao", keep_as_left=True)
    assert api.get("user/get", userid="zhangyao")["status"] == 5


def test_update_user_new_style_and_legacy(
    api: Api, server: SimulatorServer, receiver: Receiver
) -> None:
    server.events.update_user("zhaoming", position="首席技术官")
    xml = last_xml(receiver)
    assert xml.findtext("UserID") == "zhaoming" and xml.findtext("Department") == "3"
    assert xml.find("Position") is None
    server.state.config.new_style_contact_events = False
    server.events.update_user("zhaoming", new_userid="zhaoming2", alias="研发中心-赵明")
    xml = last_xml(receiver)
    assert xml.findtext("NewUserID") == "zhaoming2" and xml.findtext("Alias") == "研发中心-赵明"
    assert xml.findtext("IsLeaderInDept") == "1" and xml.findtext("Status") == "1"
    assert api.get("user/get", userid="zhaoming2")["position"] == "首席技术官"


def test_party_and_tag_events(api: Api, server: SimulatorServer, receiver: Receiver) -> None:
    server.events.create_party(id=20, name="数据部", parentid=3, order=500)
    xml = last_xml(receiver)
    assert xml.findtext("ChangeType") == "create_party" and xml.findtext("Name") == "数据部"
    assert xml.findtext("ParentId") == "3"
    assert api.get("department/get", id=20)["department"]["name"] == "数据部"
    server.events.update_tag(3, add_users=["zhaoming"], del_users=["zhunan"])
    xml = last_xml(receiver)
    assert xml.findtext("TagId") == "3" and xml.findtext("AddUserItems") == "zhaoming"
    assert "zhaoming" in server.state.org.tags[3].userlist
    server.events.delete_party(20)
    assert api.get("department/get", id=20)["errcode"] == 60123


def test_retries_until_receiver_recovers(
    api: Api, server: SimulatorServer, receiver: Receiver
) -> None:
    receiver.fail_next = 2
    result = server.events.deliver_text("zhaoming", "重试")
    assert result.ok and result.attempts == 3
    assert len(receiver.received) == 1


def test_gives_up_after_three_retries(
    api: Api, server: SimulatorServer, receiver: Receiver
) -> None:
    receiver.fail_next = 10
    result = server.events.deliver_text("zhaoming", "放弃")
    assert not result.ok and result.attempts == 4 and result.status == 503
    assert receiver.attempts == 4


def test_retries_after_timeout(api: Api, server: SimulatorServer, receiver: Receiver) -> None:
    receiver.sleep_next, receiver.sleep_seconds = 1, 1.3
    result = server.events.deliver_text("zhaoming", "超时")
    assert result.ok and result.attempts == 2
    # the timed-out first attempt still finishes at the receiver: let it, before the next test
    until(lambda: sum("超时" in r["xml"] for r in receiver.received) == 2, timeout=5)


def test_url_verification(api: Api, server: SimulatorServer, receiver: Receiver) -> None:
    assert server.events.verify_url("app").ok
    assert server.events.verify_url("contacts").ok
    receiver.echo_wrong = True
    assert not server.events.verify_url("app").ok


def test_delivery_over_the_inspection_api(api: Api, receiver: Receiver) -> None:
    result = api.sim_post("deliver/text", {"userid": "zhaoming", "content": "收到"})
    assert result["ok"] and result["attempts"] == 1
    assert last_xml(receiver).findtext("Content") == "收到"
    click = {"userid": "zhaoming", "task_id": "t1", "event_key": "ack"}
    assert api.sim_post("deliver/card_click", click)["ok"]
    assert api.sim_post("deliver/update_user", {"userid": "zhaoming", "alias": "x"})["ok"]
    assert api.sim_post("deliver/verify", {"channel": "contacts"})["ok"]
    deliveries = api.sim_get("deliveries")["deliveries"]
    assert [d["channel"] for d in deliveries] == ["app", "app", "contacts", "contacts"]
    assert api.http.post("/_sim/deliver/bogus", json={}).status_code == 400
