"""Turn one MQTT message into line-protocol points, or into a rejection with a reason."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from pydantic import ValidationError

from cloud.budget import DeviceBudget
from cloud.config import CollectorConfig
from cloud.lineproto import LineProtocolError, batch_lines, status_line
from cloud.rollup.marks import mark_lines
from pantau.core.contract import (
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
    marks: list[str] = field(default_factory=list)  # rollup marks for hours that are over
    too_old: int = 0  # readings left out: older than raw retention


@dataclass(frozen=True, slots=True)
class Rejection:
    """An invalid message: the reason and a short human-readable detail."""

    reason: RejectReason
    detail: str
    site: str | None = None  # the topic's site, where the message got that far


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
    ``Accepted.over_budget``.
    """
    if len(payload) > limits.max_payload_bytes:
        return Rejection(
            RejectReason.OVERSIZED, f"{len(payload)} bytes > {limits.max_payload_bytes}"
        )
    parsed = parse_site_topic(topic)
    if parsed is None:
        return Rejection(RejectReason.UNKNOWN_TOPIC, topic[:200])
    topic_site, kind = parsed
    try:
        message = (
            ReadingBatch.model_validate_json(payload)
            if kind is TopicKind.READINGS
            else SiteStatus.model_validate_json(payload)
        )
    except ValidationError as exc:
        return _classify(exc)
    if message.site != topic_site:
        return Rejection(
            RejectReason.SITE_MISMATCH,
            f"payload site {message.site!r} published on topic of site {topic_site!r}",
        )
    horizon = now_ns + limits.max_future_ns
    try:
        if isinstance(message, SiteStatus):
            return _status(message, retain=retain, now_ns=now_ns)
        if any(r.ts > horizon for r in message.readings()):
            return Rejection(
                RejectReason.FUTURE_TIMESTAMP,
                "a reading is stamped in the future (the site's clock is ahead)",
                message.site,
            )
        over_budget: list[str] = []
        if budget is not None:
            message, over_budget = budget.filter(message)
        too_old = 0
        if limits.max_age_ns is not None:
            message, too_old = _drop_older(message, now_ns - limits.max_age_ns)
        offsets = [a.clock_offset_ms for a in message.agent if a.clock_offset_ms is not None]
        # Readings of an hour that is over mark it for the rollup worker, in the same write.
        late = [c.ts for c in message.cameras] + [s.ts for s in message.sensors]
        return Accepted(
            message.site,
            batch_lines(message),
            over_budget,
            message.msg,
            offsets[-1] if offsets else None,
            mark_lines(message.site, late, now_ns),
            too_old,
        )
    except LineProtocolError as exc:
        return Rejection(RejectReason.UNENCODABLE, str(exc)[:200])


def _drop_older(batch: ReadingBatch, cutoff_ns: int) -> tuple[ReadingBatch, int]:
    """The batch without readings stamped before ``cutoff_ns``, and how many those were."""
    kept = {kind: [r for r in getattr(batch, kind) if r.ts >= cutoff_ns] for kind in READING_KINDS}
    dropped = sum(len(getattr(batch, kind)) - len(rows) for kind, rows in kept.items())
    return (batch.model_copy(update=kept), dropped) if dropped else (batch, 0)


def _status(status: SiteStatus, *, retain: bool, now_ns: int) -> Accepted | Rejection:
    if status.ts is None:
        if status.online:
            return Rejection(RejectReason.SCHEMA, "ts: an online (birth) status needs a timestamp")
        if retain:
            # A retained will replayed on (re)subscribe: it fired earlier and was stored then;
            # stamping it now would invent a second offline transition.
            return Accepted(status.site, [])
        return Accepted(status.site, [status_line(status, now_ns)])
    # A status cannot have happened after it arrived: a birth from a clock running ahead is
    # stored at its arrival, so a Last Will stamped on delivery later still comes after it. How
    # far ahead it was is kept (``clock_ahead_s``): a late delivery can make a clock look behind,
    # never ahead, so only a live status says so.
    ahead_s = (status.ts - now_ns) / 1e9 if not retain and status.ts > now_ns else None
    return Accepted(status.site, [status_line(status, min(status.ts, now_ns), ahead_s=ahead_s)])
