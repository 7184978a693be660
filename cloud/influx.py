"""InfluxDB v1 HTTP API client: line protocol to ``/write``, InfluxQL to ``/query``.

The v1 API is served by InfluxDB 1.x, by 2.x through its compatibility endpoints (token auth) and
by 3.x, so this one client covers them all. Its settings (``InfluxSettings``, re-exported here)
are the one model every role configures (``cloud.influx_config``).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson

from cloud.influx_config import InfluxSettings

log = logging.getLogger(__name__)
__all__ = [
    "InfluxClient",
    "InfluxError",
    "InfluxQueryError",
    "InfluxSettings",
    "InfluxTimeoutError",
    "InfluxWriteError",
    "series_rows",
]


class InfluxError(Exception):
    """Root of InfluxDB errors."""


class InfluxWriteError(InfluxError):
    """A ``/write`` failed.

    Attributes:
        retryable: the same write may succeed later (5xx, network, throttling).
        retry_after_s: the server's Retry-After, if it sent one.
        status: HTTP status, ``None`` for network errors.
    """

    def __init__(
        self, message: str, *, retryable: bool, status: int | None, retry_after_s: float | None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s


class InfluxQueryError(InfluxError):
    """A ``/query`` failed or returned an error."""


class InfluxTimeoutError(InfluxQueryError):
    """A ``/query`` did not answer within the client's timeout (InfluxDB may be healthy but the
    query too large)."""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value else None
    except ValueError:
        return None


class InfluxClient:
    """Async client for the InfluxDB v1 HTTP API; use as an async context manager."""

    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        headers = {"Authorization": f"Token {settings.token}"} if settings.token else {}
        auth = (
            httpx.BasicAuth(settings.username, settings.password or "")
            if settings.username
            else None
        )
        self._http = httpx.AsyncClient(
            base_url=settings.url.rstrip("/"),
            headers=headers,
            auth=auth,
            timeout=settings.timeout_s,
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
        )

    async def __aenter__(self) -> InfluxClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    async def write(self, body: bytes, *, rp: str | None = None) -> None:
        """Write line protocol (nanosecond precision) to the default retention policy or ``rp``;
        raise ``InfluxWriteError`` classified."""
        params = {"db": self.settings.database, "precision": "ns"}
        if rp:
            params["rp"] = rp
        try:
            response = await self._http.post(
                "/write",
                params=params,
                content=body,
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )
        except httpx.HTTPError as exc:
            raise InfluxWriteError(
                f"InfluxDB at {self.settings.url} unreachable: {exc!r}",
                retryable=True,
                status=None,
                retry_after_s=None,
            ) from exc
        if response.status_code == 204:
            return
        status = response.status_code
        # 404 "database not found" heals once the database is (re)created; auth errors heal when
        # an operator fixes credentials: keep the data and retry rather than drop it.
        retryable = status >= 500 or status in (401, 403, 404, 408, 429)
        raise InfluxWriteError(
            f"InfluxDB /write returned {status}: {response.text[:300]}",
            retryable=retryable,
            status=status,
            retry_after_s=_retry_after(response),
        )

    async def query(self, q: str, *, database: str | None = None, epoch: str = "ns") -> Any:
        """Run InfluxQL; return the parsed ``results`` list; raise on any statement error."""
        params = {"q": q, "db": database or self.settings.database, "epoch": epoch}
        try:
            response = await self._http.post("/query", data=params)
        except httpx.TimeoutException as exc:
            raise InfluxTimeoutError(
                f"InfluxDB at {self.settings.url} did not answer within "
                f"{self.settings.timeout_s:g} s: {q[:120]}"
            ) from exc
        except httpx.HTTPError as exc:
            raise InfluxQueryError(f"InfluxDB at {self.settings.url} unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise InfluxQueryError(f"/query returned {response.status_code}: {response.text[:300]}")
        payload = orjson.loads(response.content)
        results = payload.get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxQueryError(f"InfluxQL error for {q!r}: {result['error']}")
        return results

    async def create_database(self) -> None:
        """Create the configured database if it does not exist."""
        name = self.settings.database.replace('"', '\\"')
        await self.query(f'CREATE DATABASE "{name}"', database="")


def series_rows(results: Any) -> list[dict[str, Any]]:
    """Flatten a ``/query`` result into dict rows (tags merged in)."""
    rows: list[dict[str, Any]] = []
    for result in results:
        for series in result.get("series", []) or []:
            tags = series.get("tags", {}) or {}
            columns = series["columns"]
            for values in series.get("values", []):
                row = dict(zip(columns, values, strict=True))
                row.update(tags)
                row["_measurement"] = series.get("name")
                rows.append(row)
    return rows
