"""Notification delivery against real HTTP receivers: retry with backoff, Retry-After and
Telegram's retry_after honoured, permanent errors given up, nothing sent twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from cloud.problems.config import NotifyConfig, Severity
from cloud.problems.model import Observation, Verdict
from cloud.problems.notify import Notifier, run_notifier
from cloud.problems.store import ProblemStore
from tests.helpers import async_wait_for
from tests.receiver import receiver


def camera_down() -> Observation:
    return Observation(
        key="camera:s1/c1",
        rule="camera",
        title="camera down",
        severity=Severity.MAJOR,
        verdict=Verdict.BAD,
        site="s1",
        district="d1",
        camera="c1",
        subject="s1/c1",
        since_ns=time.time_ns() - 300 * 10**9,
        cause="timeout at tcp",
    )


async def test_retries_until_delivered_and_gives_up_on_permanent_errors(tmp_path: Path) -> None:
    """500 then 503+Retry-After then 200; Telegram 429+retry_after then 200; a 400 is final."""
    with receiver() as hook, receiver() as telegram, receiver() as broken:
        hook.answer(500)
        hook.answer(503, {"Retry-After": "1"})
        telegram.answer(429, ok=False, error_code=429, parameters={"retry_after": 1})
        broken.answer(400, description="Bad Request: chat not found")
        config = NotifyConfig.model_validate(
            {
                "backoff_initial": 0.2,
                "targets": [
                    {"type": "webhook", "name": "ops", "url": hook.url},
                    {"type": "webhook", "name": "broken", "url": broken.url},
                    {
                        "type": "telegram",
                        "name": "field",
                        "bot_token": "1:x",
                        "chat_id": "42",
                        "api_url": telegram.url,
                    },
                ],
            }
        )
        store = ProblemStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
        problem = store.open(camera_down(), now_ns=time.time_ns(), in_maintenance=False)
        assert problem is not None
        assert store.announce_open(
            problem.id, now_ns=time.time_ns(), targets=["ops", "broken", "field"]
        )
        assert not store.announce_open(problem.id, now_ns=time.time_ns(), targets=["ops"])

        stop = asyncio.Event()
        async with httpx.AsyncClient() as http:
            task = asyncio.create_task(run_notifier(Notifier(store, config, http), stop))

            async def settled() -> bool:
                rows = await asyncio.to_thread(store.outbox)
                return all(r["sent_ns"] or r["gave_up"] for r in rows)

            await async_wait_for(settled, timeout_s=20, what="every message delivered or given up")
            stop.set()
            await task
        rows = {r["target"]: r for r in store.outbox()}
        assert (rows["ops"]["attempts"], bool(rows["ops"]["sent_ns"])) == (3, True)
        assert (rows["field"]["attempts"], bool(rows["field"]["sent_ns"])) == (2, True)
        assert (rows["broken"]["attempts"], rows["broken"]["gave_up"]) == (1, True)
        assert "chat not found" in rows["broken"]["last_error"]
        keys = {r.headers["Idempotency-Key"] for r in hook.requests}
        assert len(hook.requests) == 3 and keys == {f"pantau-{rows['ops']['id']}"}
        # The target's own wait was honoured: Retry-After 1 s, Telegram's retry_after 1 s.
        assert len(telegram.requests) == 2 and len(broken.requests) == 1
        assert hook.requests[2].at - hook.requests[1].at >= 0.95
        assert telegram.requests[1].at - telegram.requests[0].at >= 0.95
        assert all(b["event"] == "open" for b in hook.bodies())
        store.close()
