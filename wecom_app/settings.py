"""Settings from the environment, a `.env` file, or a TOML file named by WECOM_APP_CONFIG.

Every key is spelled as PRODUCT.md gives it (WECOM_CORP_ID, ...). A missing or malformed key
raises ConfigError naming it; secrets are SecretStr so they never print in logs or reprs. Keys
that belong to one feature (naming template, departure notice, acknowledgement words, SLA files)
are checked by that feature's register() when the composition root builds the app, which every
entry point does at start-up, so a bad one still stops start-up naming its key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from wecom_app.errors import ConfigError
from wecom_app.wecom.crypto import decode_aes_key

DEFAULT_DATABASE_URL = "sqlite:///instance/wecom-app.db"


def _key(name: str) -> Any:
    """Bind a field to exactly one environment/TOML key name."""
    return AliasChoices(name)


class _FromEverywhere(BaseSettings):
    """Settings read from the environment, then `.env`, then the TOML file of WECOM_APP_CONFIG."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read init arguments, then the environment, then `.env`, then the TOML file."""
        sources = [init_settings, env_settings, dotenv_settings]
        toml_path = os.environ.get("WECOM_APP_CONFIG")
        if toml_path:
            if not Path(toml_path).is_file():
                raise ConfigError("WECOM_APP_CONFIG", f"文件不存在：{toml_path}")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)


def _check_database_url(value: str) -> str:
    if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
        raise ValueError("须为 sqlite:// 或 postgresql:// 开头的数据库地址")
    return value


