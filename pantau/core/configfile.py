"""Load a YAML file into a pydantic model, with errors that name the key and the problem."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A config file is missing, unreadable or invalid; the message says where and why."""


def format_validation_error(source: str, error: ValidationError) -> str:
    """Render a pydantic error as one line per problem: ``file: key.path: message``."""
    lines = [f"{source}: {error.error_count()} problem(s):"]
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see the docs for allowed keys)"
        shown = "" if item["type"] in ("missing", "extra_forbidden") else _shown(item)
        lines.append(f"  {location}: {_redact_urls(message)}{shown}")
    return "\n".join(lines)


_SECRET_KEYS = re.compile(r"password|passwd|token|secret|community|key", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(//[^/@:\s]*):[^/@\s]*@")


def _redact_urls(text: str) -> str:
    """``rtsp://admin:pw@host`` -> ``rtsp://admin:***@host``."""
    return _URL_USERINFO.sub(r"\1:***@", text)


def _shown(item: Mapping[str, Any]) -> str:
    """What the user wrote, unless it is or may hold a secret (config errors reach logs)."""
    got = item.get("input")
    if any(_SECRET_KEYS.search(str(part)) for part in item["loc"]):
        return " (value hidden)"
    if isinstance(got, dict | list):
        return ""  # a whole section: its keys are named above, its values may be secrets
    return f" (got {_redact_urls(repr(got)):.60})"


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Read ``path`` as YAML and validate it as ``model``; raise ``ConfigError`` on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys, not {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(path), exc)) from exc
