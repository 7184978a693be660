"""Turn one MQTT message into line-protocol points, or into a rejection with a reason."""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field

from pydantic import ValidationError

from cloud.budget import DeviceBudget
from cloud.config import CollectorConfig
from cloud.lineproto import LineProtocolError, batch_lines, status_line
from pantau.core.compat import known_fields
from pantau.core.contract import (
    CONTRACT_MINOR,
    READING_KINDS,
    ReadingBatch,
    SiteStatus,
    TopicKind,
    parse_site_topic,
)


class RejectReason(enum.StrEnum):
    """Why a message was not stored (a Prometheus label and a dead-letter column)."""

    OVERSIZED = "oversized"
    UNKNOWN_TOPIC = "unknown_topic"
    BAD_JSON = "bad_json"
    SCHEMA = "schema"
    NON_FINITE = "non_finite"
    SITE_MISMATCH = "site_mismatch"
    FUTURE_TIMESTAMP = "future_timestamp"
    UNENCODABLE = "unencodable"
    INFLUX_REFUSED = "influx_refused"  # valid by the contract, refused by InfluxDB (a bug)
    DEVICE_BUDGET = "device_budget"  # readings of devices beyond the site's budget
    BEYOND_RETENTION = "beyond_retention"  # readings older than raw points are kept


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid message and the points it maps to (possibly none, e.g. a stale retained will)."""

    site: str
    lines: list[str]
    over_budget: list[str] = field(default_factory=list)  # device keys refused by the budget
    msg: int | None = None  # the agent's message id, to name in the site's receipt
    clock_offset_ms: float | None = None  # the agent's latest clock measurement in the batch


@dataclass(frozen=True, slots=True)
class Parsed:
    """A message valid by the contract (read for its known fields if of a newer minor)."""

    site: str
    message: ReadingBatch | SiteStatus
    unknown_fields: int = 0  # fields of a newer contract minor left out


@dataclass(frozen=True, slots=True)
class Rejection:
    """An invalid message: the reason and a short human-readable detail."""

    reason: RejectReason
    detail: str
    site: str | None = None  # the topic's site, where the message got that far
    msg: int | None = None  # the agent's message id, where one could be read
    minor: int = 0  # the contract minor the message said it speaks


@dataclass(frozen=True, kw_only=True)
class DecodeLimits:
    """Validation limits (from the collector config)."""

    max_payload_bytes: int
    max_future_ns: int
    max_age_ns: int | None = None  # readings older than this are beyond raw retention


def decode_limits(config: CollectorConfig) -> DecodeLimits:
    """The collector's limits from its configuration."""
    rollup = config.rollup
    return DecodeLimits(
        max_payload_bytes=config.validation.max_payload_bytes,
        max_future_ns=int(config.validation.max_future_s * 1e9),
        # InfluxDB refuses points older than the policy; an hour's margin for slow batches.
        max_age_ns=(rollup.raw_days * 86400 - 3600) * 10**9 if rollup.manage_retention else None,
    )


def _classify(error: ValidationError) -> Rejection:
    first = error.errors()[0]
    kinds = {item["type"] for item in error.errors()}
    if "json_invalid" in kinds or "json_type" in kinds:
        return Rejection(RejectReason.BAD_JSON, first["msg"][:200])
    if "finite_number" in kinds:
        return Rejection(RejectReason.NON_FINITE, "NaN or infinity in a numeric field")
    where = ".".join(str(p) for p in first["loc"])
    return Rejection(RejectReason.SCHEMA, f"{where}: {first['msg']}"[:200])


def _identify(payload: bytes) -> tuple[int | None, int]:
    """The message id and contract minor of a payload that failed validation, if readable, so
    that its agent can be told (a receipt naming it) instead of sending it forever."""
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):  # hostile nesting depth
        return None, 0
    if not isinstance(data, dict):
        return None, 0
    msg, minor = data.get("msg"), data.get("minor")
    msg = msg if type(msg) is int and 0 <= msg < 2**63 else None
    return msg, minor if type(minor) is int and 0 < minor <= 10_000 else 0


def _validate(kind: TopicKind, payload: bytes) -> tuple[ReadingBatch | SiteStatus, int]:
    """Validate strictly; a batch of a newer contract minor is read for its known fields."""
    model: type[ReadingBatch | SiteStatus] = (
        ReadingBatch if kind is TopicKind.READINGS else SiteStatus
    )
    try:
        return model.model_validate_json(payload), 0
    except ValidationError as exc:
        if not any(e["type"] == "extra_forbidden" for e in exc.errors()):
            raise
        _msg, minor = _identify(payload)
        if minor <= CONTRACT_MINOR:
            raise
    data, unknown = known_fields(model, json.loads(payload))
    return model.model_validate(data), unknown


