"""Helpers shared by CLI commands: settings, services, JSON output, error reporting."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from wecom_app.errors import AppError, ConfigError, WeComError

F = TypeVar("F", bound=Callable[..., Any])


def load_services() -> Any:
    """Settings from the environment and the services built on them; a bad key exits 2."""
    from wecom_app.app import Services
    from wecom_app.clock import SystemClock
    from wecom_app.settings import load_settings
    from wecom_app.worker import load_features

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    load_features()
    return Services(load_settings(), SystemClock())


def echo_json(data: Any) -> None:
    """Print data as pretty, UTF-8 JSON."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def friendly_errors(fn: F) -> F:
    """Turn configuration and WeCom errors into a one-line message and a non-zero exit."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            click.echo(f"configuration error: {exc.key}: {exc.reason}", err=True)
            sys.exit(2)
        except WeComError as exc:
            click.echo(f"WeCom error {exc.errcode}: {exc.errmsg}", err=True)
            sys.exit(1)
        except AppError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]
