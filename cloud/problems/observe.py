"""Apply the rules to what InfluxDB holds at one instant ``now_ns``.

Every query is bounded by explicit timestamps rather than ``now()``, so an evaluation can be
replayed at any instant of recorded history (that is how the tests walk through an hour).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from cloud.influx import InfluxClient, series_rows
from cloud.problems.config import RulesConfig, Severity, ThresholdRule
from cloud.problems.model import Observation, Verdict
from cloud.schema import (
    AGENT,
    CAMERA,
    LAST_CAMERA_FIELDS,
    LAST_SITE_FIELDS,
    SITE,
    Status,
    camera_status_now,
    site_online_now,
)

log = logging.getLogger(__name__)

S = 1_000_000_000
LOOKBACK_S = 3600  # how far back a camera's or agent's last report is looked for
SINCE_LOOKBACK_S = 86400  # how far back a threshold breach's start is looked for
# Collectors report every few seconds, so a long look back scans few points.
INGEST_LOOKBACK_S = 30 * 86400


def _ns(seconds: float) -> int:
    return int(seconds * S)


@dataclass(frozen=True, slots=True)
class _Site:
    district: str
    offline: bool
    since_ns: int  # start of the current online/offline state


class Observer:
    """Turns the latest data into one observation per rule and subject."""

    def __init__(self, client: InfluxClient, rules: RulesConfig) -> None:
        self._client = client
        self._rules = rules

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
            observations += await self._duplicates(now_ns, sites)
        if self._rules.clock.enabled:
            observations += await self._clocks(now_ns, sites)
        for rule in self._rules.thresholds:
            observations += await self._threshold(now_ns, rule, sites)
        return observations

    async def _query(self, q: str) -> list[dict[str, Any]]:
        return series_rows(await self._client.query(q))

    async def _ingest(self, now_ns: int) -> Observation:
        stale_ns = _ns(self._rules.ingest_stale_after)
        rows = await self._query(
            'SELECT last("received") FROM "pantau_collector" '
            f"WHERE time <= {now_ns} AND time > {now_ns - _ns(INGEST_LOOKBACK_S)}"
        )
        last = int(rows[0]["time"]) if rows else None
        if last is None:
            # A new installation before its first collector report: nothing to miss yet.
            verdict, cause = Verdict.PENDING, "no collector has reported yet"
        elif last < now_ns - stale_ns:
            verdict, cause = (
                Verdict.BAD,
                f"no collector has reported for {(now_ns - last) / S:.0f}s",
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

    async def _sites(self, now_ns: int) -> dict[str, _Site]:
        rule = self._rules.site
        wills = await self._query(
            f'SELECT {LAST_SITE_FIELDS} FROM "{SITE}" '
            f'WHERE time <= {now_ns} GROUP BY "site", "district"'
        )
        agents = await self._query(
            f'SELECT last("backlog") FROM "{AGENT}" '
            f"WHERE time <= {now_ns} AND time > {now_ns - _ns(LOOKBACK_S)} "
            'GROUP BY "site", "district"'
        )
        last_report = {row["site"]: int(row["time"]) for row in agents}
        districts = {row["site"]: row.get("district", "") for row in agents}
        status = {row["site"]: (site_online_now(row), int(row["time"])) for row in wills}
        districts.update({row["site"]: row.get("district", "") for row in wills})
        stale_before = now_ns - _ns(rule.stale_after)
        sites = {}
        for site, district in districts.items():
            online, changed = status.get(site, (True, 0))
            report = last_report.get(site)
            if not online:
                sites[site] = _Site(district, offline=True, since_ns=changed)
            elif report is None or report < stale_before:
                sites[site] = _Site(district, offline=True, since_ns=report or changed)
            else:
                sites[site] = _Site(district, offline=False, since_ns=changed)
        return sites

    async def _cameras_and_sites(self, now_ns: int, sites: dict[str, _Site]) -> list[Observation]:
        rule = self._rules.camera
        last = await self._query(
            f'SELECT {LAST_CAMERA_FIELDS} FROM "{CAMERA}" '
            f"WHERE time <= {now_ns} AND time > {now_ns - _ns(LOOKBACK_S)} "
            'GROUP BY "site", "district", "camera"'
        )
        flaps = await self._query(
            'SELECT count(distinct("since")) AS "states" FROM "camera" '
            f"WHERE time <= {now_ns} AND time > {now_ns - _ns(rule.flap_window)} "
            'GROUP BY "site", "camera"'
        )
        states = {(r["site"], r["camera"]): int(r["states"]) for r in flaps}
        folded: dict[str, list[dict[str, Any]]] = defaultdict(list)
        observations = []
        stale_before = now_ns - _ns(self._rules.site.stale_after)
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
            since = int(row["since"]) if row.get("since") is not None else int(row["time"])
            changes = states.get((site, camera), 1) - 1
            flapping = changes >= rule.flap_changes
            degraded = camera_status_now(row, stale_before_ns=stale_before) is Status.DEGRADED
            if degraded and not flapping:
                # The stream probe runs every few minutes: one faulty picture is the evidence.
                verdict, cause = Verdict.BAD, f"picture {row.get('picture')}"
            elif flapping:
                verdict = Verdict.BAD
                cause = (
                    f"flapping: {changes} up/down changes in {rule.flap_window / 60:.0f} min, "
                    f"now {'up' if up else 'down'}"
                )
            elif not up and since <= now_ns - _ns(rule.down_for):
                verdict = Verdict.BAD
                cause = _camera_cause(row)
            elif up and since <= now_ns - _ns(rule.clear_for):
                verdict = Verdict.GOOD
                cause = "up"
            else:
                verdict, cause = Verdict.PENDING, "up" if up else _camera_cause(row)
            observations.append(
                Observation(
                    key=f"camera:{site}/{camera}",
                    rule="camera",
                    title="camera flapping"
                    if flapping
                    else "camera picture fault"
                    if degraded
                    else "camera down",
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
        return observations

    async def _duplicates(self, now_ns: int, sites: dict[str, _Site]) -> list[Observation]:
        """Sessions of one site taking turns: a session that connects again after another one
        connected in between is a second agent with the same site id."""
        rule = self._rules.duplicate
        births = await self._query(
            f'SELECT "session" FROM "{SITE}" WHERE "online" = 1 AND time <= {now_ns} '
            f'AND time > {now_ns - _ns(rule.window)} GROUP BY "site"'
        )
        sequences: dict[str, list[int]] = defaultdict(list)
        for row in sorted(births, key=lambda r: int(r["time"])):
            if row.get("session") is not None:
                sequences[row["site"]].append(int(row["session"]))
        observations = []
        for site, state in sorted(sites.items()):
            returns, sessions = _returns(sequences.get(site, []))
            bad = returns >= rule.min_returns
            observations.append(
                _site_check(
                    "duplicate",
                    "duplicate site id (two agents use one site id)",
                    rule.severity,
                    site,
                    state,
                    bad=bad,
                    since_ns=now_ns - _ns(rule.window) if bad else None,
                    cause=(
                        f"{len(sessions)} agents take the connection from each other: "
                        f"{returns} takeovers in {rule.window / 60:.0f} min; give each its own "
                        "site id and credentials"
                        if bad
                        else "one agent"
                    ),
                    details={"sessions": sorted(sessions)} if bad else {},
                )
            )
        return observations

    async def _clocks(self, now_ns: int, sites: dict[str, _Site]) -> list[Observation]:
        """Each site's clock error from its newest measurement: the agent's receipt round trips
        (``clock_offset_ms``, either way) or a birth stamped ahead of its arrival."""
        rule = self._rules.clock
        since = now_ns - _ns(rule.window)
        offsets = await self._query(
            f'SELECT last("clock_offset_ms") AS "v" FROM "{AGENT}" '
            f'WHERE time <= {now_ns} AND time > {since} GROUP BY "site"'
        )
        births = await self._query(
            f'SELECT last("online") AS "online", "clock_ahead_s" FROM "{SITE}" '
            f'WHERE "online" = 1 AND time <= {now_ns} AND time > {since} GROUP BY "site"'
        )
        # (time of the measurement, seconds the site's clock is ahead)
        newest: dict[str, tuple[int, float]] = {
            r["site"]: (int(r["time"]), -float(r["v"]) / 1000) for r in offsets
        }
        for r in births:
            when = int(r["time"])
            if r["site"] not in newest or newest[r["site"]][0] < when:
                newest[r["site"]] = (when, float(r.get("clock_ahead_s") or 0.0))
        observations = []
        for site, state in sorted(sites.items()):
            _, ahead_s = newest.get(site, (0, 0.0))
            bad = abs(ahead_s) > rule.max_offset
            way = "ahead" if ahead_s > 0 else "behind"
            observations.append(
                _site_check(
                    "clock",
                    "site clock wrong",
                    rule.severity,
                    site,
                    state,
                    bad=bad,
                    since_ns=None,
                    cause=f"site clock {way} by {abs(ahead_s):.0f} s (readings carry that "
                    "error; fix NTP on the edge box)"
                    if bad
                    else "clock within bounds",
                    details={"value": round(ahead_s, 3)} if bad else {},
                )
            )
        return observations

    def _site(
        self, now_ns: int, site: str, state: _Site, cameras: list[dict[str, Any]]
    ) -> Observation:
        rule = self._rules.site
        held_ns = now_ns - state.since_ns
        if state.offline:
            verdict = Verdict.BAD if held_ns >= _ns(rule.offline_for) else Verdict.PENDING
        else:
            verdict = Verdict.GOOD if held_ns >= _ns(rule.clear_for) else Verdict.PENDING
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
        self, now_ns: int, rule: ThresholdRule, sites: dict[str, _Site]
    ) -> list[Observation]:
        measurement = rule.measurement
        where = f"\"kind\" = '{rule.kind}' AND " if measurement == "sensor" else ""
        group = '"site", "sensor"' if measurement == "sensor" else '"site"'
        f = rule.field

        async def window(seconds: float) -> dict[tuple[str, str], dict[str, Any]]:
            rows = await self._query(
                f'SELECT min("{f}") AS "lo", max("{f}") AS "hi", last("{f}") AS "now" '
                f'FROM "{measurement}" WHERE {where}time <= {now_ns} '
                f"AND time > {now_ns - _ns(seconds)} GROUP BY {group}"
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
                since_ns=started.get((site, sensor), now_ns - _ns(rule.for_)),
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
            f"AND time <= {now_ns} AND time > {now_ns - _ns(SINCE_LOOKBACK_S)} GROUP BY {group}"
        )
        return {(r["site"], r.get("sensor", "")): int(r["time"]) + 1 for r in rows}


def _camera_cause(row: dict[str, Any]) -> str:
    cause = str(row.get("cause") or "down")
    stage = row.get("stage")
    return f"{cause} at {stage}" if stage else cause


def _returns(sessions: list[int]) -> tuple[int, set[int]]:
    """How often a session connected again after another one had connected (A B A: once)."""
    returns, seen, previous = 0, set(), None
    for session in sessions:
        if session != previous and session in seen:
            returns += 1
        seen.add(session)
        previous = session
    return returns, seen


def _site_check(
    rule: str,
    title: str,
    severity: Severity,
    site: str,
    state: _Site,
    *,
    bad: bool,
    since_ns: int | None,
    cause: str,
    details: dict[str, Any],
) -> Observation:
    """A whole-site rule's observation (duplicate id, clock): bad or good, nothing pending."""
    return Observation(
        key=f"{rule}:{site}",
        rule=rule,
        title=title,
        severity=severity,
        verdict=Verdict.BAD if bad else Verdict.GOOD,
        site=site,
        district=state.district,
        camera=None,
        subject=site,
        since_ns=since_ns,
        cause=cause,
        details=details,
    )
