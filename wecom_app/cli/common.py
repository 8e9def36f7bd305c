"""Helpers shared by CLI commands: the composition, JSON output, error reporting."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import click

from wecom_app.compose import Composition, compose
from wecom_app.errors import AppError, ConfigError, WeComError
from wecom_app.services import Services

F = TypeVar("F", bound=Callable[..., Any])


def load_composition() -> Composition:
    """Settings from the environment and everything built on them; a bad key exits 2."""
    from wecom_app.clock import SystemClock
    from wecom_app.settings import load_settings

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return compose(load_settings(), clock=SystemClock())


@contextmanager
def composition_from_env() -> Iterator[Composition]:
    """The composition for one command, closed when the command ends."""
    composition = load_composition()
    try:
        yield composition
    finally:
        composition.close()


@contextmanager
def services_from_env() -> Iterator[Services]:
    """The services for one command, closed when the command ends."""
    with composition_from_env() as composition:
        yield composition.services


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
