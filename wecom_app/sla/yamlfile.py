"""Reading small YAML configuration files so that every error names a line and a reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from wecom_app.errors import ConfigError


class YamlFile:
    """A parsed YAML mapping that remembers where each key sits, for error messages."""

    def __init__(self, path: str | Path, text: str | None = None) -> None:
        self.path = str(path)
        if text is None:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(self.path, f"无法读取：{exc.strerror or exc}") from None
        try:
            self.node = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 0
            raise ConfigError(f"{self.path}:{line}", f"YAML 格式错误：{exc.problem}") from None
        if self.data is None:
            self.data = {}
        if not isinstance(self.data, dict):
            raise ConfigError(f"{self.path}:1", "顶层须为映射（key: value）")

    def line_of(self, path: tuple[str | int, ...]) -> int:
        """The 1-based line of the value at a key path, or of its nearest existing parent."""
        node, line = self.node, 1
        for part in path:
            if isinstance(node, yaml.MappingNode):
                match = [v for k, v in node.value if k.value == str(part)]
                if not match:
                    break
                node = match[0]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    break
                node = node.value[part]
            else:
                break
            line = node.start_mark.line + 1
        return line

    def error(self, path: tuple[str | int, ...], reason: str) -> ConfigError:
        """A ConfigError naming file, line and key path."""
        dotted = ".".join(str(p) for p in path) or "(top)"
        return ConfigError(f"{self.path}:{self.line_of(path)}", f"{dotted}: {reason}")


def check_keys(doc: YamlFile, path: tuple[str | int, ...], value: Any, allowed: set[str]) -> None:
    """Refuse a mapping that is not one, or that has keys outside `allowed` (typos)."""
    if not isinstance(value, dict):
        raise doc.error(path, "须为映射（key: value）")
    for key in value:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise doc.error((*path, key), f"未知的键（可用：{known}）")
