"""E-government services judged from several vantage points: the cloud's prober (site
``cloud``) and every district agent that probes them (docs/services.md, "Verdicts").

- **down**: the cloud and most of the districts whose agents are online fail (without a cloud
  probe, most districts); one problem for the service.
- **degraded from X**: X fails while the service is not down, X's agent is online and X's
  other service checks pass.
- **X cannot reach services**: X fails every service it probes while others reach them: X's
  own internet path, one problem for the site.
- **X cut off**: X's agent is offline; its probes are set aside (the site-offline problem
  speaks for it) and the service gets no downtime from it.
- **warnings**: a certificate closer to expiry than the service's ``tls_warn_days``; answers
  slower than ``max_latency_ms`` (median of the vantages that passed).
"""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cloud.problems.config import ServiceRule, Severity
from cloud.problems.model import Observation, SiteContact, Verdict
from cloud.schema import SERVICE
from cloud.services.catalogue import Catalogue, load_catalogue
from pantau.core.configfile import ConfigError
from pantau.core.services import ServiceCheck
from pantau.core.units import to_ns

log = logging.getLogger(__name__)
Query = Callable[[str], Awaitable[list[dict[str, Any]]]]
CLOUD = "cloud"  # the site tag of the cloud's own prober
SINCE_LOOKBACK_S = 86400  # how far back a vantage's last success is looked for


@dataclass(frozen=True, slots=True)
class View:
    """The latest probe of one service from one vantage point."""

    site: str
    district: str
    ok: bool
    ts: int
    stage: str | None = None
    detail: str | None = None
    cert_days: float | None = None
    total_ms: float | None = None
    last_ok_ns: int | None = None


async def service_checks(
    query: Query,
    rule: ServiceRule,
    now_ns: int,
    sites: Mapping[str, SiteContact],
    *,
    aside: Mapping[str, frozenset[str]] | None = None,
) -> list[Observation]:
    """The service observations at ``now_ns`` from the catalogue and the latest probes
    (``aside``: per service, districts whose path to it is in maintenance; see ``judge``)."""
    if rule.catalogue is None:
        return []
    try:
        catalogue = load_catalogue(rule.catalogue)
    except ConfigError as exc:  # a bad edit must not stop the other rules; problems stay as are
        log.warning("service rules skipped: %s", exc)
        return []
    views = await latest_views(query, now_ns - to_ns(rule.fresh), now_ns)
    return judge(catalogue, views, sites, aside=aside)


async def latest_views(query: Query, since_ns: int, now_ns: int) -> dict[str, list[View]]:
    """Per service, each vantage's latest probe after ``since_ns``, with its last success."""
    rows = await query(
        f'SELECT last("ok") AS "ok", "stage", "detail", "cert_days", "total_ms" FROM "{SERVICE}" '
        f'WHERE time <= {now_ns} AND time > {since_ns} GROUP BY "service", "site", "district"'
    )
    good = await query(
        f'SELECT last("ok") AS "ok" FROM "{SERVICE}" WHERE "ok" = 1 AND time <= {now_ns} '
        f'AND time > {now_ns - to_ns(SINCE_LOOKBACK_S)} GROUP BY "service", "site"'
    )
    last_ok = {(r["service"], r["site"]): int(r["time"]) for r in good}
    views: dict[str, list[View]] = defaultdict(list)
    for r in rows:
        views[r["service"]].append(
            View(
                site=r["site"],
                district=r.get("district") or "",
                ok=bool(r["ok"]),
                ts=int(r["time"]),
                stage=r.get("stage"),
                detail=r.get("detail"),
                cert_days=r.get("cert_days"),
                total_ms=r.get("total_ms"),
                last_ok_ns=last_ok.get((r["service"], r["site"])),
            )
        )
    return views


def is_down(cloud_ok: bool | None, districts_ok: list[bool]) -> bool | None:
    """The rule itself: down when the cloud (if it probes) and most online districts fail;
    ``None`` when no vantage point has a say (unknown)."""
    if not districts_ok:
        return None if cloud_ok is None else not cloud_ok
    most_fail = 2 * districts_ok.count(False) > len(districts_ok)
    return most_fail and cloud_ok is not True


def judge(
    catalogue: Catalogue,
    views: Mapping[str, list[View]],
    sites: Mapping[str, SiteContact],
    *,
    aside: Mapping[str, frozenset[str]] | None = None,
) -> list[Observation]:
    """Every service's observations; pure (``views``: the latest probe per vantage). A
    district in ``aside`` for a service (its path in maintenance) has no vote on "down"; its
    own "unreachable from" observation stays (the evaluator keeps it quiet)."""
    offline = {site for site, contact in sites.items() if contact.offline}
    # Per site: the services it fails and those it reaches (online sites only).
    fails: dict[str, set[str]] = defaultdict(set)
    passes: dict[str, set[str]] = defaultdict(set)
    for name, vs in views.items():
        for v in vs:
            if v.site != CLOUD and v.site not in offline:
                (passes if v.ok else fails)[v.site].add(name)
    # A site failing every service it probes (two or more) while others reach them: its path.
    blind = {s for s, failed in fails.items() if not passes[s] and len(failed) >= 2}
    out: list[Observation] = []
    for check in catalogue.services:
        vs = views.get(check.name, [])
        cloud = next((v for v in vs if v.site == CLOUD), None)
        live = [v for v in vs if v.site != CLOUD and v.site not in offline]
        cut = sorted(v.site for v in vs if v.site in offline)
        failing = [v for v in live if not v.ok]
        paths = (aside or {}).get(check.name, frozenset())
        votes = [v.ok for v in live if v.district not in paths]
        down = bool(is_down(None if cloud is None else cloud.ok, votes))
        out.append(_down(check, cloud=cloud, live=live, failing=failing, cut=cut, down=down))
        if cloud is None and not live:
            continue
        for v in [*live, *([cloud] if cloud else [])]:
            if v.site in blind:
                continue
            bad = not v.ok and not down
            out.append(_degraded(check, v, bad=bad))
        out += _warnings(
            check, [*live, *([cloud] if cloud else []), *[v for v in vs if v.site in offline]]
        )
    for site in sorted(set(fails) | set(passes)):
        out.append(_blind(site, sites, fails[site], bad=site in blind))
    return out


