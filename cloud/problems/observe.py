"""Apply the rules to what InfluxDB holds at one instant ``now_ns``.

Every query is bounded by explicit timestamps rather than ``now()``, so an evaluation can be
replayed at any instant of recorded history (that is how the tests walk through an hour).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from cloud.influx import InfluxClient, series_rows
from cloud.problems.config import RulesConfig, Severity, ThresholdRule
from cloud.problems.device_checks import device_checks, recording_checks
from cloud.problems.model import Observation, SiteContact, Verdict
from cloud.problems.ports import PortVerdict, camera_title_cause, ports_now, switch_observations
from cloud.problems.service_checks import service_checks
from cloud.problems.site_checks import district_mismatches, duplicate_sites, site_clocks
from cloud.schema import (
    AGENT,
    CAMERA,
    COLLECTOR,
    LAST_CAMERA_FIELDS,
    LAST_SITE_FIELDS,
    SITE,
    Status,
    camera_status_now,
    site_online_now,
    site_sessions,
    site_sessions_query,
)
from cloud.services.windows import PathsAside
from pantau.core.contract import StreamFault
from pantau.core.units import NS_PER_S, to_ns

log = logging.getLogger(__name__)

LOOKBACK_S = 3600  # how far back a camera's or agent's last report is looked for
SINCE_LOOKBACK_S = 86400  # how far back a threshold breach's start is looked for
# Collectors report every few seconds, so a long look back scans few points.
INGEST_LOOKBACK_S = 30 * 86400
SITE_STATUS_LOOKBACK_S = 35 * 86400  # raw retention; agents publish their status every few hours


class Observer:
    """Turns the latest data into one observation per rule and subject: the evaluator's
    ``ObservationSource`` in production."""

    def __init__(
        self, client: InfluxClient, rules: RulesConfig, paths_aside: PathsAside | None = None
    ) -> None:
        self._client = client
        self._rules = rules
        self._paths_aside = paths_aside  # districts whose path to a service is in maintenance

    async def observe(self, now_ns: int) -> list[Observation]:
        """Observations at ``now_ns``; raises ``InfluxError`` if the database does not answer."""
        ingest = await self._ingest(now_ns)
        if ingest.verdict is Verdict.BAD:
            # Silence from every site at once is our pipeline, not the sites: blame nobody else.
            return [ingest]
        sites = await self._sites(now_ns)
        observations = [ingest]
        observations += await self._cameras_and_sites(now_ns, sites)
        if self._rules.duplicate.enabled:
            observations += await duplicate_sites(self._query, self._rules.duplicate, now_ns, sites)
        if self._rules.clock.enabled:
            observations += await site_clocks(self._query, self._rules.clock, now_ns, sites)
        if self._rules.district.enabled:
            observations += await district_mismatches(
                self._query, self._rules.district, now_ns, sites
            )
        if self._rules.recording.enabled:
            observations += await recording_checks(
                self._query, self._rules.recording, now_ns, sites
            )
        if self._rules.devices.enabled:
            observations += await device_checks(self._query, self._rules.devices, now_ns, sites)
        if self._rules.services.enabled:
            aside = await self._paths_aside(now_ns) if self._paths_aside else {}
            observations += await service_checks(
                self._query, self._rules.services, now_ns, sites, aside=aside
            )
        for rule in self._rules.thresholds:
            observations += await self._threshold(now_ns, rule, sites)
        return observations

    async def _query(self, q: str) -> list[dict[str, Any]]:
        return series_rows(await self._client.query(q))

    async def _ingest(self, now_ns: int) -> Observation:
        stale_ns = to_ns(self._rules.ingest_stale_after)
        rows = await self._query(
            f'SELECT last("received") FROM "{COLLECTOR}" '
            f"WHERE time <= {now_ns} AND time > {now_ns - to_ns(INGEST_LOOKBACK_S)}"
        )
        last = int(rows[0]["time"]) if rows else None
        if last is None:
            # A new installation before its first collector report: nothing to miss yet.
            verdict, cause = Verdict.PENDING, "no collector has reported yet"
        elif last < now_ns - stale_ns:
            verdict, cause = (
                Verdict.BAD,
                f"no collector has reported for {(now_ns - last) / NS_PER_S:.0f}s",
            )
        else:
            verdict, cause = Verdict.GOOD, "collectors reporting"
        return Observation(
            key="ingest",
            rule="ingest",
            title="ingest stalled (collector, broker or InfluxDB)",
            severity=Severity.CRITICAL,
            verdict=verdict,
            site="",
            district="",
            camera=None,
            subject="pipeline",
            since_ns=last,
            cause=cause,
        )

    async def _sites(self, now_ns: int) -> dict[str, SiteContact]:
        rule = self._rules.site
        window = f"time <= {now_ns} AND time > {now_ns - to_ns(SITE_STATUS_LOOKBACK_S)}"
        wills = await self._query(
            f'SELECT {LAST_SITE_FIELDS} FROM "{SITE}" WHERE {window} GROUP BY "site", "district"'
        )
        sessions = site_sessions(await self._query(site_sessions_query(window)))
        agents = await self._query(
            f'SELECT last("backlog") FROM "{AGENT}" '
            f"WHERE time <= {now_ns} AND time > {now_ns - to_ns(LOOKBACK_S)} "
            'GROUP BY "site", "district"'
        )
        last_report = {row["site"]: int(row["time"]) for row in agents}
        districts = {row["site"]: row.get("district", "") for row in agents}
        status = {
            row["site"]: (site_online_now(row, sessions.get(row["site"])), int(row["time"]))
            for row in wills
        }
        districts.update({row["site"]: row.get("district", "") for row in wills})
        stale_before = now_ns - to_ns(rule.stale_after)
        sites = {}
        for site, district in districts.items():
            online, changed = status.get(site, (True, 0))
            report = last_report.get(site)
            if not online:
                sites[site] = SiteContact(district, offline=True, since_ns=changed)
            elif report is None or report < stale_before:
                sites[site] = SiteContact(district, offline=True, since_ns=report or changed)
            else:
                sites[site] = SiteContact(district, offline=False, since_ns=changed)
        return sites

    async def _cameras_and_sites(
        self, now_ns: int, sites: dict[str, SiteContact]
    ) -> list[Observation]:
        rule = self._rules.camera
        last = await self._query(
            f'SELECT {LAST_CAMERA_FIELDS} FROM "{CAMERA}" '
            f"WHERE time <= {now_ns} AND time > {now_ns - to_ns(LOOKBACK_S)} "
            'GROUP BY "site", "district", "camera"'
        )
        flaps = await self._query(
            f'SELECT count(distinct("since")) AS "states" FROM "{CAMERA}" '
            f"WHERE time <= {now_ns} AND time > {now_ns - to_ns(rule.flap_window)} "
            'GROUP BY "site", "camera"'
        )
        states = {(r["site"], r["camera"]): int(r["states"]) for r in flaps}
        ports = await ports_now(self._query, now_ns, self._rules.site.stale_after)
        folded: dict[str, list[dict[str, Any]]] = defaultdict(list)
        under_switch: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        observations = []
        stale_before = now_ns - to_ns(self._rules.site.stale_after)
        for row in last:
            site, camera = row["site"], row["camera"]
            up = row["up"] == 1
            entry = {"camera": camera, "up": up, "cause": row["cause"]}
            state = sites.get(site)
            if state is not None and state.offline:
                folded[site].append(entry)
                continue
            if not rule.enabled or int(row["time"]) < stale_before:
                continue
            port = ports.get((site, camera))
            if not up and port is not None and port.verdict is PortVerdict.SWITCH_DOWN:
                under_switch[(site, port.switch)].append(entry)  # the switch problem covers it
                continue
            since = int(row["since"]) if row.get("since") is not None else int(row["time"])
            changes = states.get((site, camera), 1) - 1
            flapping = changes >= rule.flap_changes
            degraded = camera_status_now(row, stale_before_ns=stale_before) is Status.DEGRADED
            if degraded and not flapping:
                # The stream probe runs every few minutes: one faulty picture is the evidence.
                verdict, cause = Verdict.BAD, _picture_cause(row.get("picture"))
            elif flapping:
                verdict = Verdict.BAD
                cause = (
                    f"flapping: {changes} up/down changes in {rule.flap_window / 60:.0f} min, "
                    f"now {'up' if up else 'down'}"
                )
            elif not up and since <= now_ns - to_ns(rule.down_for):
                verdict = Verdict.BAD
                cause = _camera_cause(row)
            elif up and since <= now_ns - to_ns(rule.clear_for):
                verdict = Verdict.GOOD
                cause = "up"
            else:
                verdict, cause = Verdict.PENDING, "up" if up else _camera_cause(row)
            title = (
                "camera flapping"
                if flapping
                else _picture_title(row.get("picture"))
                if degraded
                else "camera down"
            )
            if not up and not flapping:
                title, cause = camera_title_cause(port, cause)
            observations.append(
                Observation(
                    key=f"camera:{site}/{camera}",
                    rule="camera",
                    title=title,
                    severity=rule.severity,
                    verdict=verdict,
                    site=site,
                    district=row.get("district", ""),
                    camera=camera,
                    subject=f"{site}/{camera}",
                    since_ns=since,
                    cause=cause,
                )
            )
        observations += [
            self._site(now_ns, site, state, sorted(folded[site], key=lambda e: e["camera"]))
            for site, state in sorted(sites.items())
        ]
        offline = {site for site, state in sites.items() if state.offline}
        districts = {site: state.district for site, state in sites.items()}
        observations += switch_observations(ports, under_switch, offline, districts, rule.severity)
        return observations

    def _site(
        self, now_ns: int, site: str, state: SiteContact, cameras: list[dict[str, Any]]
    ) -> Observation:
        rule = self._rules.site
        held_ns = now_ns - state.since_ns
        if state.offline:
            verdict = Verdict.BAD if held_ns >= to_ns(rule.offline_for) else Verdict.PENDING
        else:
            verdict = Verdict.GOOD if held_ns >= to_ns(rule.clear_for) else Verdict.PENDING
        return Observation(
            key=f"site:{site}",
            rule="site",
            title="site offline (lost contact with the agent)",
            severity=rule.severity,
            verdict=verdict,
            site=site,
            district=state.district,
            camera=None,
            subject=site,
            since_ns=state.since_ns,
            cause="no contact: power, uplink or agent" if state.offline else "agent reporting",
            details={"cameras": cameras} if cameras else {},
        )

    async def _threshold(
        self, now_ns: int, rule: ThresholdRule, sites: dict[str, SiteContact]
    ) -> list[Observation]:
        measurement = rule.measurement
        where = f"\"kind\" = '{rule.kind}' AND " if measurement == "sensor" else ""
        group = '"site", "sensor"' if measurement == "sensor" else '"site"'
        f = rule.field

        async def window(seconds: float) -> dict[tuple[str, str], dict[str, Any]]:
            rows = await self._query(
                f'SELECT min("{f}") AS "lo", max("{f}") AS "hi", last("{f}") AS "now" '
                f'FROM "{measurement}" WHERE {where}time <= {now_ns} '
                f"AND time > {now_ns - to_ns(seconds)} GROUP BY {group}"
            )
            return {(r["site"], r.get("sensor", "")): r for r in rows}

        breach = await window(rule.for_)
        clear = await window(rule.clear_for)
        observations = []
        bad_keys = []
        for key in sorted(set(breach) | set(clear)):
            state = sites.get(key[0])
            if state is None or state.offline:
                continue  # the site problem covers it; its data is stale anyway
            b, c = breach.get(key), clear.get(key)
            if rule.above is not None:
                bad = b is not None and b["lo"] > rule.above
                good = c is not None and c["hi"] <= rule.clear_at
            else:
                assert rule.below is not None
                bad = b is not None and b["hi"] < rule.below
                good = c is not None and c["lo"] >= rule.clear_at
            verdict = Verdict.BAD if bad else Verdict.GOOD if good else Verdict.PENDING
            value = (b or c or {}).get("now")
            if bad:
                bad_keys.append(key)
            observations.append((key, verdict, value, state.district))
        started = await self._breach_starts(now_ns, rule, where, group) if bad_keys else {}
        return [
            Observation(
                key=f"{rule.name}:{site}/{sensor}" if sensor else f"{rule.name}:{site}",
                rule=rule.name,
                title=rule.title,
                severity=rule.severity,
                verdict=verdict,
                site=site,
                district=district,
                camera=None,
                subject=f"{site}/{sensor}" if sensor else site,
                since_ns=started.get((site, sensor), now_ns - to_ns(rule.for_)),
                cause=f"{rule.kind or rule.field} {value:g}{rule.unit} "
                f"({'above' if rule.above is not None else 'below'} "
                f"{rule.above if rule.above is not None else rule.below:g}{rule.unit})"
                if value is not None
                else "no value",
                details={"value": value},
            )
            for (site, sensor), verdict, value, district in observations
        ]

    async def _breach_starts(
        self, now_ns: int, rule: ThresholdRule, where: str, group: str
    ) -> dict[tuple[str, str], int]:
        """When each breach began: just after the last value on the good side of the line."""
        f = rule.field
        good_side = f'"{f}" <= {rule.above}' if rule.above is not None else f'"{f}" >= {rule.below}'
        rows = await self._query(
            f'SELECT last("{f}") FROM "{rule.measurement}" WHERE {where}{good_side} '
            f"AND time <= {now_ns} AND time > {now_ns - to_ns(SINCE_LOOKBACK_S)} GROUP BY {group}"
        )
        return {(r["site"], r.get("sensor", "")): int(r["time"]) + 1 for r in rows}


def _camera_cause(row: dict[str, Any]) -> str:
    cause = str(row.get("cause") or "down")
    stage = row.get("stage")
    return f"{cause} at {stage}" if stage else cause


VIEW_CHANGED_TITLE = "camera view changed"


def _picture_title(picture: object) -> str:
    """A changed view is its own problem (a person accepts it); other picture faults are one."""
    return VIEW_CHANGED_TITLE if picture == StreamFault.VIEW_CHANGED else "camera picture fault"


def _picture_cause(picture: object) -> str:
    if picture == StreamFault.VIEW_CHANGED:
        return (
            "picture view_changed: moved, covered or re-aimed (if intended, accept the new "
            "view on the page)"
        )
    return f"picture {picture}"
