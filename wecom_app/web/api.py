"""The JSON API under /api/v1/, guarded by `Authorization: Bearer <WECOM_APP_API_TOKEN>`.

Feature modules add their routes to `api_blueprint`; this module owns only auth and errors.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.orm import Session

api_blueprint = Blueprint("api", __name__, url_prefix="/api/v1")


class ApiError(Exception):
    """A client error answered as JSON: {"error": message} with a 4xx status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@api_blueprint.before_request
def require_token() -> Response | None:
    """Refuse requests without the configured bearer token (compared in constant time)."""
    from wecom_app.app import services

    expected = services(current_app).settings.secret("api_token")
    header = request.headers.get("Authorization", "")
    given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        response = jsonify(error="missing or wrong bearer token")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    return None


@api_blueprint.errorhandler(ApiError)
def api_error(exc: ApiError) -> tuple[Response, int]:
    """Answer an ApiError as JSON."""
    return jsonify(error=exc.message), exc.status


@contextmanager
def transaction() -> Iterator[Session]:
    """A session in one transaction on the app's database."""
    from wecom_app.app import services

    with services(current_app).db.begin() as session:
        yield session
