"""The JSON API under /api/v1/, guarded by `Authorization: Bearer <WECOM_APP_API_TOKEN>`.

Each feature brings its own blueprint of routes; `api_blueprint` mounts them all below one
prefix behind one token check. This module owns only auth, errors and the request transaction.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.orm import Session

from wecom_app import checks
from wecom_app.checks import InputError
from wecom_app.web import tokens
from wecom_app.web.context import services

TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes"), ("0", "false", "no")


class ApiError(Exception):
    """A client error answered as JSON: {"error": message} with a 4xx status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


READING = frozenset({"GET", "HEAD"})


def require_token() -> Response | None:
    """Refuse requests without a valid bearer token: WECOM_APP_API_TOKEN (compared in constant
    time) or a named token (see web.tokens); a read-only token may only read."""
    header = request.headers.get("Authorization", "")
    given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    expected = services().settings.secret("api_token")
    if given and hmac.compare_digest(given.encode(), expected.encode()):
        return None
    found = None
    if given.startswith(tokens.PREFIX) and len(given) < 200:
        with services().db.read() as session:
            found = tokens.find(session, given)
    if found is None:
        response = jsonify(error="缺少或错误的访问令牌（Authorization: Bearer 令牌）")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    if found.access != "write" and request.method not in READING:
        response = jsonify(error=f"令牌 {found.name} 只读，不能修改")
        response.status_code = 403
        return response
    return None


def api_error(exc: ApiError) -> tuple[Response, int]:
    """Answer an ApiError as JSON."""
    return jsonify(error=exc.message), exc.status


def input_error(exc: InputError) -> tuple[Response, int]:
    """Answer refused input as 400, naming the field."""
    return jsonify(error=str(exc), field=exc.field), 400


def body() -> dict[str, Any]:
    """The request's JSON object, checked (see wecom_app.checks.json_object)."""
    return checks.json_object(request.get_data(cache=True))


def arg_int(
    name: str, default: int | None = None, low: int = 0, high: int = checks.INT32_MAX
) -> int | None:
    """An integer query parameter in [low, high]; absent or empty gives the default."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    return checks.integer(raw, name, low, high)


def arg_bool(name: str, default: bool = False) -> bool:
    """A yes/no query parameter: 1/true/yes or 0/false/no."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in TRUE_WORDS:
        return True
    if raw.lower() in FALSE_WORDS:
        return False
    raise InputError(name, "须为 1/true/yes 或 0/false/no")


def arg_text(name: str, max_length: int = 64) -> str | None:
    """A short text query parameter, checked; absent or empty gives None."""
    raw = request.args.get(name)
    return checks.text(raw, name, max_length) or None if raw else None


def api_blueprint(children: Iterable[Blueprint]) -> Blueprint:
    """The /api/v1 blueprint with every feature's routes below it, built once per app."""
    bp = Blueprint("api", __name__, url_prefix="/api/v1")
    bp.before_request(require_token)
    bp.register_error_handler(ApiError, api_error)
    bp.register_error_handler(InputError, input_error)
    for child in children:
        bp.register_blueprint(child)
    return bp


@contextmanager
def transaction() -> Iterator[Session]:
    """A session in one transaction on the app's database."""
    with services().db.begin() as session:
        yield session
