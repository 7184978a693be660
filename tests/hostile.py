"""Hostile MQTT payloads (hypothesis strategies), and an independent strict line-protocol reader
to prove that whatever the collector accepts becomes well-formed points and nothing else."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from hypothesis import strategies as st

from pantau.core.contract import ID_PATTERN

# Characters that break line protocol or InfluxQL when they leak into a tag or field.
SPECIAL = [
    ",",
    " ",
    "=",
    '"',
    "'",
    "\\",
    "\n",
    "\r",
    "\t",
    "\x00",
    "/",
    "+",
    "#",
    "$",
    "é",
    "中",
    "🚨",
]
INJECTIONS = [
    "s1,site=evil",
    "s1 up=1i",
    'c1"',
    "c1\nevil,site=x value=1 1",
    "c1\\",
    "site=s2",
    "x\\,y",
    "'; DROP MEASUREMENT camera; --",
    "a" * 65,
    "",
]
NOW_NS = time.time_ns() // 10**9 * 10**9  # recent, so accepted points are not "future"

ident = st.one_of(
    st.from_regex(ID_PATTERN, fullmatch=True),
    st.sampled_from(INJECTIONS),
    st.text(st.sampled_from(SPECIAL + list("abc019_.-")), min_size=0, max_size=12),
    st.text(max_size=20),
)
number = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just("1.0"),
    st.none(),
    st.booleans(),
)
timestamp = st.one_of(
    st.integers(min_value=NOW_NS - 10**15, max_value=NOW_NS),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.just("now"),
    st.floats(allow_nan=True),
)
json_leaf = st.one_of(st.none(), st.booleans(), number, st.text(max_size=30))
any_json = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


def _reading(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    if kind == "cameras":
        fields = {
            "camera": ident,
            "ts": timestamp,
            "up": st.one_of(st.booleans(), st.integers(), st.text(max_size=3)),
            "cause": st.one_of(st.sampled_from(["ok", "refused", "timeout"]), ident),
            "latency_ms": number,
            "since": timestamp,
        }
    elif kind == "sensors":
        fields = {"sensor": ident, "kind": ident, "ts": timestamp, "value": number}
    else:
        fields = {
            "ts": timestamp,
            "backlog": number,
            "dropped_total": number,
            "oldest_age_s": number,
        }
    return st.fixed_dictionaries(
        {},
        optional={**fields, "extra": any_json},  # type: ignore[dict-item]
    )


batch = st.fixed_dictionaries(
    {"v": st.one_of(st.just(1), st.integers(), st.text(max_size=2)), "site": ident},
    optional={
        "district": ident,
        "cameras": st.lists(_reading("cameras"), max_size=4),
        "sensors": st.lists(_reading("sensors"), max_size=4),
        "agent": st.lists(_reading("agent"), max_size=2),
        "gaps": any_json,
        "unknown": any_json,
    },
)
status = st.fixed_dictionaries(
    {"v": st.just(1), "site": ident, "district": ident, "online": st.booleans()},
    optional={"ts": timestamp, "lat": number, "lon": number, "session": number},
)


@st.composite
def deep_json(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(min_value=100, max_value=100_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    return (opener * depth + "1" + closer * depth).encode()


@st.composite
def huge(draw: st.DrawFn) -> bytes:
    size = draw(st.integers(min_value=10_000, max_value=300_000))
    where = draw(st.sampled_from(["site", "camera", "cause"]))
    blob = draw(st.sampled_from(["x", "\\", "é", ","])) * size
    body = {"v": 1, "site": "s1", "district": "d1", "cameras": [{"camera": "c1", "ts": NOW_NS}]}
    if where == "site":
        body["site"] = blob
    else:
        body["cameras"][0][where] = blob  # type: ignore[index]
    return json.dumps(body).encode()


def encoded(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return strategy.map(lambda value: json.dumps(value, allow_nan=True).encode())


valid_id = st.from_regex(ID_PATTERN, fullmatch=True)
recent = st.integers(min_value=NOW_NS - 10**15, max_value=NOW_NS)
finite = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid batch for its topic's site, often with one value swapped for a hostile one."""
    site = draw(valid_id)
    cameras = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "camera": valid_id,
                    "ts": recent,
                    "up": st.booleans(),
                    "cause": st.sampled_from(["ok", "refused", "timeout", "auth"]),
                    "latency_ms": finite,
                    "since": recent,
                }
            ),
            max_size=4,
        )
    )
    sensors = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "sensor": valid_id,
                    "kind": valid_id,
                    "ts": recent,
                    "value": st.floats(allow_nan=False, allow_infinity=False),
                }
            ),
            max_size=4,
        )
    )
    agent = draw(st.lists(st.fixed_dictionaries({
        "ts": recent, "backlog": st.integers(0, 2**40), "dropped_total": st.integers(0, 2**40),
        "oldest_age_s": finite,
    }), max_size=2))  # fmt: skip
    body: dict[str, Any] = {
        "v": 1,
        "site": site,
        "district": draw(valid_id),
        "cameras": cameras,
        "sensors": sensors,
        "agent": agent,
    }
    readings = [r for group in (cameras, sensors, agent) for r in group]
    if readings and draw(st.booleans()):
        target = draw(st.sampled_from(readings))
        key = draw(st.sampled_from(sorted(target)))
        target[key] = draw(st.one_of(st.sampled_from(INJECTIONS), number, timestamp))
    elif draw(st.booleans()):
        body[draw(st.sampled_from(["site", "district"]))] = draw(st.sampled_from(INJECTIONS))
    # One in five is published on another site's topic (a site claiming to be another).
    topic_site = draw(valid_id) if draw(st.integers(0, 4)) == 0 else site
    return topic_site, json.dumps(body, allow_nan=True).encode()


