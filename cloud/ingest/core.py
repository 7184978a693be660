"""The collector's pure core: messages in; points, dead letters and answers out, in order.

No I/O here: ``IngestCore.take`` turns one MQTT message into the points to write, the dead
letters to keep and the answer its agent gets once they are stored, all added to a ``Batch``.
``cloud.ingest.pipeline`` drives it with a broker link and sinks (real or fake).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from cloud.budget import DeviceBudget
from cloud.deadletter import DeadLetter
from cloud.decode import (
    DecodeLimits,
    Parsed,
    Rejection,
    RejectReason,
    batch_accepted,
    drop_older,
    parse_message,
    status_accepted,
)
from cloud.ingest.answers import SiteAnswers
from cloud.ingest.births import Birth, BirthBook
from cloud.lineproto import LineProtocolError, status_line
from cloud.metrics import CollectorMetrics
from cloud.rollup.marks import mark_lines
from cloud.sites_registry import SiteRegistry, registered_message
from pantau.core.contract import ReadingBatch, SiteStatus, TopicKind, parse_site_topic
from pantau.core.mqtt_types import Message

# Not answered: the agent keeps such readings and sends them again (its clock may be fixed).
RETRY_REASONS = frozenset({RejectReason.FUTURE_TIMESTAMP})


@dataclass
class Batch:
    """Messages taken since the last write, and what they turned into."""

    lines: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    started: float = 0.0
    answers: dict[tuple[str, int], SiteAnswers] = field(default_factory=dict)  # (site, minor)
    marks: int = 0  # rollup marks among the lines (not readings)

    def answer(self, site: str, minor: int) -> SiteAnswers:
        """The site's answer in this batch, in the contract minor its message spoke."""
        found = self.answers.get((site, minor))
        if found is None:
            found = self.answers[site, minor] = SiteAnswers(site=site, minor=minor)
        return found


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one message became."""

    site: str | None = None
    lines: list[str] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)
    dead: list[tuple[RejectReason, str]] = field(default_factory=list)  # (reason, detail)
    rejected: Rejection | None = None
    msg: int | None = None
    minor: int = 0
    too_old: int = 0
    over_budget: list[str] = field(default_factory=list)
    clock_offset_ms: float | None = None
    birth: bool = False
    unknown_fields: int = 0


class IngestCore:
    """Validation, budgets, the retention cut and rollup marks for one collector."""

    def __init__(
        self,
        *,
        limits: DecodeLimits,
        budget: DeviceBudget,
        metrics: CollectorMetrics,
        registry: SiteRegistry | None = None,
    ) -> None:
        self._registry = registry  # registered districts (cloud/sites_registry.py)
        self._limits = limits
        self._budget = budget
        self._metrics = metrics
        self.site_clocks: dict[str, float] = {}  # latest offsets since the last self-report
        self._heard: set[str] = set()  # sites told our contract version
        self.births = BirthBook()  # numbered births, so a late will stays in the past
        self._max_heard = 100_000

    def outcome(self, message: Message, now_ns: int) -> Outcome:
        """What ``message`` becomes at ``now_ns`` (pure: no state changes but the budget's)."""
        parsed = parse_message(message.topic, message.payload, now_ns=now_ns, limits=self._limits)
        if isinstance(parsed, Rejection):
            return Outcome(site=parsed.site, rejected=parsed, msg=parsed.msg, minor=parsed.minor)
        if self._registry is not None:  # the district is the cloud's, not the payload's
            registered, mismatch = registered_message(
                parsed.message, self._registry.get(parsed.site)
            )
            parsed = replace(parsed, message=registered)
            if mismatch is not None:
                result = self._outcome(parsed, message.retain, now_ns)
                return replace(result, lines=[*result.lines, mismatch.line(now_ns)])
        return self._outcome(parsed, message.retain, now_ns)

    def _outcome(self, parsed: Parsed, retain: bool, now_ns: int) -> Outcome:
        try:
            if isinstance(parsed.message, SiteStatus):
                return self._status(parsed, retain, now_ns)
            return self._batch(parsed, parsed.message, now_ns)
        except LineProtocolError as exc:
            minor = parsed.message.minor or 0
            msg = parsed.message.msg if isinstance(parsed.message, ReadingBatch) else None
            rejection = Rejection(RejectReason.UNENCODABLE, str(exc)[:200], parsed.site, msg, minor)
            return Outcome(site=parsed.site, rejected=rejection, msg=msg, minor=minor)

    def _status(self, parsed: Parsed, retain: bool, now_ns: int) -> Outcome:
        status = parsed.message
        assert isinstance(status, SiteStatus)
        accepted = status_accepted(status, retain=retain, now_ns=now_ns)
        if isinstance(accepted, Rejection):
            return Outcome(site=parsed.site, rejected=accepted, minor=status.minor or 0)
        if accepted.lines:
            stored_ns = int(accepted.lines[0].rsplit(" ", 1)[1])
            if status.online and status.seq is not None:
                self.births.learn(status.site, Birth(status.seq, stored_ns))
            elif not status.online and (ts := self.births.will_ts(status, stored_ns)) != stored_ns:
                self._metrics.stale_wills.inc()
                accepted = replace(accepted, lines=[status_line(status, ts)])
        return Outcome(
            site=parsed.site,
            lines=accepted.lines,
            minor=status.minor or 0,
            birth=status.online and not retain,
            unknown_fields=parsed.unknown_fields,
        )

    def _batch(self, parsed: Parsed, batch: ReadingBatch, now_ns: int) -> Outcome:
        batch, over_budget = self._budget.filter(batch)
        too_old = 0
        if self._limits.max_age_ns is not None:
            batch, too_old = drop_older(batch, now_ns - self._limits.max_age_ns)
        accepted = batch_accepted(batch, over_budget)
        dead: list[tuple[RejectReason, str]] = []
        if over_budget:
            dead.append(
                (
                    RejectReason.DEVICE_BUDGET,
                    f"{len(over_budget)} devices over the site's budget, e.g. "
                    f"{', '.join(over_budget[:3])}"[:200],
                )
            )
        if too_old:
            dead.append(
                (RejectReason.BEYOND_RETENTION, f"{too_old} readings older than raw retention")
            )
        # Readings of an hour that is over mark it for the rollup worker, in the same write.
        late = [c.ts for c in batch.cameras] + [s.ts for s in batch.sensors]
        late += [r.ts for r in batch.recordings]  # the recording rollup (cloud/rollup)
        return Outcome(
            site=parsed.site,
            lines=accepted.lines,
            marks=mark_lines(batch.site, late, now_ns),
            dead=dead,
            msg=batch.msg,
            minor=batch.minor or 0,
            too_old=too_old,
            over_budget=over_budget,
            clock_offset_ms=accepted.clock_offset_ms,
            unknown_fields=parsed.unknown_fields,
        )

    def will_site(self, message: Message) -> str | None:
        """The site of a live Last Will (whose latest birth must be known before it is written:
        another collector may have written it)."""
        parsed = parse_site_topic(message.topic)
        if message.retain or parsed is None or parsed[1] is not TopicKind.STATUS:
            return None
        if len(message.payload) > self._limits.max_payload_bytes:
            return None
        try:
            status = SiteStatus.model_validate_json(message.payload)
        except ValidationError:
            return None  # judged (and dead-lettered) by take()
        return None if status.online or status.site != parsed[0] else status.site

    def take(self, batch: Batch, message: Message, now_ns: int) -> Outcome:
        """Add ``message`` to ``batch``: its points, dead letters and its agent's answer."""
        self._metrics.messages_received.inc()
        result = self.outcome(message, now_ns)
        batch.messages.append(message)
        batch.lines.extend(result.lines)
        batch.lines.extend(result.marks)  # in the same write as the late readings
        batch.marks += len(result.marks)
        if result.unknown_fields:
            self._metrics.unknown_fields.inc(result.unknown_fields)
        for reason, detail in result.dead:
            self._reject(batch, message, reason, detail, now_ns)
        if result.over_budget and result.site:
            self._metrics.budget_refused.labels(site=result.site).inc(len(result.over_budget))
        if result.rejected is not None:
            rejection = result.rejected
            self._reject(batch, message, rejection.reason, rejection.detail, now_ns)
            if rejection.reason is RejectReason.FUTURE_TIMESTAMP and rejection.site:
                self._metrics.future_rejected.labels(site=rejection.site).inc()
        if result.site is not None:
            self._answer(batch, result)
        if result.clock_offset_ms is not None and result.site:
            self.site_clocks[result.site] = result.clock_offset_ms
        return result

    def _answer(self, batch: Batch, result: Outcome) -> None:
        assert result.site is not None
        answer = batch.answer(result.site, result.minor)
        if result.birth or (result.site not in self._heard and len(self._heard) < self._max_heard):
            self._heard.add(result.site)
            answer.announce = True
        if result.msg is None:
            return
        if result.rejected is None:
            answer.stored.append(result.msg)
            for reason, detail in result.dead:  # stored in part: the rest is refused for good
                answer.refuse(result.msg, reason.value, detail, stored=True)
        elif result.rejected.reason not in RETRY_REASONS:
            answer.refuse(result.msg, result.rejected.reason.value, result.rejected.detail)
        else:
            answer.refuse(
                result.msg, result.rejected.reason.value, result.rejected.detail, retry=True
            )

    def _reject(
        self, batch: Batch, message: Message, reason: RejectReason, detail: str, now_ns: int
    ) -> None:
        self._metrics.messages_rejected.labels(reason=reason.value).inc()
        batch.dead.append(DeadLetter(now_ns, message.topic, reason.value, detail, message.payload))