def parse_message(
    topic: str, payload: bytes, *, now_ns: int, limits: DecodeLimits
) -> Parsed | Rejection:
    """Validate a message against the contract (size, topic, schema, site, future stamps)."""
    parsed = parse_site_topic(topic)
    if len(payload) > limits.max_payload_bytes:
        # Still named in the answer (the broker bounds what reaches us), so it is not resent.
        readings = parsed is not None and parsed[1] is TopicKind.READINGS
        msg, minor = _identify(payload) if readings else (None, 0)
        return Rejection(
            RejectReason.OVERSIZED,
            f"{len(payload)} bytes > {limits.max_payload_bytes}",
            parsed[0] if parsed else None,
            msg,
            minor,
        )
    if parsed is None:
        return Rejection(RejectReason.UNKNOWN_TOPIC, topic[:200])
    topic_site, kind = parsed
    try:
        message, unknown = _validate(kind, payload)
    except ValidationError as exc:
        rejection = _classify(exc)
        msg, minor = _identify(payload) if kind is TopicKind.READINGS else (None, 0)
        return dataclasses.replace(rejection, site=topic_site, msg=msg, minor=minor)
    if message.site != topic_site:
        return Rejection(
            RejectReason.SITE_MISMATCH,
            f"payload site {message.site!r} published on topic of site {topic_site!r}",
        )
    if isinstance(message, ReadingBatch):
        horizon = now_ns + limits.max_future_ns
        if any(r.ts > horizon for r in message.readings()):
            return Rejection(
                RejectReason.FUTURE_TIMESTAMP,
                "a reading is stamped in the future (the site's clock is ahead)",
                message.site,
                message.msg,
                message.minor or 0,
            )
    return Parsed(message.site, message, unknown)


def batch_accepted(batch: ReadingBatch, over_budget: list[str] | None = None) -> Accepted:
    """The points of a valid batch (raises ``LineProtocolError`` if one is unencodable)."""
    offsets = [a.clock_offset_ms for a in batch.agent if a.clock_offset_ms is not None]
    return Accepted(
        batch.site,
        batch_lines(batch),
        over_budget or [],
        batch.msg,
        offsets[-1] if offsets else None,
    )


def decode_message(
    topic: str,
    payload: bytes,
    *,
    retain: bool,
    now_ns: int,
    limits: DecodeLimits,
    budget: DeviceBudget | None = None,
) -> Accepted | Rejection:
    """Validate a message against the contract and map it to points.

    With a ``budget``, readings of devices beyond the site's budget are left out and named in
    ``Accepted.over_budget``. (The collector's core adds the retention cut and rollup marks.)
    """
    parsed = parse_message(topic, payload, now_ns=now_ns, limits=limits)
    if isinstance(parsed, Rejection):
        return parsed
    message = parsed.message
    try:
        if isinstance(message, SiteStatus):
            return status_accepted(message, retain=retain, now_ns=now_ns)
        over_budget: list[str] = []
        if budget is not None:
            message, over_budget = budget.filter(message)
        return batch_accepted(message, over_budget)
    except LineProtocolError as exc:
        return Rejection(RejectReason.UNENCODABLE, str(exc)[:200], parsed.site)


def drop_older(batch: ReadingBatch, cutoff_ns: int) -> tuple[ReadingBatch, int]:
    """The batch without readings stamped before ``cutoff_ns``, and how many those were."""
    kept = {kind: [r for r in getattr(batch, kind) if r.ts >= cutoff_ns] for kind in READING_KINDS}
    dropped = sum(len(getattr(batch, kind)) - len(rows) for kind, rows in kept.items())
    return (batch.model_copy(update=kept), dropped) if dropped else (batch, 0)


def status_accepted(status: SiteStatus, *, retain: bool, now_ns: int) -> Accepted | Rejection:
    """The point of a birth or will, at its arrival (a retained will: none, it was stored)."""
    if status.ts is None:
        if status.online:
            return Rejection(RejectReason.SCHEMA, "ts: an online (birth) status needs a timestamp")
        if retain:
            # A retained will replayed on (re)subscribe: it fired earlier and was stored then;
            # stamping it now would invent a second offline transition.
            return Accepted(status.site, [])
        return Accepted(status.site, [status_line(status, now_ns)])
    # A status is stored at its arrival: the cloud's clock is the true one, and a box whose
    # clock is days behind would otherwise be stored as having come online days ago. A retained
    # birth is the broker's current state of the site (a will would have replaced it), so "online
    # as of its arrival" is true too, and it sorts after any will that arrived before it. The
    # box's own stamp still measures its clock when it runs ahead (``clock_ahead_s``: a late
    # delivery can make a clock look behind, never ahead, so only a live status says so).
    ahead_s = (status.ts - now_ns) / 1e9 if not retain and status.ts > now_ns else None
    return Accepted(status.site, [status_line(status, now_ns, ahead_s=ahead_s)])
