"""A token bucket: the backlog replay's rate limit."""

from __future__ import annotations

import time


class TokenBucket:
    """Allow ``rate`` units per second with a burst of ``burst`` units."""

    def __init__(self, rate: float, burst: float) -> None:
        self._rate, self._burst = rate, burst
        self._tokens, self._at = burst, time.monotonic()

    def available(self) -> float:
        """Tokens available now."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        return self._tokens

    def take(self, n: float) -> None:
        """Spend ``n`` tokens (may go negative: the next wait is longer)."""
        self.available()
        self._tokens -= n

    def wait_s(self, n: float) -> float:
        """Seconds until ``n`` tokens are available."""
        missing = n - self.available()
        return max(0.0, missing / self._rate)
