"""ZoneMinder 1.36 JSON API answers, parsed strictly enough to trust and loosely enough to
survive other versions: only the fields pantau reads, unknown ones ignored, every list bounded.

Times are the server's local wall time without an offset (``2026-12-03 13:24:54``), read in the
server's time zone (``host/getTimeZone``). Any answer that does not parse raises ``ZmError``.
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_ITEMS = 1000  # rows in one answer; the API pages by 100

M = TypeVar("M", bound=BaseModel)


class ZmError(Exception):
    """A ZoneMinder answer that cannot be used; the text says what to do where it can."""


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Event(_Loose):
    Id: int
    MonitorId: int
    StartDateTime: str | None = Field(default=None, max_length=32)
    EndDateTime: str | None = Field(default=None, max_length=32)
    Length: float = Field(default=0.0, ge=0, le=10 * 86400)


class _EventRow(_Loose):
    Event: _Event


class _Pagination(_Loose):
    next_page: bool = Field(default=False, alias="nextPage")


class _Events(_Loose):
    events: list[_EventRow] = Field(max_length=MAX_ITEMS)
    pagination: _Pagination = Field(default_factory=_Pagination)


class _Monitor(_Loose):
    Id: int
    Function: str = Field(default="", max_length=32)
    Enabled: int | bool = 1


class _MonitorStatus(_Loose):
    Status: str | None = Field(default=None, max_length=32)


class _MonitorRow(_Loose):
    Monitor: _Monitor
    Monitor_Status: _MonitorStatus | None = None


class _Monitors(_Loose):
    monitors: list[_MonitorRow] = Field(max_length=MAX_ITEMS)


class _Storage(_Loose):
    Id: int
    Name: str = Field(default="", max_length=200)
    Enabled: int | bool = True
    DiskSpace: int | None = Field(default=None, ge=0)


class _StorageRow(_Loose):
    Storage: _Storage


class _StorageList(_Loose):
    storage: list[_StorageRow] = Field(max_length=64)


class _Login(_Loose):
    access_token: str = Field(min_length=1, max_length=4096)


class _TimeZone(_Loose):
    tz: str = Field(min_length=1, max_length=64)


class _Daemon(_Loose):
    status: bool


class _ErrorData(_Loose):
    message: str = Field(default="", max_length=500)


class _ErrorAnswer(_Loose):
    success: bool
    data: _ErrorData = Field(default_factory=_ErrorData)


class Event(BaseModel):
    """One ZoneMinder event (a recorded file); ``end`` None while it is being written."""

    model_config = ConfigDict(frozen=True)

    id: int
    monitor: int
    start: dt.datetime
    end: dt.datetime | None
    length_s: float


class Monitor(BaseModel):
    """A monitor's configuration and capture state."""

    model_config = ConfigDict(frozen=True)

    id: int
    function: str
    enabled: bool
    status: str | None  # Monitor_Status.Status: Connected, Running, NotRunning, ...


class Storage(BaseModel):
    """A storage area (ZoneMinder's API says nothing of its disk's size or free space)."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    enabled: bool
    used_bytes: int | None


def _load(model: type[M], body: bytes, what: str) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise ZmError(f"{what}: {error_text(body) or _first_error(exc)}") from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"unexpected answer ({where or 'body'}: {err['msg']})"[:200]


def error_text(body: bytes) -> str | None:
    """The message of ZoneMinder's error answer (``{"success": false, "data": {...}}``)."""
    try:
        answer = _ErrorAnswer.model_validate_json(body)
    except ValidationError:
        return None
    if answer.success:
        return None
    return " ".join(answer.data.message.split())[:150] or "error without a message"


def zone(name: str) -> dt.tzinfo:
    """The server's time zone by IANA name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ZmError(f"unknown time zone {name[:64]!r}: set the recorder's timezone") from exc


def local_time(text: str | None, tz: dt.tzinfo) -> dt.datetime | None:
    """``YYYY-MM-DD HH:MM:SS`` in ``tz`` as UTC; None for absent or zero dates."""
    if not text or text.startswith("0000"):
        return None
    try:
        naive = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError as exc:
        raise ZmError(f"unreadable time {text[:32]!r}") from exc
    return naive.replace(tzinfo=tz).astimezone(dt.UTC)


def wall_time(moment: dt.datetime, tz: dt.tzinfo) -> str:
    """A UTC moment as the server's wall time, as its filters take it."""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def events(body: bytes, tz: dt.tzinfo) -> tuple[list[Event], bool]:
    """An events page: its events (without a start time: skipped) and whether more follow."""
    answer = _load(_Events, body, "events")
    found = []
    for row in answer.events:
        e = row.Event
        start = local_time(e.StartDateTime, tz)
        if start is None:
            continue
        end = local_time(e.EndDateTime, tz)
        found.append(Event(id=e.Id, monitor=e.MonitorId, start=start, end=end, length_s=e.Length))
    return found, answer.pagination.next_page


def monitors(body: bytes) -> dict[int, Monitor]:
    """The server's monitors by id."""
    answer = _load(_Monitors, body, "monitors")
    return {
        r.Monitor.Id: Monitor(
            id=r.Monitor.Id,
            function=r.Monitor.Function,
            enabled=bool(r.Monitor.Enabled),
            status=r.Monitor_Status.Status if r.Monitor_Status else None,
        )
        for r in answer.monitors
    }


def storage(body: bytes) -> list[Storage]:
    """The storage areas."""
    answer = _load(_StorageList, body, "storage")
    return [
        Storage(
            id=r.Storage.Id,
            name=" ".join(r.Storage.Name.split())[:64],
            enabled=bool(r.Storage.Enabled),
            used_bytes=r.Storage.DiskSpace,
        )
        for r in answer.storage
    ]


def access_token(body: bytes) -> str:
    """The token of a ``host/login`` answer."""
    return _load(_Login, body, "login").access_token


def time_zone(body: bytes) -> str:
    """The server's time zone name (``host/getTimeZone``)."""
    return _load(_TimeZone, body, "time zone").tz


def daemon_running(body: bytes) -> bool:
    """``monitors/daemonStatus``: whether the capture daemon runs."""
    return _load(_Daemon, body, "daemon status").status
