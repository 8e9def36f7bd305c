"""Helpers shared by CLI commands: the composition, JSON output, error reporting."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import click
from sqlalchemy.exc import DBAPIError

from wecom_app.compose import Composition, compose
from wecom_app.errors import AppError, ConfigError, WeComError
from wecom_app.services import Services

F = TypeVar("F", bound=Callable[..., Any])


def load_composition() -> Composition:
    """Settings from the environment and everything built on them; a bad key exits 2."""
    from wecom_app.clock import SystemClock
    from wecom_app.settings import load_settings

    return compose(load_settings(), clock=SystemClock())  # the log format and level too


@contextmanager
def composition_from_env() -> Iterator[Composition]:
    """The composition for one command, closed when the command ends; its log lines carry
    one id for the command."""
    from wecom_app import logs

    with logs.working_on(logs.new_id("cli-")):
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
    """Turn configuration, database and WeCom errors into one line (Chinese, naming the key)
    and a non-zero exit: 2 for configuration, 1 for the rest."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            click.echo(f"配置错误：{exc.key}：{exc.reason}", err=True)
            sys.exit(2)
        except WeComError as exc:
            click.echo(f"企业微信接口错误 {exc.errcode}：{exc.errmsg}", err=True)
            sys.exit(1)
        except AppError as exc:
            click.echo(f"错误：{exc}", err=True)
            sys.exit(1)
        except DBAPIError as exc:
            click.echo(database_problem(exc), err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def database_problem(exc: DBAPIError) -> str:
    """One line for a database that cannot be reached or has no (current) tables."""
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
    if _missing_table(detail):
        return (
            "数据库尚未初始化或版本落后（DATABASE_URL）：请先运行 wecom-app db upgrade。"
            f"（{detail}）"
        )
    return f"数据库无法访问（DATABASE_URL）：{detail}"


def _missing_table(detail: str) -> bool:
    lowered = detail.lower()
    return "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered)


def beijing_time(value: str | None) -> str:
    """An ISO 8601 time as a person in China reads it: 2026-01-05 17:00:03 (Beijing time)."""
    if not value:
        return ""
    from datetime import datetime

    from wecom_app.clock import BEIJING

    at = datetime.fromisoformat(value).astimezone(BEIJING)
    return at.strftime("%Y-%m-%d %H:%M:%S")
