"""What the browser tests share: Debian's Chromium driven by Playwright, and where screenshots go
(artifacts/screenshots/, WECOM_APP_ARTIFACTS overrides)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("WECOM_APP_ARTIFACTS", "artifacts")) / "screenshots"

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - scripts/test installs it
    sync_playwright = None  # type: ignore[assignment]

needs_browser = pytest.mark.skipif(
    (CHROMIUM is None or sync_playwright is None) and not os.environ.get("WECOM_APP_REQUIRE_TOOLS"),
    reason="chromium or playwright is not installed (scripts/test installs them)",
)
