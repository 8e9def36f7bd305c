"""wecom-app: group governance and acknowledged notices for WeCom (企业微信)."""

from wecom_app.app import create_app

__all__ = ["create_app"]
