"""The recording rollup: per camera, recorder and hour, the seconds a recorder should have
recorded (judged by its checks), those it did not (gaps) and the retention checks stamped in
the hour and those meeting their goal (``cloud/recording.py`` reads them back).

A check judges the window before it, so an hour is complete only once the next hour's checks
are in: rolling hours ``[start, end)`` rolls ``[start - 1 h, end)``, and the late-data marks of
recording checks (``cloud/ingest``) make the worker roll their hour, and so the one before it,
again.
"""

from __future__ import annotations

from cloud.influx import InfluxClient
from cloud.lineproto import format_line
from cloud.recording import RECORD_SETTLE_NS, read_spans
from cloud.rollup.timegrid import HOUR_NS
from cloud.schema import CAMERA_TAG, DISTRICT_TAG, RECORD_1H, RECORDER_TAG, SITE_TAG


async def record_hour_lines(
    influx: InfluxClient, start_ns: int, end_ns: int, condition: str = ""
) -> list[str]:
    """The ``record_1h`` points of the whole hours in ``[start_ns - RECORD_SETTLE_NS, end_ns)``
    (``condition``: more of the WHERE clause, e.g. a site filter)."""
    first = start_ns - RECORD_SETTLE_NS
    lines = []
    for ((site, district, camera), recorder), spans in (
        await read_spans(influx, first, end_ns, condition)
    ).items():
        tags = {SITE_TAG: site, DISTRICT_TAG: district, CAMERA_TAG: camera, RECORDER_TAG: recorder}
        for hour in range(first, end_ns, HOUR_NS):
            figures = spans.figures(hour, hour + HOUR_NS)
            if figures.expected_s or figures.retention_checks:
                fields = {
                    "expected_s": figures.expected_s,
                    "gap_s": figures.gap_s,
                    "checks": figures.retention_checks,
                    "met": figures.retention_met,
                }
                lines.append(format_line(RECORD_1H, tags, fields, hour))
    return lines