def _obs(
    key: str,
    rule: str,
    title: str,
    severity: Severity,
    *,
    bad: bool | None,
    site: str,
    district: str,
    subject: str,
    since_ns: int | None,
    cause: str,
    details: dict[str, Any],
) -> Observation:
    verdict = Verdict.PENDING if bad is None else Verdict.BAD if bad else Verdict.GOOD
    return Observation(
        key=key, rule=rule, title=title, severity=severity, verdict=verdict, site=site,
        district=district, camera=None, subject=subject, since_ns=since_ns, cause=cause,
        details=details,
    )  # fmt: skip


def _down(
    check: ServiceCheck,
    *,
    cloud: View | None,
    live: list[View],
    failing: list[View],
    cut: list[str],
    down: bool,
) -> Observation:
    seen = [*live, *([cloud] if cloud else [])]
    cloud_fails = cloud is not None and not cloud.ok
    if not seen:
        bad, cause, since = None, "no fresh probe from any vantage point", None
    elif down:
        losers = [v for v in seen if not v.ok]
        first = losers[0]
        bad, cause = True, f"fails from the cloud and {len(failing)} of {len(live)} districts: "
        cause += f"{first.stage or 'probe'}: {first.detail or ''}".strip()
        since = max((v.last_ok_ns or 0) for v in losers) or min(v.ts for v in losers)
    else:
        bad, cause, since = (
            False,
            f"reachable ({len(seen) - len(failing)} of {len(seen)} pass)",
            None,
        )
    return _obs(
        f"service-down:{check.name}", "service_down", "service down",
        Severity.CRITICAL, bad=bad, site="", district="", subject=check.name, since_ns=since,
        cause=cause,
        details={
            "opd": check.opd,
            "failing": sorted(v.site for v in failing) + ([CLOUD] if cloud_fails else []),
            "cut_off": cut,
        },
    )  # fmt: skip


def _degraded(check: ServiceCheck, v: View, *, bad: bool) -> Observation:
    where = "from the cloud" if v.site == CLOUD else f"from {v.site}"
    cause = f"{where}: {v.stage or 'probe'}: {v.detail or ''}" if bad else "reachable"
    return _obs(
        f"service-degraded:{check.name}:{v.site}", "service_degraded",
        "service unreachable from a district", Severity.MAJOR, bad=bad,
        site="" if v.site == CLOUD else v.site, district=v.district, subject=check.name,
        since_ns=(v.last_ok_ns or v.ts) if bad else None, cause=cause.strip(),
        details={"opd": check.opd, "vantage": v.site},
    )  # fmt: skip


def _blind(
    site: str, sites: Mapping[str, SiteContact], failed: set[str], *, bad: bool
) -> Observation:
    contact = sites.get(site)
    return _obs(
        f"services-unreachable:{site}", "services_unreachable",
        "services unreachable from the site (its internet path)", Severity.MAJOR, bad=bad,
        site=site, district=contact.district if contact else "", subject=site, since_ns=None,
        cause=f"every service fails from here ({', '.join(sorted(failed))}) while others reach them"
        if bad else "reaches services",
        details={"services": sorted(failed)} if bad else {},
    )  # fmt: skip


def _warnings(check: ServiceCheck, seen: list[View]) -> list[Observation]:
    out = []
    days = [v.cert_days for v in seen if v.cert_days is not None]
    if days:
        soonest = min(days)
        out.append(
            _obs(
                f"service-cert:{check.name}",
                "service_cert",
                "service certificate expiring",
                Severity.WARNING,
                bad=soonest < check.tls_warn_days,
                site="",
                district="",
                subject=check.name,
                since_ns=None,
                cause=f"the certificate expires in {soonest:.1f} days",
                details={"opd": check.opd, "cert_days": round(soonest, 2)},
            )
        )
    times = [v.total_ms for v in seen if v.ok and v.total_ms is not None]
    if times:
        median = statistics.median(times)
        out.append(
            _obs(
                f"service-slow:{check.name}",
                "service_slow",
                "service answers slowly",
                Severity.WARNING,
                bad=median > check.max_latency_ms,
                site="",
                district="",
                subject=check.name,
                since_ns=None,
                cause=f"answers in {median:.0f} ms (limit {check.max_latency_ms:.0f} ms)",
                details={"opd": check.opd, "total_ms": round(median, 1)},
            )
        )
    return out
