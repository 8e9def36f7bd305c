"""Demo step: a group asked for and approved by card, someone added outside the app removed with
the reason, a warning then a removal with the reason posted, and an anonymous survey."""

from __future__ import annotations

from typing import Any

from wecom_app.demo.context import Demo
from wecom_app.demo.notices import _catch_up, _deliver, _replies
from wecom_app.groups.requests import APPROVE_KEY
from wecom_app.surveys.service import SUBMIT_KEY

REQUESTER, APPROVER = "huangyao", "zhangyao"  # 平台研发部: an engineer and the leader
MEMBERS = ["luoxinlei", "sunqiangjie", "zhunan", "liangbobo", "zhengchao", "yangxuannan"]


def run(demo: Demo) -> None:
    """Ask, approve, police and survey one project group."""
    demo.section("建群申请 / a group is asked for and approved by card")
    request = {
        "kind": "create",
        "requester": REQUESTER,
        "name": "支付重构项目群",
        "group_kind": "项目群",
        "purpose": "支付系统重构的日常沟通与发布协调",
        "owner": REQUESTER,
        "rules": {"users": [REQUESTER, *MEMBERS]},
    }
    with demo.api as api:
        made = api.post("/api/v1/group-requests", json=request).json()["request"]
    demo.say(
        f"{made['requester_name']} 申请建群「{made['group']}」（申请{made['id']}），"
        f"审批人：{made['approver_name']}（申请人所在部门的负责人）"
    )
    _catch_up(demo)
    demo.settle()
    card = _latest_card(demo, APPROVER)
    demo.say(
        f"审批人收到卡片「{card['main_title']['title']}」：{card['main_title']['desc']}，"
        f"按钮 {' / '.join(b['text'] for b in card['button_list'])}"
    )
    _deliver(
        demo,
        "card_click",
        {"userid": APPROVER, "task_id": card["task_id"], "event_key": APPROVE_KEY},
    )
    demo.say(f"{APPROVER} 点了“同意”")
    _catch_up(demo)
    demo.settle()
    chatid = _chatid(demo, "支付重构项目群")
    chat = _chat(demo, chatid)
    demo.say(f"群已建好：{len(chat['userlist'])} 人，群主 {chat['owner']}；群内第一条消息：")
    demo.say(f"  「{chat['messages'][0]['content']['content']}」")
    demo.say(f"申请人收到：{_replies(demo, REQUESTER)[-1]}")
    demo.section("群台账 / the register HR keeps")
    demo.cli("groups register")

    demo.section("未经审批入群 / someone added outside the app is removed with the reason")
    with demo.sim as sim:
        sim.post(
            f"/_sim/appchats/{chatid}/invite", json={"by": "luoxinlei", "userids": ["chenjiayue"]}
        ).raise_for_status()
    demo.say("罗鑫磊在企业微信客户端把总经办的陈佳悦拉进了群（企业微信不会通知应用）")
    demo.say("成员检查（默认每天 09:00，可在群治理策略里调频）发现并移出：")
    demo.cli(f"groups reconcile {chatid}")
    _catch_up(demo)
    demo.settle()
    demo.say(f"群内公告：「{_chat(demo, chatid)['messages'][-1]['content']['content']}」")

    demo.section("违规警告与清退 / a warning, then a removal with the reason in public")
    for note in ("在群里发布贷款广告", "再次发布贷款广告"):
        demo.cli(
            f"groups violation {chatid} sunqiangjie --rule 广告 --note {note} --by {REQUESTER}"
        )
        _catch_up(demo)
        demo.settle()
        demo.say(f"群内公告：「{_chat(demo, chatid)['messages'][-1]['content']['content']}」")
    inside = "sunqiangjie" in _chat(demo, chatid)["userlist"]
    demo.say(f"孙强杰仍在群内：{inside}；30 天内规则引擎不会把他加回，入群申请也会被拒绝")
    demo.cli(f"groups violations --chatid {chatid}")

    demo.section("匿名问卷 / an anonymous survey as a vote card")
    survey = {
        "title": "第一季度群管理反馈",
        "by": "zhenglinwei",
        "audience": {"chatid": chatid},
        "questions": [
            {"title": "群内通知是否清楚及时？", "options": ["清楚及时", "一般", "不够清楚"]}
        ],
    }
    with demo.api as api:
        sent = api.post("/api/v1/surveys", json=survey).json()["survey"]
    demo.say(f"问卷 {sent['id']} 以投票卡片发给群里 {sent['recipients']} 人")
    _catch_up(demo)
    demo.settle()
    for n, userid in enumerate([REQUESTER, *MEMBERS[:1], *MEMBERS[2:6]]):
        card = _latest_card(demo, userid)
        _deliver(
            demo,
            "card_click",
            {
                "userid": userid,
                "task_id": card["task_id"],
                "event_key": SUBMIT_KEY,
                "card_type": card["card_type"],
                "selected": [{"question_key": "q1", "option_ids": ["o1" if n % 3 else "o2"]}],
            },
        )
    _deliver(demo, "text", {"userid": "zhengchao", "content": "匿名反馈：晚上十点后别再发通知了"})
    _catch_up(demo)
    demo.settle()
    demo.say("六人提交；数据库只记“谁已答”，不记“谁选了什么”，回调原文处理后即清空")
    demo.cli(f"survey results {sent['id']}")
    demo.say("结果在问卷结束后才显示：回答实时变化时，前后比对能推断出个人的选择")
    demo.cli(f"survey close {sent['id']}")
    demo.cli(f"survey results {sent['id']}")
    demo.cli("survey feedback")


def _latest_card(demo: Demo, userid: str) -> dict[str, Any]:
    with demo.sim as sim:
        messages = sim.get("/_sim/messages", params={"userid": userid}).json()["messages"]
    return dict([m for m in messages if m["msgtype"] == "template_card"][-1]["content"])


def _chat(demo: Demo, chatid: str) -> dict[str, Any]:
    with demo.sim as sim:
        return dict(sim.get(f"/_sim/appchats/{chatid}").json())


def _chatid(demo: Demo, name: str) -> str:
    with demo.sim as sim:
        chats = sim.get("/_sim/appchats").json()["chats"]
    return str(next(c["chatid"] for c in chats if c["name"] == name))
