"""Hostile values stop at validation: integers InfluxDB would refuse, statuses from the future,
and more devices than a site's budget."""

from __future__ import annotations

import json

from cloud.budget import DeviceBudget
from cloud.decode import Accepted, DecodeLimits, Rejection, RejectReason, decode_message
from pantau.core.contract import (
    CameraReading,
    Cause,
    ReadingBatch,
    SiteStatus,
    TopicKind,
    site_topic,
)

NOW = 1_800_000_000 * 10**9
LIMITS = DecodeLimits(max_payload_bytes=262_144, max_future_ns=300 * 10**9)
READINGS = site_topic("s1", TopicKind.READINGS)
STATUS = site_topic("s1", TopicKind.STATUS)


def camera_batch(**extra: object) -> bytes:
    body = {
        "v": 1,
        "site": "s1",
        "district": "d1",
        "cameras": [{"camera": "c1", "ts": NOW, "up": True, "cause": "ok", **extra}],
    }
    return json.dumps(body).encode()


def test_integers_outside_int64_are_schema_errors_not_influx_400s() -> None:
    """snapshot_bytes 10**20 (issue 14's write amplification) and a timestamp at InfluxDB's
    end of time are rejected by the contract."""
    for payload in (camera_batch(snapshot_bytes=10**20), camera_batch(since=2**63 - 1)):
        result = decode_message(READINGS, payload, retain=False, now_ns=NOW, limits=LIMITS)
        assert isinstance(result, Rejection) and result.reason is RejectReason.SCHEMA
    ok = decode_message(
        READINGS, camera_batch(snapshot_bytes=2**31), retain=False, now_ns=NOW, limits=LIMITS
    )
    assert isinstance(ok, Accepted)


def test_a_birth_from_the_future_cannot_outlive_a_later_last_will() -> None:
    """A birth stamped 290 s ahead is stored at its arrival; the will after it sorts after."""
    birth = SiteStatus(
        site="s1", district="d1", online=True, ts=NOW + 290 * 10**9, lat=0, lon=0, session=1
    )
    will = birth.model_copy(update={"online": False, "ts": None})
    first = decode_message(
        STATUS, birth.model_dump_json().encode(), retain=False, now_ns=NOW, limits=LIMITS
    )
    second = decode_message(
        STATUS, will.model_dump_json().encode(), retain=False, now_ns=NOW + 10**9, limits=LIMITS
    )
    assert isinstance(first, Accepted) and isinstance(second, Accepted)
    birth_ts = int(first.lines[0].rsplit(" ", 1)[1])
    will_ts = int(second.lines[0].rsplit(" ", 1)[1])
    assert birth_ts == NOW < will_ts


def test_device_budget_keeps_known_devices_and_refuses_new_ones() -> None:
    """At the budget, known devices still pass, new ones are named and left out."""
    budget = DeviceBudget(max_devices=3, max_sites=10)  # the district and two cameras
    readings = [
        CameraReading(camera=f"c{i}", ts=NOW + i, up=True, cause=Cause.OK) for i in range(4)
    ]
    batch = ReadingBatch(site="s1", district="d1", cameras=readings)
    kept, refused = budget.filter(batch)
    assert [r.camera for r in kept.cameras] == ["c0", "c1"]
    assert refused == ["camera:c2", "camera:c3"]
    again, none = budget.filter(batch.model_copy(update={"cameras": readings[:2]}))
    assert len(again.cameras) == 2 and none == []
    other, _ = budget.filter(batch.model_copy(update={"district": "elsewhere"}))
    assert other.count() == 0  # a new district is a new series too
    assert budget.filter(batch.model_copy(update={"site": "s2"}))[1] == ["camera:c2", "camera:c3"]


def test_a_birth_from_a_clock_ten_minutes_ahead_is_stored_at_arrival_with_its_error() -> None:
    """Beyond the readings' future horizon a status is still stored (at its arrival), and how
    far ahead its clock was goes with it, for the clock problem."""
    birth = SiteStatus(
        site="s1", district="d1", online=True, ts=NOW + 600 * 10**9, lat=0, lon=0, session=1
    )
    result = decode_message(
        STATUS, birth.model_dump_json().encode(), retain=False, now_ns=NOW, limits=LIMITS
    )
    assert isinstance(result, Accepted)
    assert "clock_ahead_s=600.0" in result.lines[0] and result.lines[0].endswith(f" {NOW}")
    replayed = decode_message(
        STATUS, birth.model_dump_json().encode(), retain=True, now_ns=NOW, limits=LIMITS
    )
    assert isinstance(replayed, Accepted) and "clock_ahead_s" not in replayed.lines[0]


def test_a_live_birth_from_a_clock_days_behind_is_stored_at_its_arrival() -> None:
    """A box two days behind comes online now, not two days ago (the cloud's clock is true);
    replayed as retained (the broker's current state), online as of its arrival too."""
    behind = NOW - 2 * 86400 * 10**9
    birth = SiteStatus(site="s1", district="d1", online=True, ts=behind, lat=0, lon=0, session=1)
    live = decode_message(
        STATUS, birth.model_dump_json().encode(), retain=False, now_ns=NOW, limits=LIMITS
    )
    assert isinstance(live, Accepted) and live.lines[0].endswith(f" {NOW}")
    replayed = decode_message(
        STATUS, birth.model_dump_json().encode(), retain=True, now_ns=NOW, limits=LIMITS
    )
    assert isinstance(replayed, Accepted) and replayed.lines[0].endswith(f" {NOW}")
