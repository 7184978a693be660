"""Dirty marks: the collector notes (site, hour) pairs that received data after the hour was
over, in the same write as the data; the worker recomputes those hours and notes them done."""

from __future__ import annotations

from collections.abc import Iterable

from cloud.rollup.timegrid import floor_hour
from cloud.schema import ROLLUP_DIRTY


def mark_lines(site: str, stamps: Iterable[int], now_ns: int) -> list[str]:
    """Marks for the hours of ``stamps`` that are over at ``now_ns`` (one per hour):
    ``marked`` is the marking time, so a mark made after the worker's ``done`` is seen."""
    current = floor_hour(now_ns)
    hours = {floor_hour(ts) for ts in stamps if ts < current}
    return [f"{ROLLUP_DIRTY},site={site} marked={now_ns}i {hour}" for hour in sorted(hours)]


def done_line(site: str, hour_ns: int, marked_ns: int) -> str:
    """The worker's note that the mark made at ``marked_ns`` is rolled up."""
    return f"{ROLLUP_DIRTY},site={site} done={marked_ns}i {hour_ns}"
