"""Run a long-lived coroutine until SIGINT, SIGTERM or SIGHUP, then let it clean up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def configure_logging(level: str) -> None:
    """Log to stderr with timestamps."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Per-request lines from the HTTP client would drown the agent's own log.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


# Ctrl-C, a service manager's stop and a closed terminal: each ends the process the same way.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run_with_stop(main: Callable[[asyncio.Event], Coroutine[Any, Any, T]]) -> T:
    """Run ``main(stop)``; SIGINT, SIGTERM or SIGHUP set ``stop`` and ``main`` decides how to
    wind down (and stops whatever it started)."""

    async def runner() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop.set)
        try:
            return await main(stop)
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    return asyncio.run(runner())


async def serve_until(stop: asyncio.Event, service: Coroutine[Any, Any, None], name: str) -> None:
    """Run ``service`` until it ends or ``stop`` is set; then cancel it and wait for its cleanup.

    Raises whatever the service raised if it ended on its own with an error.
    """
    task = asyncio.create_task(service, name=name)
    stopper = asyncio.create_task(stop.wait(), name=f"{name}-stop")
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
