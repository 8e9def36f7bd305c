"""`GET /healthz` for load balancers: the process answers and the database is reachable."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

health_blueprint = Blueprint("health", __name__)


@health_blueprint.get("/healthz")
def healthz():
    """Answer 200 when the database answers, 503 otherwise."""
    from wecom_app.app import services

    try:
        with services(current_app).db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return jsonify(status="unavailable", database="down"), 503
    return jsonify(status="ok", database="up")


@health_blueprint.route("/livez", methods=["GET", "POST"])
def livez():
    """Liveness: answer 200 without touching the database (also the benchmarks' baseline)."""
    return "", 200
