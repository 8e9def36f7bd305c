"""HTTP error handlers: short plain reasons, never a stack trace, never a 500 page with details."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

HTTP_REASONS = {
    400: "请求格式有误",
    404: "没有这个地址",
    405: "此地址不支持该请求方法",
    413: "请求体过大",
    415: "不支持的内容类型",
}

log = logging.getLogger(__name__)


def register_error_handlers(app: Flask) -> None:
    """Answer HTTP errors with a short reason; log unexpected exceptions and answer 500 plainly."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        log.info("%s %s -> %s", request.method, request.path, exc.code)
        code = exc.code or 500
        if request.path.startswith("/api/"):  # the API answers JSON, whatever the error
            response = jsonify(error=HTTP_REASONS.get(code, exc.name.lower()))
            response.status_code = code
            return response
        return Response(exc.name.lower(), code, content_type="text/plain; charset=utf-8")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if request.path.startswith("/api/"):
            response = jsonify(error="服务器内部错误")
            response.status_code = 500
            return response
        return Response("internal error", 500, content_type="text/plain; charset=utf-8")
