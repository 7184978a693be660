"""Write batches of points to InfluxDB, retrying until they are stored or known to be bad."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

from cloud.influx import InfluxClient, InfluxQueryError, InfluxWriteError
from cloud.lineproto import join_lines
from cloud.metrics import CollectorMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter."""

    min_s: float
    max_s: float

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        """Delay before retry number ``attempt`` (1-based); Retry-After wins when given."""
        if retry_after_s is not None:
            return min(retry_after_s, self.max_s * 6)
        cap = min(self.max_s, self.min_s * 2 ** (attempt - 1))
        return random.uniform(self.min_s, max(self.min_s, cap))


class InfluxSink:
    """Writes line-protocol batches; ``write`` returns only once the batch is durably stored.

    Returns the lines InfluxDB refused for good (HTTP 400: e.g. a field type conflict) so that the
    caller can dead-letter them; everything else is retried until it succeeds.
    """

    def __init__(
        self, client: InfluxClient, metrics: CollectorMetrics, policy: RetryPolicy
    ) -> None:
        self._client = client
        self._metrics = metrics
        self._policy = policy
        self.last_error: str | None = None
        self.healthy = True

    async def write(self, lines: list[str]) -> list[tuple[str, str]]:
        """Store ``lines``; return ``(line, error)`` pairs that InfluxDB rejected permanently."""
        attempt = 0
        body = join_lines(lines)
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                await self._client.write(body)
            except InfluxWriteError as exc:
                if not exc.retryable:
                    self._metrics.write_failures.labels(kind="rejected").inc()
                    return await self._isolate_rejected(lines, str(exc))
                self._note_failure(exc)
                if exc.status == 404:
                    await self._try_create_database()
                await asyncio.sleep(self._policy.delay(attempt, exc.retry_after_s))
                continue
            self._metrics.write_latency.observe(time.perf_counter() - started)
            self._metrics.batches_written.inc()
            self._metrics.influx_up.set(1)
            if not self.healthy:
                log.info("InfluxDB writes succeed again after %d attempt(s)", attempt)
            self.healthy = True
            self.last_error = None
            return []

    def _note_failure(self, exc: InfluxWriteError) -> None:
        kind = "throttled" if exc.status in (429, 503) else "retryable"
        self._metrics.write_failures.labels(kind=kind).inc()
        self._metrics.influx_up.set(0)
        if self.healthy:
            log.warning("InfluxDB write failed, holding data and retrying: %s", exc)
        self.healthy = False
        self.last_error = str(exc)

    async def _try_create_database(self) -> None:
        try:
            await self._client.create_database()
        except InfluxQueryError as exc:
            log.debug("CREATE DATABASE failed: %s", exc)

    async def _isolate_rejected(self, lines: list[str], error: str) -> list[tuple[str, str]]:
        """Write halves until the refused lines are found; the good ones end up stored."""
        if len(lines) == 1:
            return [(lines[0], error)]
        middle = len(lines) // 2
        rejected: list[tuple[str, str]] = []
        for half in (lines[:middle], lines[middle:]):
            rejected.extend(await self.write(half))
        return rejected
