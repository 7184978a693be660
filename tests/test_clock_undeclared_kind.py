"""A reading kind without declared timestamp fields: caught by a test before it ships, and at
run time its held rows stay held (logged, naming the kind) while the rest is released and the
queue goes on, instead of every later write failing on the release."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from edge_agent.clock import HoldingQueue
from edge_agent.queue_guard import GuardedQueue
from edge_agent.queue_memory import HeldRows
from edge_agent.queue_rows import (
    TIMESTAMP_FIELDS,
    QueuedReading,
    UndeclaredKindError,
    shift_held,
    shift_item,
)
from pantau.core.contract import READING_KINDS

S = 1_000_000_000


def body(ts: int) -> bytes:
    return json.dumps({"ts": ts}).encode()


def test_every_reading_kind_of_the_contract_declares_its_timestamp_fields() -> None:
    """TIMESTAMP_FIELDS names exactly the contract's reading kinds (a new kind must be added)."""
    missing = sorted(set(READING_KINDS) - set(TIMESTAMP_FIELDS))
    unknown = sorted(set(TIMESTAMP_FIELDS) - set(READING_KINDS))
    assert not missing, (
        f"add these kinds to TIMESTAMP_FIELDS in edge_agent/queue_rows.py: {missing}"
    )
    assert not unknown, f"TIMESTAMP_FIELDS names kinds the contract does not have: {unknown}"


def test_an_undeclared_kind_is_named_and_set_aside_from_a_release(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A fake kind missing from the declared fields: None (kept held), the rest shifted."""
    fields = {"sensors": ("ts",)}
    items = [("sensors", S, body(S)), ("widgets", S, body(S)), ("widgets", 2 * S, body(2 * S))]
    with caplog.at_level(logging.ERROR, logger="edge_agent.queue_rows"):
        shifted = shift_held(items, 3 * S, fields=fields)
    assert shifted == [("sensors", 4 * S, b'{"ts":4000000000}'), None, None]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "'widgets'" in errors[0] and "TIMESTAMP_FIELDS" in errors[0]
    assert "2 held readings" in errors[0]
    assert shift_held(items, 0, fields=fields) == items  # nothing to move: all released
    with pytest.raises(UndeclaredKindError, match="'widgets' has no entry in TIMESTAMP_FIELDS"):
        shift_item(items[1], S, fields=fields)


def test_memory_held_rows_of_an_undeclared_kind_stay_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows held in memory (a failing disk): the declared kind is released with new ids only."""
    monkeypatch.delitem(TIMESTAMP_FIELDS, "agent")
    rows = HeldRows()
    rows.add(QueuedReading(1, "agent", S, body(S), held=7))
    rows.add(QueuedReading(2, "sensors", S, body(S), held=7))
    assert rows.release(7, S, first_id=10) == 1
    assert [(r.id, r.kind, r.ts, r.held) for r in rows.rows()] == [
        (1, "agent", S, 7),
        (10, "sensors", 2 * S, None),
    ]


def test_the_queue_goes_on_when_a_held_kind_has_no_declared_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The release succeeds for the declared kinds, later writes work, the undeclared rows are
    never sent with a half-moved stamp; the next start releases them at the box's own time."""
    queue = GuardedQueue(tmp_path / "queue.sqlite", max_readings=10**6, max_age_s=10**9)
    try:
        gate = HoldingQueue(queue, boot=7, holding=True)
        gate.append([("sensors", S, body(S)), ("agent", S, body(S))], now_ns=S)
        monkeypatch.delitem(TIMESTAMP_FIELDS, "agent")
        with caplog.at_level(logging.ERROR, logger="edge_agent.queue_rows"):
            gate.release(2 * S, now_ns=S)
        assert any("'agent'" in r.getMessage() for r in caplog.records)

        def sendable() -> list[tuple[str, int]]:
            return [(r.kind, r.ts) for r in queue.take(after_id=0, upto_id=None, limit=100)]

        assert sendable() == [("sensors", 3 * S)]
        assert queue.held_boots() == {7: 1}
        gate.append([("sensors", 5 * S, body(5 * S)), ("agent", 5 * S, body(5 * S))], now_ns=S)
        assert sendable() == [("sensors", 3 * S), ("sensors", 5 * S), ("agent", 5 * S)]

        following = HoldingQueue(queue, boot=8, holding=True)  # the next start
        assert following.release_earlier(now_ns=S) == 1
        assert sendable()[-1] == ("agent", S) and queue.held_boots() == {}
    finally:
        queue.close()
