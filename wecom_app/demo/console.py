"""Demo step: the console, signed in as HR through the simulator's web login (扫码登录)."""

from __future__ import annotations

import re

import httpx

from wecom_app.demo.context import Demo

PEOPLE = (
    ("人事（管理员）", "郑琳伟", "zhenglinwei"),
    ("部门负责人（平台研发部）", "张瑶", "zhangyao"),
    ("员工", "黄瑶", "huangyao"),
)


def run(demo: Demo) -> None:
    """Sign in the way a browser does and open 总览 and 报表."""
    demo.section("控制台 / the console")
    with httpx.Client(base_url=demo.app_url, timeout=30) as browser:
        to_wecom = browser.get("/console/login/web?next=/console/reports")
        login_page = to_wecom.headers["location"]
        demo.say(f"扫码登录跳转到：{login_page.split('?')[0]}（模拟器代替企业微信）")
        back = httpx.get(f"{login_page}&as=zhenglinwei", follow_redirects=False)
        landed = browser.get(back.headers["location"], follow_redirects=True)
        title = re.search(r"<title>([^<]+)</title>", landed.text)
        demo.say(f"以 郑琳伟（人事）登录后打开 报表：HTTP {landed.status_code}，"
                 f"页面《{title.group(1) if title else ''}》")  # fmt: skip
        home = browser.get("/console/")
        demo.say(
            f"总览：HTTP {home.status_code}，CSP：{home.headers['content-security-policy'][:40]}…"
        )


def how_to_sign_in(demo: Demo) -> list[str]:
    """Lines telling someone exploring the running demo how to sign in as each role."""
    lines = [f"在浏览器打开 {demo.app_url}/console/ ，点“企业微信扫码登录”，在模拟器页面选择身份："]
    lines += [f"  {role}：{name}（{userid}）" for role, name, userid in PEOPLE]
    return lines
