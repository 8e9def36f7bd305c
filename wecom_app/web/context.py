"""The services of the app serving the current request (set by the factory)."""

from __future__ import annotations

from flask import Flask, current_app

from wecom_app.services import Services

KEY = "wecom_app.services"


def bind(app: Flask, services: Services) -> None:
    """Attach the services to an app (the factory does this once)."""
    app.extensions[KEY] = services


def services(app: Flask | None = None) -> Services:
    """The services of the given app, or of the app handling the current request."""
    found = (app or current_app).extensions[KEY]
    assert isinstance(found, Services)
    return found
