"""Expand Grafana's InfluxQL macros and variables the way Grafana does, to run panel queries."""

from __future__ import annotations

import re
from collections.abc import Mapping

_REGEX_VAR = re.compile(r"/\^\$(\w+)\$/")
_VAR = re.compile(r"\$(\w+)")


def interval_text(interval_ms: int) -> str:
    """Grafana's textual interval (``10s``, ``1m``, ``500ms``)."""
    if interval_ms % 60_000 == 0:
        return f"{interval_ms // 60_000}m"
    if interval_ms % 1000 == 0:
        return f"{interval_ms // 1000}s"
    return f"{interval_ms}ms"


def expand(
    query: str,
    *,
    from_ms: int,
    to_ms: int,
    interval_ms: int,
    variables: Mapping[str, str],
) -> str:
    """Replace ``$timeFilter``, ``${__from}``/``${__to}`` (epoch ms), ``$__interval``,
    ``$__interval_ms`` and ``$var`` (regex-escaped inside ``/^$var$/``, as Grafana formats single
    values for regex matching)."""
    text = query.replace("$timeFilter", f"time >= {from_ms}ms and time <= {to_ms}ms")
    text = text.replace("${__from}", str(from_ms)).replace("${__to}", str(to_ms))
    text = text.replace("$__interval_ms", str(interval_ms))
    text = text.replace("$__interval", interval_text(interval_ms))
    text = _REGEX_VAR.sub(lambda m: f"/^{re.escape(variables[m.group(1)])}$/", text)
    text = _VAR.sub(lambda m: variables.get(m.group(1), m.group(0)), text)
    if "$" in text.replace("$/", ""):
        raise ValueError(f"unexpanded variable left in {text!r}")
    return text