class Settings(_FromEverywhere):
    """Validated configuration of one deployment."""

    corp_id: str = Field(validation_alias=_key("WECOM_CORP_ID"), min_length=1)
    agent_id: int = Field(validation_alias=_key("WECOM_AGENT_ID"), gt=0)
    app_secret: SecretStr = Field(validation_alias=_key("WECOM_APP_SECRET"))
    callback_token: SecretStr = Field(validation_alias=_key("WECOM_CALLBACK_TOKEN"))
    callback_aes_key: SecretStr = Field(validation_alias=_key("WECOM_CALLBACK_AES_KEY"))
    contacts_secret: SecretStr | None = Field(None, validation_alias=_key("WECOM_CONTACTS_SECRET"))
    contacts_token: SecretStr | None = Field(None, validation_alias=_key("WECOM_CONTACTS_TOKEN"))
    contacts_aes_key: SecretStr | None = Field(
        None, validation_alias=_key("WECOM_CONTACTS_AES_KEY")
    )
    api_base: str = Field("https://qyapi.weixin.qq.com", validation_alias=_key("WECOM_API_BASE"))
    oauth_base: str = Field("https://open.weixin.qq.com", validation_alias=_key("WECOM_OAUTH_BASE"))
    web_login_base: str = Field(
        "https://login.work.weixin.qq.com", validation_alias=_key("WECOM_WEB_LOGIN_BASE")
    )
    # who sees everything in the console (HR, administrators): userids and tags, comma-separated
    console_admins: str | None = Field(None, validation_alias=_key("WECOM_CONSOLE_ADMINS"))
    console_admin_tags: str | None = Field(None, validation_alias=_key("WECOM_CONSOLE_ADMIN_TAGS"))
    http_proxy: str | None = Field(None, validation_alias=_key("WECOM_HTTP_PROXY"))
    database_url: str = Field(DEFAULT_DATABASE_URL, validation_alias=_key("DATABASE_URL"))
    api_token: SecretStr = Field(validation_alias=_key("WECOM_APP_API_TOKEN"))
    callback_max_age: int = Field(300, ge=0, validation_alias=_key("WECOM_CALLBACK_MAX_AGE"))
    callback_max_bytes: int = Field(
        256 * 1024, ge=1024, validation_alias=_key("WECOM_CALLBACK_MAX_BYTES")
    )
    public_url: str | None = Field(None, validation_alias=_key("WECOM_APP_PUBLIC_URL"))
    session_secret: SecretStr | None = Field(
        None, validation_alias=_key("WECOM_APP_SESSION_SECRET"), min_length=32
    )
    log_level: str = Field("INFO", validation_alias=_key("WECOM_APP_LOG_LEVEL"))
    log_format: str = Field("text", validation_alias=_key("WECOM_APP_LOG_FORMAT"))
    sla_calendar_file: str | None = Field(None, validation_alias=_key("WECOM_APP_SLA_CALENDAR"))
    sla_policy_file: str | None = Field(None, validation_alias=_key("WECOM_APP_SLA_POLICY"))
    group_policy_file: str | None = Field(None, validation_alias=_key("WECOM_APP_GROUP_POLICY"))
    naming_template: str = Field(
        "{department}-{name}", validation_alias=_key("WECOM_NAMING_TEMPLATE")
    )
    departure_notice: str | None = Field(None, validation_alias=_key("WECOM_DEPARTURE_NOTICE"))
    notice_ack_words: str | None = Field(None, validation_alias=_key("WECOM_NOTICE_ACK_WORDS"))
    spool_dir: str = Field("instance/spool", validation_alias=_key("WECOM_APP_SPOOL_DIR"))
    # processed callbacks are deleted after this many days (0: kept); the ledger is always kept
    inbox_retention_days: int = Field(
        30, ge=0, le=3650, validation_alias=_key("WECOM_APP_INBOX_RETENTION_DAYS")
    )

    @field_validator("log_level")
    @classmethod
    def _log_level_known(cls, value: str) -> str:
        if value.strip().upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("须为 DEBUG、INFO、WARNING、ERROR 或 CRITICAL")
        return value.strip().upper()

    @field_validator("log_format")
    @classmethod
    def _log_format_known(cls, value: str) -> str:
        if value.strip().lower() not in ("text", "json"):
            raise ValueError("须为 text 或 json")
        return value.strip().lower()

    @field_validator("callback_aes_key", "contacts_aes_key")
    @classmethod
    def _aes_key_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_aes_key(value.get_secret_value())
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url_shape(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("须为本服务的访问地址，例如 https://wecom-app.example.com")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url_shape(cls, value: str) -> str:
        return _check_database_url(value)

    @property
    def contacts_channel_configured(self) -> bool:
        """Whether the contacts-sync callback channel has its token and key."""
        return self.contacts_token is not None and self.contacts_aes_key is not None

    def signing_key(self) -> bytes:
        """The key that signs browser sessions: WECOM_APP_SESSION_SECRET, or one derived from
        the app secret and the callback key (changing either ends every session)."""
        if self.session_secret is not None:
            return self.session_secret.get_secret_value().encode()
        material = self.app_secret.get_secret_value() + self.callback_aes_key.get_secret_value()
        return hmac.new(material.encode(), b"wecom-app browser sessions", hashlib.sha256).digest()

    def secret(self, name: str) -> str:
        """Return the plain value of a secret field (never log the result)."""
        value = getattr(self, name)
        return value.get_secret_value() if value is not None else ""


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning validation failures into a ConfigError naming the key."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise _config_error(exc) from None
    if (settings.contacts_token is None) != (settings.contacts_aes_key is None):
        missing = (
            "WECOM_CONTACTS_TOKEN" if settings.contacts_token is None else "WECOM_CONTACTS_AES_KEY"
        )
        raise ConfigError(missing, "设置了另一个通讯录回调参数时必须同时设置")
    return settings


def _config_error(exc: ValidationError) -> ConfigError:
    """Name every bad key, with pydantic's reason but never the offending value."""
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        field = str(err["loc"][0]) if err["loc"] else "?"
        key = _alias_of(field)
        problems.append((key, _reason(err)))
    key, reason = problems[0]
    more = "；".join(f"{k} {r}" for k, r in problems[1:])
    return ConfigError(key, reason + (f"（另有：{more}）" if more else ""))


# pydantic's error types, as an administrator reads them (the rest: the validator's own words)
REASONS = {
    "missing": "未设置",
    "int_parsing": "须为整数",
    "int_type": "须为整数",
    "bool_parsing": "须为 true 或 false",
    "greater_than": "须大于 {gt}",
    "greater_than_equal": "须大于或等于 {ge}",
    "less_than_equal": "须小于或等于 {le}",
    "string_too_short": "至少需要 {min_length} 个字符",
    "too_short": "至少需要 {min_length} 个字符",
    "string_type": "须为文本",
}


def _reason(err: Any) -> str:
    template = REASONS.get(err["type"])
    if template is not None:
        return template.format(**(err.get("ctx") or {}))
    return str(err["msg"]).removeprefix("Value error, ")


def _alias_of(field: str) -> str:
    """Map a field name back to its environment key."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return field


class DatabaseSettings(_FromEverywhere):
    """DATABASE_URL alone, read from the same places as every other setting (the environment,
    `.env`, the TOML file of WECOM_APP_CONFIG), for commands that need only the database."""

    database_url: str = Field(DEFAULT_DATABASE_URL, validation_alias=_key("DATABASE_URL"))

    @field_validator("database_url")
    @classmethod
    def _database_url_shape(cls, value: str) -> str:
        return _check_database_url(value)


def load_database_url() -> str:
    """DATABASE_URL as every command reads it; a malformed one raises ConfigError."""
    try:
        return DatabaseSettings().database_url  # type: ignore[call-arg]  # from the sources
    except ValidationError as exc:
        raise _config_error(exc) from None
