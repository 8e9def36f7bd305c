"""The Flask application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from wecom_app.clock import Clock, SystemClock
from wecom_app.db import Database
from wecom_app.settings import Settings, load_settings


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
    from wecom_app.web.errors import register_error_handlers
    from wecom_app.web.health import health_blueprint

    app.register_blueprint(health_blueprint)
    app.register_blueprint(callbacks_blueprint(settings))
    register_error_handlers(app)
    return app


class Services:
    """What the web layer needs at hand: settings, clock, database."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.db = Database(settings.database_url)


def services(app: Flask) -> Services:
    """Return the Services object bound to an app."""
    return app.extensions["wecom_app"]
