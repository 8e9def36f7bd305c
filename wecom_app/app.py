"""The Flask application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from wecom_app.clock import Clock, SystemClock
from wecom_app.db import Database
from wecom_app.settings import Settings, load_settings
from wecom_app.wecom.client import WeComClient


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, **overrides: Any
) -> Flask:
    """Build the web application; settings come from the environment unless given."""
    settings = settings or load_settings(**overrides)
    app = Flask(__name__, instance_relative_config=True)
    app.config["MAX_CONTENT_LENGTH"] = settings.callback_max_bytes
    logging.getLogger("wecom_app").setLevel(settings.log_level.upper())
    logging.getLogger("callbacks").setLevel(settings.log_level.upper())

    services = Services(settings, clock or SystemClock())
    app.extensions["wecom_app"] = services

    from callbacks.views import callbacks_blueprint
    from wecom_app.web import routes  # noqa: F401  (feature modules add their API routes)
    from wecom_app.web.api import api_blueprint
    from wecom_app.web.errors import register_error_handlers
    from wecom_app.web.health import health_blueprint

    app.register_blueprint(health_blueprint)
    app.register_blueprint(callbacks_blueprint(settings))
    app.register_blueprint(api_blueprint)
    register_error_handlers(app)
    return app


class Services:
    """What the web layer, CLI and worker need at hand: settings, clock, database, WeCom client."""

    def __init__(self, settings: Settings, clock: Clock, db: Database | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.db = db or Database(settings.database_url)
        self._client: WeComClient | None = None
        # The departure explanation is rendered where only a session is at hand (an outbox
        # result handler): give it this deployment's template now.
        from wecom_app.groups import notice

        notice.configure(settings)

    @property
    def client(self) -> WeComClient:
        """The WeCom client, built on first use (API base and proxy from settings)."""
        if self._client is None:
            s = self.settings
            self._client = WeComClient(
                s.corp_id,
                s.agent_id,
                s.secret("app_secret"),
                s.secret("contacts_secret") or None,
                base_url=s.api_base,
                proxy=s.http_proxy,
                clock=self.clock,
            )
        return self._client

    def use_client(self, client: WeComClient) -> None:
        """Replace the WeCom client (tests and benchmarks tune retries and pacing)."""
        if self._client is not None:
            self._client.close()
        self._client = client

    def close(self) -> None:
        """Release the database pool and the HTTP client."""
        if self._client is not None:
            self._client.close()
        self.db.dispose()


def services(app: Flask) -> Services:
    """Return the Services object bound to an app."""
    return app.extensions["wecom_app"]
