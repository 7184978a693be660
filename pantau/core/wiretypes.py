"""The wire's basic types: identifiers, timestamps, bounded numbers, the strict model base and
the marker of fields added in a contract minor. ``pantau.core.contract`` re-exports them."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Ident = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""A site, district, camera or sensor id: letters, digits, ``_.-``; at most 64 characters."""
RESERVED_ID_PREFIX = "pantau-"
"""Broker accounts and client ids of pantau's own services start so; a site id never does."""

# Every integer on the wire is bounded well inside InfluxDB's int64 (whose time range ends at
# 2**63 - 2): nothing the contract accepts can make InfluxDB answer 400.
MAX_COUNT = 2**53
TimestampNs = Annotated[int, Field(ge=0, lt=2**63 - 1)]
"""Edge measurement time as integer nanoseconds since the Unix epoch."""


# NaN and infinity are refused by pydantic-core itself (error type "finite_number"): no Python
# callback per value on the collector's hot path.
Finite = Annotated[float, Field(allow_inf_nan=False)]


class Strict(BaseModel):
    """Frozen, and unknown fields refused (within a contract minor)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def since(minor: int) -> JsonDict:
    """``json_schema_extra`` of a field added in contract minor ``minor``."""
    return {"since": minor}
