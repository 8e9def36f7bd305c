"""The Flask application factory."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from callbacks.inbox import Inbox
from callbacks.spool import Spool
from callbacks.views import callbacks_blueprint
from wecom_app.clock import Clock
from wecom_app.compose import Composition, compose
from wecom_app.settings import Settings, load_settings
from wecom_app.web import context
from wecom_app.web.api import api_blueprint
from wecom_app.web.errors import register_error_handlers
from wecom_app.web.health import HealthCheck, health_blueprint

COMPOSITION = "wecom_app.composition"


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    composition: Composition | None = None,
    **overrides: Any,
) -> Flask:
    """Build the web application; settings come from the environment unless given.

    Pass `composition` to serve one built elsewhere (tests share it with the worker).
    """
    if composition is None:
        composition = compose(settings or load_settings(**overrides), clock=clock)
    services = composition.services
    app = Flask(__name__, instance_relative_config=True)
    app.json = IsoJSON(app)
    settings = services.settings
    app.config["MAX_CONTENT_LENGTH"] = settings.callback_max_bytes
    # Browser sessions (the confirm page): signed cookies, never readable by scripts, sent on
    # WeCom's redirect back (Lax), over HTTPS only when the app is served that way, 8 hours.
    app.secret_key = settings.signing_key()
    app.config.update(
        SESSION_COOKIE_NAME="wecom_app_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(
            settings.public_url and settings.public_url.startswith("https:")
        ),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
    )
    app.extensions[COMPOSITION] = composition
    context.bind(app, services)
    _request_ids(app)

    spool = Spool(Path(services.settings.spool_dir))
    inbox = Inbox(services.db, spool)
    app.register_blueprint(
        health_blueprint(HealthCheck(services, spool, composition.registry.health))
    )
    app.register_blueprint(callbacks_blueprint(services.settings, inbox, services.clock))
    app.register_blueprint(api_blueprint(composition.registry.api))
    for page in composition.registry.pages:
        app.register_blueprint(page)
    register_error_handlers(app)
    inbox.resume_spooled()
    return app


class IsoJSON(DefaultJSONProvider):
    """JSON as the API promises it: Chinese as Chinese (not \\u-escaped), times in ISO 8601
    with their offset (Flask's default writes RFC 1123 dates)."""

    ensure_ascii = False

    @staticmethod
    def default(o: Any) -> Any:
        """Times and dates in ISO 8601; anything else as Flask does."""
        if isinstance(o, datetime | date):
            return o.isoformat()
        return DefaultJSONProvider.default(o)


def composition_of(app: Flask) -> Composition:
    """The composition an app serves."""
    found = app.extensions[COMPOSITION]
    assert isinstance(found, Composition)
    return found


def _request_ids(app: Flask) -> None:
    """Every request's log lines carry its id (the caller's X-Request-ID, else a new one), and
    the answer says which it was."""
    from flask import g, request

    from wecom_app import logs

    @app.before_request
    def _take_id() -> None:
        g.request_id = logs.accept_id(request.headers.get("X-Request-ID"))
        g.request_id_token = logs.set_id(g.request_id)

    @app.after_request
    def _give_id(response: Any) -> Any:
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        return response

    @app.teardown_request
    def _drop_id(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            logs.reset_id(token)
