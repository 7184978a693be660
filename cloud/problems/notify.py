"""Deliver queued problem messages to webhooks and Telegram, with retry and backoff."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import httpx
import orjson

from cloud.problems.config import NotifyConfig, TelegramTarget, WebhookTarget
from cloud.problems.messages import render_text
from cloud.problems.store import OutboxItem, ProblemStore

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 1.0  # how often the outbox is looked at; messages are minutes-scale anyway


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one delivery attempt went."""

    delivered: bool
    retry_after_s: float | None = None  # set when the target asked us to wait
    permanent: bool = False
    error: str = ""


class Notifier:
    """Claims due messages from the outbox and sends them; at-least-once per target."""

    def __init__(self, store: ProblemStore, config: NotifyConfig, http: httpx.AsyncClient) -> None:
        self._store = store
        self._config = config
        self._http = http
        self._targets = {t.name: t for t in config.targets}
        self._zone = ZoneInfo(config.timezone)

    async def deliver_due(self, now_ns: int | None = None) -> int:
        """Send what is due now; return how many were delivered."""
        now = now_ns if now_ns is not None else time.time_ns()
        lease_ns = int((self._config.timeout * 2 + 5) * 1e9)
        items = await asyncio.to_thread(
            self._store.claim, list(self._targets), now_ns=now, lease_ns=lease_ns
        )
        delivered = 0
        for item in items:
            outcome = await self._send(item)
            delivered += await asyncio.to_thread(self._settle, item, outcome)
        return delivered

    def _settle(self, item: OutboxItem, outcome: Outcome) -> bool:
        now = time.time_ns()
        if outcome.delivered:
            self._store.delivered(item.id, now_ns=now)
            log.info("sent %s of problem %d to %s", item.event, item.problem_id, item.target)
            return True
        too_old = now - item.created_ns > self._config.give_up_after * 1e9
        if outcome.permanent or too_old:
            log.error(
                "giving up on %s of problem %d to %s: %s",
                item.event,
                item.problem_id,
                item.target,
                outcome.error,
            )
            self._store.give_up(item.id, error=outcome.error)
            return False
        delay = outcome.retry_after_s
        if delay is None:
            backoff = self._config.backoff_initial * 2 ** min(item.attempts, 20)
            delay = min(self._config.backoff_max, backoff) * random.uniform(0.8, 1.2)
        log.warning(
            "%s of problem %d to %s failed (%s); retrying in %.1fs",
            item.event,
            item.problem_id,
            item.target,
            outcome.error,
            delay,
        )
        self._store.retry_later(
            item.id, next_attempt_ns=now + int(delay * 1e9), error=outcome.error
        )
        return False

    async def _send(self, item: OutboxItem) -> Outcome:
        target = self._targets[item.target]
        text = render_text(
            item.event,
            item.payload["problem"],
            zone=self._zone,
            page_url=self._config.page_url,
            lang=self._config.lang,
        )
        if isinstance(target, TelegramTarget):
            url = f"{str(target.api_url).rstrip('/')}/bot{target.bot_token}/sendMessage"
            body = orjson.dumps(
                {
                    "chat_id": target.chat_id,
                    "text": text,
                    "parse_mode": "HTML",
                    "disable_web_page_preview": True,
                }
            )
            headers = {"Content-Type": "application/json"}
        else:
            url, body, headers = _webhook_request(target, item, text)
        try:
            response = await self._http.post(
                url, content=body, headers=headers, timeout=self._config.timeout
            )
        except httpx.HTTPError as exc:
            # Never log the URL of a Telegram target: it carries the bot token.
            return Outcome(False, error=f"{type(exc).__name__} talking to {item.target}")
        return _classify(response)


def _webhook_request(
    target: WebhookTarget, item: OutboxItem, text: str
) -> tuple[str, bytes, dict[str, str]]:
    body = orjson.dumps(
        {
            "id": item.id,
            "event": item.event.value,
            "text": text,
            "problem": item.payload["problem"],
        }
    )
    headers = {"Content-Type": "application/json", "Idempotency-Key": f"pantau-{item.id}"}
    if target.secret:
        digest = hmac.new(target.secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Pantau-Signature"] = f"sha256={digest}"
    return str(target.url), body, headers


def _classify(response: httpx.Response) -> Outcome:
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(True)
    error = f"HTTP {status}"
    retry_after: float | None = None
    with contextlib.suppress(ValueError):
        retry_after = float(response.headers.get("Retry-After", ""))
    if retry_after is None:
        # Telegram says how long to wait in its JSON body rather than a header.
        with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
            retry_after = float(response.json()["parameters"]["retry_after"])
    if status in (408, 425, 429) or status >= 500:
        return Outcome(False, retry_after_s=retry_after, error=error)
    return Outcome(False, permanent=True, error=f"{error}: {response.text[:200]}")


async def run_notifier(notifier: Notifier, stop: asyncio.Event) -> None:
    """Deliver due messages until ``stop``."""
    while not stop.is_set():
        await notifier.deliver_due()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=POLL_INTERVAL_S)
