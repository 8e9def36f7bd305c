"""Demo step: a managed group built from a rule, then a departure removed with an announcement."""

from __future__ import annotations

from datetime import timedelta

from wecom_app.demo.context import Demo

CHATID = "demomobile"
LEAVER = "hanyang"


def run(demo: Demo) -> None:
    """Create a group by department rule, show its members, delete one member in WeCom."""
    demo.section("受管群 / managed group created from a rule")
    demo.say("规则：移动研发部（含下级）全体在职员工；群主 王轩强，备用群主 唐琳涛。")
    demo.cli(
        f"groups create --chatid {CHATID} --name 移动研发部工作群 --kind 部门工作群 "
        "--owner wangxuanqiang --backup-owner tanglintao --department 5"
    )

    demo.section("离职清退 / a departure removes the member and explains why")
    demo.say(f"HR 在企业微信通讯录删除 {LEAVER}：")
    demo.say(
        "模拟器把加密的 delete_user 回调发到 /wecom/contacts/callback，worker 处理后移出并公告。"
    )
    with demo.sim as sim:
        answer = sim.post("/_sim/deliver/delete_user", json={"userid": LEAVER}).json()
    demo.say(f"回调投递结果：HTTP {answer.get('status')}，{answer.get('attempts')} 次尝试")
    demo.settle()
    clock = demo.services.clock
    if hasattr(clock, "advance"):  # departures wait a moment so a burst shares one call per group
        clock.advance(timedelta(seconds=2))
    demo.settle()

    with demo.sim as sim:
        chat = sim.get(f"/_sim/appchats/{CHATID}").json()
    last = chat["changes"][-1]
    demo.say(f"模拟器记录的 appchat/update：移出 {last['removed']}（{last['at']}）")
    demo.say(f"群内现有 {len(chat['userlist'])} 人；{LEAVER} 在群内：{LEAVER in chat['userlist']}")
    demo.say("群内公告（appchat/send）：")
    for message in chat["messages"][-1:]:
        demo.say(f"  「{message['content']['content']}」")
    demo.cli(f"groups audit --chatid {CHATID} --action remove")
