"""Installing the project raises no packaging deprecation, even verbose (a fresh virtualenv,
pip's build isolation with the current setuptools, as a first run of scripts/demo or
scripts/test does). setuptools' note on every editable install ("Editable installation ...
folders with the same name as your package") is information, not a deprecation, and stays."""

from __future__ import annotations

import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARNING = re.compile(r"deprecat|will no longer be supported", re.IGNORECASE)


def test_an_install_raises_no_packaging_deprecation(tmp_path: Path) -> None:
    venv.create(tmp_path / "env", with_pip=True)
    pip = tmp_path / "env" / ("Scripts" if sys.platform == "win32" else "bin") / "pip"
    done = subprocess.run(
        [str(pip), "install", "-v", "--no-deps", "--disable-pip-version-check", "-e", str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # the machine's pip configuration may name index folders that do not exist: not ours
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "is ignored" not in line]
    assert not [line for line in lines if WARNING.search(line)], "\n".join(lines)