payloads = st.one_of(
    st.binary(max_size=512),
    encoded(any_json),
    encoded(batch),
    encoded(batch),
    encoded(batch),
    encoded(status),
    deep_json(),
    huge(),
)
topic_site = st.one_of(st.just("s1"), ident)
hostile_message = st.tuples(topic_site, payloads)
messages = st.one_of(hostile_message, near_valid())
"""(site of the topic, payload) pairs: random hostile bytes, or near-valid batches."""

# --- an independent reader of what the collector writes ---------------------------------------

MEASUREMENTS = {
    "camera": ({"site", "district", "camera"}, {"up", "cause", "stage", "latency_ms", "tcp_ms",
               "rtsp_ms", "snapshot_ms", "snapshot_bytes", "rtsp_status", "since", "picture",
               "state"}),
    "sensor": ({"site", "sensor", "kind"}, {"value"}),
    "agent": ({"site", "district"}, {"backlog", "dropped_total", "oldest_age_s",
              "queue_error", "clock_offset_ms", "clock_correction_ms"}),
    "gap": ({"site", "district"}, {"start_ts", "end_ts", "count"}),
    "site": ({"site", "district"}, {"online", "lat", "lon", "session", "probe_interval_s",
             "clock_ahead_s"}),
}  # fmt: skip
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_FIELD_VALUE = re.compile(r'^(-?\d+i|-?[0-9.e+-]+|t|f|"[a-z_]*")$')


def check_line(line: str, site: str) -> None:
    """Assert that ``line`` is one well-formed point of a known measurement with safe ids."""
    assert "\n" not in line and "\r" not in line, line
    head, fields, ts = line.split(" ")  # no escaped spaces can exist: ids are plain
    measurement, *tags = head.split(",")
    assert measurement in MEASUREMENTS, line
    tag_keys, field_keys = MEASUREMENTS[measurement]
    tag_pairs = dict(t.split("=") for t in tags)
    assert set(tag_pairs) <= tag_keys and "site" in tag_pairs, line
    assert tag_pairs["site"] == site, line
    assert all(_TAG.fullmatch(v) for v in tag_pairs.values()), line
    for pair in fields.split(","):
        key, value = pair.split("=", 1)
        assert key in field_keys and _FIELD_VALUE.fullmatch(value), line
        if value[0] != '"' and value not in ("t", "f"):
            assert "nan" not in value and "inf" not in value, line
    assert ts.isdigit() and 0 <= int(ts) < 2**63, line
