"""Line protocol escaping and the payload → point mapping."""

from __future__ import annotations

import httpx
import pytest

from cloud.lineproto import LineProtocolError, batch_lines, format_line, status_line
from devtools.localsvc import InfluxProcess
from pantau.core.commands import Action, CommandReading, CommandResult
from pantau.core.contract import (
    CameraReading,
    ReadingBatch,
    SensorReading,
    SiteStatus,
    StreamReading,
)
from tests.helpers import influx_rows


def test_escaping_of_every_special_character() -> None:
    """Commas, spaces, equals signs, quotes and backslashes are escaped where they must be."""
    line = format_line(
        "my meas,x",
        {"tag key": "v a,l=ue", "a": "b"},
        {"f=1": 'say "hi" \\ bye', "n": 3, "x": 1.5, "ok": True},
        42,
    )
    assert line == (
        "my\\ meas\\,x,a=b,tag\\ key=v\\ a\\,l\\=ue "
        'f\\=1="say \\"hi\\" \\\\ bye",n=3i,x=1.5,ok=t 42'
    )


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "", "ends\\"])
def test_unrepresentable_values_are_refused(bad: str) -> None:
    """Line breaks, empty keys and trailing backslashes cannot be encoded safely."""
    with pytest.raises(LineProtocolError):
        format_line("m", {"t": bad}, {"f": 1}, 1)


def test_batch_mapping() -> None:
    """Cameras, sensors map to the documented measurements, tags and fields."""
    batch = ReadingBatch(
        site="s1",
        district="d1",
        cameras=[
            CameraReading(
                camera="c1", ts=10, up=False, cause="refused", stage="tcp", latency_ms=2.0
            )
        ],
        sensors=[SensorReading(sensor="cab", kind="temperature", ts=11, value=31.0)],
    )
    assert batch_lines(batch) == [
        'camera,camera=c1,district=d1,site=s1 up=0i,cause="refused",stage="tcp",latency_ms=2.0,'
        'state="down" 10',
        "sensor,kind=temperature,sensor=cab,site=s1 value=31.0 11",
    ]


def test_picture_faults_make_an_answering_camera_degraded() -> None:
    """A stream fault on an up camera is 'degraded'; the stream probe is its own point."""
    batch = ReadingBatch(
        site="s1",
        district="d1",
        cameras=[
            CameraReading(camera="c1", ts=10, up=True, cause="ok", picture="frozen"),
            CameraReading(camera="c2", ts=10, up=True, cause="ok", picture="none"),
            CameraReading(camera="c3", ts=10, up=False, cause="timeout", picture="frozen"),
        ],
        streams=[
            StreamReading(
                camera="c1", ts=9, fault="frozen", faults=["frozen"], detail='100% "unchanged"',
                codec="h264", width=320, height=176, frames=30, fps=10.0, frozen_ratio=1.0,
            )
        ],
    )  # fmt: skip
    lines = batch_lines(batch)
    assert [line.split("state=")[1] for line in lines[:3]] == [
        '"degraded" 10',
        '"up" 10',
        '"down" 10',
    ]
    assert lines[3] == (
        'stream,camera=c1,district=d1,site=s1 fault="frozen",faults="frozen",ok=0i,'
        'detail="100% \\"unchanged\\"",codec="h264",width=320i,height=176i,frames=30i,'
        "fps=10.0,frozen_ratio=1.0 9"
    )


def test_status_mapping() -> None:
    """A birth maps to a site point with online=1 and the coordinates."""
    status = SiteStatus(
        site="s1",
        district="d1",
        online=True,
        ts=5,
        lat=-3.8,
        lon=102.0,
        session=7,
        probe_interval_s=10,
    )
    assert status_line(status, 5) == (
        "site,district=d1,site=s1 online=1i,lat=-3.8,lon=102.0,session=7i,probe_interval_s=10.0 5"
    )


NASTY = [
    "a,b",
    "a=b",
    "a b",
    'say "hi"',
    "back\\slash",
    "\\,\\=\\ ",
    "'; DROP MEASUREMENT x; --",
    "tab\there",
    "é中🚨",
    ",= \"\\'",
    "x\\\\y",
    "=leading",
    " leading space",
    "trailing space ",
]


def test_every_special_character_round_trips_through_influxdb(
    influxd: InfluxProcess, database: str
) -> None:
    """Tag values, field keys and string fields with every special character are stored and
    read back exactly by a real InfluxDB, one point each: nothing splits or injects."""
    lines = [
        format_line("esc", {"t": value, "i": str(i)}, {"s": value, "f k=,": float(i)}, 1000 + i)
        for i, value in enumerate(NASTY)
    ]
    response = httpx.post(
        f"{influxd.url}/write",
        params={"db": database, "precision": "ns"},
        content="\n".join(lines).encode(),
        timeout=10,
    )
    assert response.status_code == 204, response.text
    rows = influx_rows(influxd.url, database, 'SELECT "s", "f k=,", "t", "i" FROM "esc"')
    assert len(rows) == len(NASTY)
    for row in rows:
        i = int(row["i"])
        assert (row["t"], row["s"], row["f k=,"]) == (NASTY[i], NASTY[i], float(i))
    assert influx_rows(influxd.url, database, "SHOW MEASUREMENTS") == [
        {"name": "esc", "_measurement": "measurements"}
    ]


@pytest.mark.parametrize(
    ("action", "result", "up_after", "ok"),
    [
        (Action.POWER_CYCLE, CommandResult.DONE, True, 1),
        (Action.POWER_CYCLE, CommandResult.DONE, False, 0),
        (Action.POWER_CYCLE, CommandResult.DONE, None, 0),
        (Action.REBOOT, CommandResult.FAILED, None, 0),
        (Action.ACCEPT_VIEW, CommandResult.DONE, None, 1),
        (Action.ACCEPT_VIEW, CommandResult.FAILED, None, 0),
    ],
)
def test_a_command_answer_is_ok_when_it_did_what_it_was_for(
    action: Action, result: CommandResult, up_after: bool | None, ok: int
) -> None:
    """A power-cycle or reboot is ok only when the camera came back; an accepted view when
    done (it brings no camera back)."""
    answer = CommandReading(device="c1", ts=5, result=result, action=action, up_after=up_after)
    (line,) = batch_lines(ReadingBatch(site="s1", district="d1", commands=[answer]))
    assert f"ok={ok}i" in line.split(" ")[1].split(","), line
