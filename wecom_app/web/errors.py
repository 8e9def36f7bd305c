"""HTTP error handlers: short plain reasons, never a stack trace, never a 500 page with details."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


def register_error_handlers(app: Flask) -> None:
    """Answer HTTP errors with a short reason; log unexpected exceptions and answer 500 plainly."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        log.info("%s %s -> %s", request.method, request.path, exc.code)
        return Response(exc.name.lower(), exc.code or 500, content_type="text/plain; charset=utf-8")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return Response("internal error", 500, content_type="text/plain; charset=utf-8")
