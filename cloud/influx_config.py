"""The InfluxDB settings every role shares (collector, API, problems, report): where InfluxDB is,
which database, how to authenticate and how long to wait.

Secrets never come from the command line: a config file may name a ``password_file`` or a
``token_file``, and ``PANTAU_INFLUX_*`` environment variables (the ones ``pantau dashboards
build`` reads) fill what the command line and the config file leave unset (``with_env``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Settings field -> environment variable.
ENV_VARS: Mapping[str, str] = {
    "url": "PANTAU_INFLUX_URL",
    "database": "PANTAU_INFLUX_DB",
    "username": "PANTAU_INFLUX_USER",
    "password": "PANTAU_INFLUX_PASSWORD",
    "token": "PANTAU_INFLUX_TOKEN",
}
S = TypeVar("S", bound="InfluxSettings")


def _read_secret(path: object, key: str) -> str:
    try:
        text = Path(str(path)).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"{key}: cannot read {path}: {exc.strerror}") from None
    if not text:
        raise ValueError(f"{key}: {path} is empty")
    return text


class InfluxSettings(BaseModel):
    """Where InfluxDB is and how to authenticate: a user and password (1.x), or a token (2.x,
    3.x: their v1 compatibility API takes ``Authorization: Token``), or neither."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(default="http://127.0.0.1:8086", description="http(s)://host:port")
    database: str = Field(default="pantau", min_length=1, max_length=64, description="database")
    username: str | None = Field(default=None, min_length=1, description="InfluxDB 1.x user")
    password: str | None = Field(
        default=None, repr=False, description="its password (prefer password_file or the env)"
    )
    password_file: Path | None = Field(
        default=None, description="read the password from this file (wins over password)"
    )
    token: str | None = Field(
        default=None, min_length=1, repr=False, description="InfluxDB 2.x/3.x token"
    )
    token_file: Path | None = Field(
        default=None, description="read the token from this file (wins over token)"
    )
    timeout_s: float = Field(
        default=10.0, gt=0, le=600, description="per-request timeout; a slower query fails"
    )

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key, target in (("password_file", "password"), ("token_file", "token")):
            if data.get(key) is not None:
                data[target] = _read_secret(data[key], key)
        return data

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"InfluxDB URL {value!r} must look like http://host:8086")
        if parts.username or parts.password:
            raise ValueError(
                "put InfluxDB credentials in username/password or a token, not the URL"
            )
        return value

    @model_validator(mode="after")
    def _one_kind_of_credentials(self) -> InfluxSettings:
        if self.token and (self.username or self.password):
            raise ValueError("give InfluxDB a user and password (1.x) or a token, not both")
        if self.password and not self.username:
            raise ValueError("an InfluxDB password needs a username")
        return self


def with_env(settings: S, env: Mapping[str, str]) -> S:
    """``settings`` with ``PANTAU_INFLUX_*`` filling what they leave unset; a token from the
    environment never joins a user, nor a user or password a token."""
    given = settings.model_dump(exclude_unset=True)
    for key, var in ENV_VARS.items():
        value = env.get(var)
        clash = ("username", "password") if key == "token" else ("token",)
        if not value or key in given or any(given.get(other) for other in clash):
            continue
        given[key] = value
    return type(settings).model_validate(given)


def influx_settings(env: Mapping[str, str], **given: object) -> InfluxSettings:
    """Settings from the command line's values (``None``: not given), then the environment,
    then the defaults."""
    return with_env(
        InfluxSettings.model_validate({k: v for k, v in given.items() if v is not None}), env
    )
