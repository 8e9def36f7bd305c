"""The in-group explanation posted whenever the app removes someone ("清退时须公开说明事因")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from wecom_app.errors import ConfigError
from wecom_app.settings import Settings

DEFAULT_NOTICE = "{display_name} 已离职，已移出本群"
DEPARTED_REASON = "已离职"
# Any other removal says its own reason ("不再符合本群规则", "已不在本应用可见范围"...)
REMOVAL_NOTICE = "{display_name}：{reason}，已移出本群"
FIELDS = ("display_name", "name", "userid", "reason")


def check_template(value: str) -> str:
    """Return the template if it renders with the known fields; ValueError naming the problem."""
    try:
        value.format(**dict.fromkeys(FIELDS, "x"))
    except KeyError as exc:
        raise ValueError(f"未知字段 {{{exc.args[0]}}}；可用 {{display_name}} {{name}} "
                         "{userid} {reason}") from None  # fmt: skip
    except (IndexError, ValueError) as exc:
        raise ValueError(f"不是有效的模板：{exc}") from None
    return value


@dataclass(frozen=True)
class DepartureNotice:
    """One deployment's departure text (WECOM_DEPARTURE_NOTICE), checked when built."""

    template: str = DEFAULT_NOTICE

    def __post_init__(self) -> None:
        check_template(self.template)

    @classmethod
    def from_settings(cls, settings: Settings) -> DepartureNotice:
        """The configured notice; ConfigError naming WECOM_DEPARTURE_NOTICE when it is bad."""
        try:
            return cls(settings.departure_notice or DEFAULT_NOTICE)
        except ValueError as exc:
            raise ConfigError("WECOM_DEPARTURE_NOTICE", str(exc)) from None

    def text(self, people: Iterable[tuple[str, str, str, str]]) -> str:
        """One line per removed person, from (userid, name, display_name, reason): departures
        in the deployment's words, every other removal with its own reason."""
        lines = []
        for userid, name, display_name, reason in people:
            fields = {"display_name": display_name or name or userid, "name": name or userid,
                      "userid": userid, "reason": reason or DEPARTED_REASON}  # fmt: skip
            template = self.template if reason == DEPARTED_REASON else REMOVAL_NOTICE
            lines.append(template.format(**fields))
        return "\n".join(lines)
