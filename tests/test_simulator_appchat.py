"""appchat in the simulator: create/update/get/send rules, errors and the hourly change limit."""

from __future__ import annotations

from tests.simulator_fixtures import Api
from wecom_app.simulator import SimulatorServer

MEMBERS = ["zhaoming", "liuxuanmin", "zhangyao"]


def create(api: Api, **fields: object) -> dict:
    body = {"name": "研发中心工作群", "owner": "zhaoming", "userlist": MEMBERS, **fields}
    return api.post("appchat/create", body)


def test_create_get_and_send(api: Api) -> None:
    chatid = create(api, chatid="rd2026")["chatid"]
    assert chatid == "rd2026"
    info = api.get("appchat/get", chatid=chatid)["chat_info"]
    assert info == {
        "chatid": "rd2026",
        "name": "研发中心工作群",
        "owner": "zhaoming",
        "userlist": MEMBERS,
    }
    sent = api.post(
        "appchat/send", {"chatid": chatid, "msgtype": "text", "text": {"content": "欢迎"}}
    )
    assert sent["errcode"] == 0
    history = api.sim_get(f"appchats/{chatid}")["messages"]
    assert history[0]["content"] == {"content": "欢迎"}


def test_generated_chatid_when_absent(api: Api) -> None:
    chatid = create(api)["chatid"]
    assert chatid.isalnum() and len(chatid) <= 32


def test_create_validation_errors(api: Api) -> None:
    assert create(api, name="群" * 51)["errcode"] == 86004
    assert create(api, chatid="bad-id")["errcode"] == 86001
    assert create(api, chatid="x" * 33)["errcode"] == 86001
    assert create(api, userlist=["zhaoming"])["errcode"] == 86006
    assert create(api, userlist=["zhaoming", "ghost"])["errcode"] == 60111
    assert create(api, owner="zhunaxin")["errcode"] != 0
    create(api, chatid="dup1")
    assert create(api, chatid="dup1")["errcode"] != 0


def test_update_adds_removes_renames(api: Api) -> None:
    chatid = create(api)["chatid"]
    body = {
        "chatid": chatid,
        "name": "研发中心-核心群",
        "add_user_list": ["majing"],
        "del_user_list": ["liuxuanmin"],
    }
    assert api.post("appchat/update", body)["errcode"] == 0
    info = api.get("appchat/get", chatid=chatid)["chat_info"]
    assert info["name"] == "研发中心-核心群"
    assert info["userlist"] == ["zhaoming", "zhangyao", "majing"]
    assert (
        api.post("appchat/update", {"chatid": chatid, "add_user_list": ["ghost"]})["errcode"]
        == 60111
    )


def test_departed_member_can_still_be_removed(api: Api, server: SimulatorServer) -> None:
    chatid = create(api)["chatid"]
    with server.state.lock:
        del server.state.org.members["liuxuanmin"]
        server.state.org.touch()
    update = {"chatid": chatid, "del_user_list": ["liuxuanmin"]}
    assert api.post("appchat/update", update)["errcode"] == 0


def test_unknown_chat_is_86003(api: Api) -> None:
    assert api.get("appchat/get", chatid="nochat")["errcode"] == 86003
    assert api.post("appchat/update", {"chatid": "nochat", "name": "x"})["errcode"] == 86003
    send = {"chatid": "nochat", "msgtype": "text", "text": {"content": "x"}}
    assert api.post("appchat/send", send)["errcode"] == 86003


def test_no_template_cards_in_groups(api: Api) -> None:
    chatid = create(api)["chatid"]
    body = {"chatid": chatid, "msgtype": "template_card", "template_card": {}}
    assert api.post("appchat/send", body)["errcode"] == 40008


def test_contacts_secret_and_narrow_visibility_get_48002(api: Api) -> None:
    body = {"name": "群", "owner": "zhaoming", "userlist": MEMBERS}
    assert api.post("appchat/create", body, kind="contacts")["errcode"] == 48002
    api.sim_post("config", {"visibility_root": False})
    try:
        assert create(api)["errcode"] == 48002
    finally:
        api.sim_post("config", {"visibility_root": True})


def test_hourly_change_limit_is_45009(api: Api) -> None:
    api.sim_post("config", {"limits": {"appchat_changes_per_hour": 3}})
    try:
        chatid = create(api)["chatid"]
        rename = {"chatid": chatid, "name": "改名"}
        assert api.post("appchat/update", rename)["errcode"] == 0
        assert api.post("appchat/update", rename)["errcode"] == 0
        assert api.post("appchat/update", rename)["errcode"] == 45009
        api.sim_post("clock", {"advance": 3601})
        assert api.post("appchat/update", rename)["errcode"] == 0
    finally:
        api.sim_post("config", {"limits": {"appchat_changes_per_hour": 1000}})


def test_chats_created_by_people_are_out_of_reach(api: Api) -> None:
    api.sim_post("appchats/foreign", {"chatid": "humans1", "name": "吃饭群", "userlist": MEMBERS})
    assert api.get("appchat/get", chatid="humans1")["errcode"] == 86003
    assert api.post("appchat/update", {"chatid": "humans1", "name": "x"})["errcode"] == 86003


def test_group_messages_beyond_member_limit_are_dropped(api: Api) -> None:
    api.sim_post("config", {"limits": {"appchat_member_per_minute": 2}})
    try:
        chatid = create(api)["chatid"]
        send = {"chatid": chatid, "msgtype": "markdown", "markdown": {"content": "**通知**"}}
        assert [api.post("appchat/send", send)["errcode"] for _ in range(3)] == [0, 0, 0]
        history = api.sim_get(f"appchats/{chatid}")["messages"]
        assert history[2]["recipients"] == [] and history[2]["dropped"] == MEMBERS
    finally:
        api.sim_post("config", {"limits": {"appchat_member_per_minute": 200}})
