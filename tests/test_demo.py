"""The demo runs end to end: real simulator and gunicorn processes, real callbacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_and_reports(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "wecom_app.demo.run", "--workdir", str(workdir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert out.count("通过 ok") == 2  # both callback URLs verified like the admin console
    assert "stored once" in out and "demo finished" in out
    for section in (
        "通讯录镜像",
        "命名规范",
        "受管群",
        "离职清退",
        "建群申请",
        "群台账",
        "未经审批入群",
        "违规警告与清退",
        "匿名问卷",
        "确认通知",
        "台账",
        "响应时效",
        "超时报表",
        "按标签发送",
        "领导任务",
        "转交与已解决",
        "每日位置报到",
        "报到情况",
        "控制台",
    ):
        assert f"== {section}" in out, f"demo step missing: {section}"
    assert "经 平台研发部-张瑶 审批建立" in out  # a group request approved by card
    assert "总经办-陈佳悦：未经审批加入，已移出本群" in out
    assert "警告：平台研发部-孙强杰 违反群规「广告」" in out and "前不得再入群，已移出本群" in out
    assert "6/6 人已答" in out and "晚上十点后别再发通知了" in out
    assert "已回应：有疑问" in out  # the second button is a response
    assert "任务《今天下班前修复三楼打印机》罚款 100 元" in out  # a task's fine
    assert "已转交给 平台研发部-罗鑫磊" in out and "罗鑫磊 已解决" in out  # a hand-over, resolved
    assert "已报到「早九点位置报告」：上海市黄浦区人民广场 客户现场" in out  # a location check-in
    assert "每个工作日 09:00" in out and "按时 2" in out  # the schedule, two answered in time
    assert "以 郑琳伟（人事）登录后打开 报表：HTTP 200" in out
    assert "/console/" in out.rsplit("在哪里看", 1)[1]  # the console's address at the end
    assert (workdir / "wecom-app.db").exists()


def test_keep_running_leaves_a_worker_and_the_settings_for_the_cli(tmp_path: Path) -> None:
    import os
    import signal
    import time

    workdir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "DATABASE_URL"))}
    demo = subprocess.Popen(
        [sys.executable, "-m", "wecom_app.demo.run", "--workdir", str(workdir), "--only",
         "foundation", "--keep-running"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    seen = []
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            seen.append(line)
            if "Ctrl-C stops them" in line or not line:
                break
        out = "".join(seen)
        assert "Ctrl-C stops them" in out and "worker" in out, out[-3000:]
        assert f"cd {workdir} && wecom-app groups list" in out
        settings = (workdir / ".env").read_text(encoding="utf-8")
        assert "DATABASE_URL=sqlite:///" in settings and "WECOM_APP_API_TOKEN=" in settings
        stats = subprocess.run([str(Path(sys.executable).parent / "wecom-app"), "inbox", "stats"],
                               cwd=workdir, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert stats.returncode == 0 and "done" in stats.stdout, stats.stdout + stats.stderr
        for _ in range(50):  # the worker started and writes its log
            if (workdir / "worker.log").exists():
                break
            time.sleep(0.1)
        assert (workdir / "worker.log").exists()
    finally:
        demo.send_signal(signal.SIGINT)
        demo.communicate(timeout=60)  # reads the rest and closes the pipe
