"""Whole-site problem rules: two agents using one site id, a site clock that is wrong, and a
site claiming another district than the registry's."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from cloud.problems.config import ClockRule, DistrictRule, DuplicateSiteRule, Severity
from cloud.problems.model import Observation, SiteContact, Verdict
from cloud.schema import AGENT, DISTRICT_MISMATCH, SITE, SITE_CLOCK
from pantau.core.units import to_ns

Query = Callable[[str], Awaitable[list[dict[str, Any]]]]


async def duplicate_sites(
    query: Query, rule: DuplicateSiteRule, now_ns: int, sites: Mapping[str, SiteContact]
) -> list[Observation]:
    """Sessions of one site taking turns: a session that connects again after another one
    connected in between is a second agent with the same site id."""
    births = await query(
        f'SELECT "session" FROM "{SITE}" WHERE "online" = 1 AND time <= {now_ns} '
        f'AND time > {now_ns - to_ns(rule.window)} GROUP BY "site"'
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
                since_ns=now_ns - to_ns(rule.window) if bad else None,
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


async def site_clocks(
    query: Query, rule: ClockRule, now_ns: int, sites: Mapping[str, SiteContact]
) -> list[Observation]:
    """Each site's clock error from its newest measurement: the agent's receipt round trips
    (``clock_offset_ms``, recorded by the collector at its own time in ``pantau_site_clock``,
    because a wrong clock stamps its own readings where "now" never looks) or a birth stamped
    ahead of its arrival."""
    since = now_ns - to_ns(rule.window)
    offsets = await query(
        f'SELECT last("offset_ms") AS "v" FROM "{SITE_CLOCK}" '
        f'WHERE time <= {now_ns} AND time > {since} GROUP BY "site"'
    )
    births = await query(
        f'SELECT last("online") AS "online", "clock_ahead_s" FROM "{SITE}" '
        f'WHERE "online" = 1 AND time <= {now_ns} AND time > {since} GROUP BY "site"'
    )
    # What the agent adds to its clock to stamp readings (agents since contract minor 1).
    corrections = await query(
        f'SELECT last("clock_correction_ms") AS "c" FROM "{AGENT}" '
        f'WHERE time <= {now_ns} AND time > {since} GROUP BY "site"'
    )
    corrected = {r["site"]: float(r["c"]) / 1000 for r in corrections if r.get("c") is not None}
    # (time of the measurement, seconds the site's clock is ahead)
    newest: dict[str, tuple[int, float]] = {
        r["site"]: (int(r["time"]), -float(r["v"]) / 1000) for r in offsets
    }
    for r in births:
        when, ahead = int(r["time"]), r.get("clock_ahead_s")
        # A birth measures a clock only when it runs ahead (it is stored at its arrival, and a
        # late delivery makes any clock look behind): one without ``clock_ahead_s`` says nothing
        # against the agent's own measurement, only where there is none.
        if r["site"] not in newest or (ahead is not None and newest[r["site"]][0] < when):
            newest[r["site"]] = (when, float(ahead or 0.0))
    observations = []
    for site, state in sorted(sites.items()):
        _, ahead_s = newest.get(site, (0, 0.0))
        bad = abs(ahead_s) > rule.max_offset
        way = "ahead" if ahead_s > 0 else "behind"
        correction_s = corrected.get(site)
        effect = (
            "readings carry that error"
            if correction_s is None
            else f"the agent corrects its readings by {correction_s:+.0f} s, measured from receipts"
        )
        details: dict[str, Any] = {"value": round(ahead_s, 3)}
        if correction_s is not None:
            details["correction_s"] = round(correction_s, 3)
        observations.append(
            _site_check(
                "clock",
                "site clock wrong",
                rule.severity,
                site,
                state,
                bad=bad,
                since_ns=None,
                cause=f"site clock {way} by {abs(ahead_s):.0f} s ({effect}; fix NTP on the "
                "edge box)"
                if bad
                else "clock within bounds",
                details=details if bad else {},
            )
        )
    return observations


async def district_mismatches(
    query: Query, rule: DistrictRule, now_ns: int, sites: Mapping[str, SiteContact]
) -> list[Observation]:
    """Sites whose messages claimed another district than the registry's within the window
    (``pantau_district_mismatch``, written by the collector): their data went to the
    registered district, and the agent's configuration (or whoever holds its credentials)
    should be looked at."""
    rows = await query(
        f'SELECT last("claimed") AS "claimed", "registered" FROM "{DISTRICT_MISMATCH}" '
        f'WHERE time <= {now_ns} AND time > {now_ns - to_ns(rule.window)} GROUP BY "site"'
    )
    latest = {row["site"]: row for row in rows}
    observations = []
    for site, state in sorted(sites.items()):
        row = latest.get(site)
        observations.append(
            _site_check(
                "district",
                "site claims another district",
                rule.severity,
                site,
                state,
                bad=row is not None,
                since_ns=int(row["time"]) if row is not None else None,
                cause=f"site claims district {row['claimed']}, registered as "
                f"{row['registered']} (stored under {row['registered']}; fix site.district in "
                "the agent's config, or move the site with `pantau sites place`)"
                if row is not None
                else "district as registered",
                details={"claimed": row["claimed"], "registered": row["registered"]}
                if row is not None
                else {},
            )
        )
    return observations


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
    state: SiteContact,
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
