"""One home for each name: measurement names live in ``cloud/schema.py`` only; the fields the
collector writes and the dashboards read are the ones the schema declares; the docs list them."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud import schema
from cloud.lineproto import batch_lines, status_line
from dashboards.build import all_dashboards
from edge_agent.config import ProbeConfig
from pantau.core.contract import ReadingBatch, SiteStatus

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("cloud", "dashboards")


MEASUREMENTS = frozenset(schema.FIELDS)
TAGS = frozenset(v for k, v in vars(schema).items() if k.endswith("_TAG") and isinstance(v, str))
POLICIES = frozenset({schema.RP_RAW, schema.RP_HOURLY, schema.RP_DAILY})
# Words that name something else too: tag keys (site, camera, sensor) and the wire's lists in a
# batch (agent). A bare literal of one is that other thing; as a measurement it is still caught
# where InfluxQL or line protocol uses it (FROM, a line's head, format_line's first argument).
OTHER_NAMESPACES = TAGS | frozenset(ReadingBatch.model_fields)
_NAMES = "|".join(sorted(map(re.escape, MEASUREMENTS), key=len, reverse=True))
_RP = "|".join(map(re.escape, sorted(POLICIES)))
# A measurement in InfluxQL: FROM m, FROM "m", FROM "rp"."m", FROM rp.m (also in SHOW ... FROM).
# (Upper case, as every query here is written: prose says "from camera hours".)
IN_INFLUXQL = re.compile(rf'\bFROM\s+(?:"?(?:{_RP})"?\.)?"?({_NAMES})"?(?![\w.])')
# A line-protocol head: "camera,site=..." or "camera value=1".
LINE_HEAD = re.compile(rf"^({_NAMES})(?:,| )[a-z_]+=")


def _sources() -> list[Path]:
    return sorted(
        p
        for folder in SCANNED
        for p in (ROOT / folder).rglob("*.py")
        if p != ROOT / "cloud" / "schema.py"
    )


def _offences(source: str) -> Iterator[tuple[int, str]]:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if (
                name == "format_line"
                and isinstance(first, ast.Constant)
                and first.value in MEASUREMENTS
            ):
                yield node.lineno, f"format_line({first.value!r}, ...)"
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        text = node.value
        if text in MEASUREMENTS and text not in OTHER_NAMESPACES:
            yield node.lineno, repr(text)
        for found in IN_INFLUXQL.finditer(text):
            yield node.lineno, found.group(0)
        if head := LINE_HEAD.match(text):
            yield node.lineno, f"line protocol {head.group(0)!r}"


def test_the_checker_finds_what_it_looks_for() -> None:
    """Each way of spelling a measurement out is caught; tag keys and schema names are not."""
    caught = [
        "q = 'SELECT x FROM \"camera\" WHERE 1'",
        "q = 'SELECT x FROM sensor'",
        'q = \'SELECT x FROM "rollup_1h"."district_1h"\'',
        "q = 'SELECT x FROM rollup_1d.camera_1d'",
        'q = \'SHOW TAG VALUES FROM "site" WITH KEY = "site"\'',
        'line = f"gap,site={s} count=1i {ts}"',
        'format_line("site", {}, {}, 0)',
        'name = "pantau_collector"',
        'kind = "stream"',
    ]
    for source in caught:
        assert list(_offences(source)), source
    clean = [
        'q = f\'SELECT x FROM "{CAMERA}" GROUP BY "site", "camera"\'',
        'tags = {"site": site, "camera": camera}',
        'q = \'SELECT x FROM (SELECT last("up") AS "up" FROM "{X}")\'',
        'update = {"agent": []}',
        "q = 'SELECT x FROM cameras'",
    ]
    for source in clean:
        assert not list(_offences(source)), source


def test_no_measurement_name_outside_the_schema() -> None:
    """No module of cloud/ or dashboards/ but cloud/schema.py spells a measurement name out."""
    found = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in _sources()
        for line, what in _offences(path.read_text())
    ]
    assert not found, "use the names in cloud/schema.py:\n" + "\n".join(found)


def _line_fields(line: str) -> tuple[str, set[str]]:
    head, rest = re.split(r"(?<!\\) ", line, maxsplit=1)
    fields = rest.rsplit(" ", 1)[0]
    keys = re.findall(r'(?:^|,)([a-z_]+)=(?:"(?:[^"\\]|\\.)*"|[^,]*)', fields)
    return head.split(",", 1)[0], set(keys)


def test_collector_writes_only_declared_fields() -> None:
    """Every field of every line the collector formats, with each optional field set, is one
    that cloud/schema.py declares for its measurement."""
    batch = ReadingBatch.model_validate(
        {
            "v": 1, "site": "s1", "district": "d1", "msg": 1,
            "cameras": [{
                "camera": "c1", "ts": 1, "up": False, "cause": "timeout", "stage": "rtsp",
                "latency_ms": 1.0, "tcp_ms": 1.0, "rtsp_ms": 1.0, "snapshot_ms": 1.0,
                "snapshot_bytes": 1, "rtsp_status": 200, "since": 1, "picture": "frozen",
            }],
            "sensors": [{"sensor": "t1", "kind": "temperature", "ts": 1, "value": 20.0}],
            "agent": [{
                "ts": 1, "backlog": 1, "dropped_total": 0, "oldest_age_s": 1.0,
                "queue_error": "disk full", "clock_offset_ms": 3.0, "clock_correction_ms": 3.0,
                "rejected_total": 0, "services_version": 2,
            }],
            "gaps": [{"ts": 1, "start_ts": 1, "end_ts": 2, "count": 3}],
            "streams": [{
                "camera": "c1", "ts": 1, "fault": "dark", "faults": ["dark"], "detail": "luma 3",
                "codec": "h264", "width": 1920, "height": 1080, "frames": 5, "fps": 25.0,
                "bitrate_kbps": 2000.0, "first_frame_ms": 100.0, "luma": 3.0, "sharpness": 1.0,
                "motion": 0.0, "frozen_ratio": 0.0, "view_score": 0.5, "cpu_ms": 5.0,
            }],
            "recordings": [{
                "camera": "c1", "recorder": "nvr1", "ts": 10, "window_s": 3600,
                "recorded_s": 3000.0, "gaps": [{"start_ts": 2, "end_ts": 5}], "oldest_ts": 1,
                "retention_days": 20.0, "retention_goal_days": 30.0, "error": "busy",
            }],
            "disks": [{
                "recorder": "nvr1", "disk": "1", "ts": 1, "status": "failed", "detail": "error",
                "capacity_mb": 1e6, "free_mb": 0.0,
            }],
            "devices": [{
                "device": "c1", "ts": 1, "ok": True, "error": "x", "manufacturer": "m",
                "model": "m", "firmware": "f", "serial": "s", "hardware": "h",
                "clock_offset_ms": 5.0, "services": ["media"], "events": ["tamper"],
                "events_ok": True, "events_error": "x", "events_held": ["tamper"],
                "rebooted_ns": 1,
            }],
            "services": [{
                "service": "web", "ts": 1, "ok": False, "stage": "keyword", "detail": "x",
                "status": 200, "dns_ms": 1.0, "connect_ms": 1.0, "tls_ms": 1.0, "ttfb_ms": 1.0,
                "total_ms": 1.0, "cert_days": 10.0, "tls_version": "TLSv1.3", "redirects": 0,
                "body_bytes": 5,
            }],
        }
    )  # fmt: skip
    status = SiteStatus.model_validate(
        {
            "v": 1, "site": "s1", "district": "d1", "online": True, "ts": 1, "lat": -3.8,
            "lon": 102.3, "session": 7, "probe_interval_s": 10.0, "seq": 3,
        }
    )  # fmt: skip
    lines = [*batch_lines(batch), status_line(status, 1, ahead_s=0.5)]
    seen: dict[str, set[str]] = {}
    for line in lines:
        measurement, keys = _line_fields(line)
        seen.setdefault(measurement, set()).update(keys)
    for measurement, keys in seen.items():
        assert keys <= schema.FIELDS[measurement], (measurement, keys - schema.FIELDS[measurement])
    # Every raw measurement the wire fills is exercised with all its fields.
    raw = {schema.CAMERA, schema.STREAM, schema.SENSOR, schema.AGENT, schema.GAP, schema.SITE}
    raw |= {schema.RECORD, schema.RECORD_GAP, schema.RECORD_DISK, schema.DEVICE}
    raw |= {schema.SERVICE}
    assert {m: schema.FIELDS[m] for m in raw} == seen


_IDENT = re.compile(r'"([^"]+)"')
_ALIAS = re.compile(r'\bAS\s+"([^"]+)"', re.IGNORECASE)
_SOURCE = re.compile(r'\bFROM\s+(?:"[^"]+"\.)?"([^"]+)"', re.IGNORECASE)


def _queries() -> Iterator[tuple[str, str]]:
    for name, board in all_dashboards().items():
        for panel in board["panels"]:
            for target in panel["targets"]:
                yield f"{name}: {panel['title']}", target["query"]


@pytest.mark.parametrize(("where", "query"), list(_queries()))
def test_dashboards_read_declared_names(where: str, query: str) -> None:
    """Each dashboard query reads from schema measurements, and every quoted name in it is a
    declared field or tag of those measurements, a retention policy or an alias it defines."""
    sources = set(_SOURCE.findall(query))
    assert sources, f"{where}: no measurement in {query!r}"
    assert sources <= MEASUREMENTS, (where, sources - MEASUREMENTS)
    known = set().union(*(schema.FIELDS[m] for m in sources)) | TAGS | POLICIES | sources
    known |= {schema.KIND_TAG, schema.INSTANCE_TAG, schema.REASON_TAG}
    unknown = set(_IDENT.findall(query)) - known - set(_ALIAS.findall(query))
    assert not unknown, f"{where}: {sorted(unknown)} not declared in cloud/schema.py FIELDS"


def test_data_model_doc_lists_every_measurement_and_field() -> None:
    """docs/data-model.md's InfluxDB table names every measurement and field of the schema."""
    doc = (ROOT / "docs" / "data-model.md").read_text()
    rows = {
        match.group(1).split(".")[-1]: match.group(2)
        for match in re.finditer(r"^\| `([a-z0-9_.]+)` \|[^|]*\|(.*)\|$", doc, re.MULTILINE)
    }
    missing = sorted(MEASUREMENTS - rows.keys())
    assert not missing, f"docs/data-model.md has no row for {missing}"
    for measurement, fields in schema.FIELDS.items():
        undocumented = sorted(f for f in fields if f"`{f}`" not in rows[measurement])
        assert not undocumented, f"docs/data-model.md, {measurement}: {undocumented}"


def test_default_probe_interval_is_the_agents() -> None:
    """The cloud assumes the agents' default probe period for a site whose birth has none, and
    "now" is at least three of them."""
    assert ProbeConfig().interval_s == schema.DEFAULT_PROBE_INTERVAL_S
    assert schema.fresh_within_s(schema.DEFAULT_PROBE_INTERVAL_S) == schema.FRESH_S
    assert schema.fresh_within_s(60.0) == 180.0
    assert schema.fresh_within_s(1.0) == schema.FRESH_FLOOR_S
