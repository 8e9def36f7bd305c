"""The JSON API under /api/v1/, guarded by `Authorization: Bearer <WECOM_APP_API_TOKEN>`.

Each feature brings its own blueprint of routes; `api_blueprint` mounts them all below one
prefix behind one token check. This module owns only auth, errors and the request transaction.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.orm import Session

from wecom_app.web.context import services


class ApiError(Exception):
    """A client error answered as JSON: {"error": message} with a 4xx status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def require_token() -> Response | None:
    """Refuse requests without the configured bearer token (compared in constant time)."""
    expected = services().settings.secret("api_token")
    header = request.headers.get("Authorization", "")
    given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        response = jsonify(error="missing or wrong bearer token")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    return None


def api_error(exc: ApiError) -> tuple[Response, int]:
    """Answer an ApiError as JSON."""
    return jsonify(error=exc.message), exc.status


def api_blueprint(children: Iterable[Blueprint]) -> Blueprint:
    """The /api/v1 blueprint with every feature's routes below it, built once per app."""
    bp = Blueprint("api", __name__, url_prefix="/api/v1")
    bp.before_request(require_token)
    bp.register_error_handler(ApiError, api_error)
    for child in children:
        bp.register_blueprint(child)
    return bp


@contextmanager
def transaction() -> Iterator[Session]:
    """A session in one transaction on the app's database."""
    with services().db.begin() as session:
        yield session
