"""The in-group explanation posted when departed staff are removed ("清退时须公开说明事因")."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

DEFAULT_NOTICE = "{display_name} 已离职，已移出本群"

_template: str | None = None


FIELDS = ("display_name", "name", "userid", "reason")


def check_template(value: str) -> str:
    """Return the template if it renders with the known fields; ValueError naming the problem."""
    try:
        value.format(**dict.fromkeys(FIELDS, "x"))
    except KeyError as exc:
        raise ValueError(f"unknown field {{{exc.args[0]}}}; use {{display_name}} {{name}} "
                         "{userid} {reason}") from None  # fmt: skip
    except (IndexError, ValueError) as exc:
        raise ValueError(f"is not a valid template: {exc}") from None
    return value


def configure(settings: Any) -> None:
    """Use the deployment's WECOM_DEPARTURE_NOTICE template from now on."""
    global _template
    _template = getattr(settings, "departure_notice", None) or DEFAULT_NOTICE


def template() -> str:
    """The configured template; read from the environment once if nobody configured it."""
    global _template
    if _template is None:
        from wecom_app.errors import ConfigError
        from wecom_app.settings import load_settings

        try:
            configure(load_settings())
        except ConfigError:
            _template = DEFAULT_NOTICE
    return _template or DEFAULT_NOTICE


def departure_text(people: Iterable[tuple[str, str, str]], reason: str = "已离职") -> str:
    """One line per removed person, from (userid, name, display_name) triples."""
    lines = []
    for userid, name, display_name in people:
        fields = {"display_name": display_name or name or userid, "name": name or userid,
                  "userid": userid, "reason": reason}  # fmt: skip
        try:
            lines.append(template().format(**fields))
        except (KeyError, IndexError, ValueError):
            lines.append(DEFAULT_NOTICE.format(**fields))
    return "\n".join(lines)
