"""Two of each cloud role on one real PostgreSQL: two problems services (one dying mid-run with
notifications claimed and unsent) open each problem once and deliver each message exactly once;
two API instances share maintenance windows and problems, and one survives the other."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx

from cloud.api.app import create_app
from cloud.influx import InfluxClient, InfluxSettings
from cloud.problems.config import EvaluatorConfig
from cloud.problems.service import problems_service
from cloud.problems.store import ProblemStore
from devtools.localsvc import InfluxProcess
from tests.auth import add_user, bearer
from tests.helpers import serving
from tests.history import History, S
from tests.receiver import receiver

MIN = 60


async def test_two_problems_services_one_killed_open_once_and_deliver_once(
    influxd: InfluxProcess, database: str, state_db: str
) -> None:
    """Camera c1 down 5-10 min and c2 down 12-18 min; services A and B evaluate and deliver side
    by side until B dies at 7:00 right after claiming a notification it never sends. A alone
    carries on: two problems, each opened once; four messages, each delivered exactly once."""
    t0 = (time.time_ns() - 3 * 3600 * S) // (10 * S) * (10 * S)
    h = History(t0)
    h.collector(0, 30 * MIN)
    h.site("s1", "d1", 0, 30 * MIN)
    h.camera("s1", "d1", "c1", start_s=0, end_s=30 * MIN, up=lambda t: not 5 * MIN <= t < 10 * MIN)
    h.camera("s1", "d1", "c2", start_s=0, end_s=30 * MIN, up=lambda t: not 12 * MIN <= t < 18 * MIN)
    with receiver() as hook:
        config = EvaluatorConfig.model_validate(
            {
                "influx_url": influxd.url,
                "database": database,
                "state_url": state_db,
                "rules": {"thresholds": []},
                "notify": {"targets": [{"type": "webhook", "name": "ops", "url": hook.url}]},
            }
        )
        async with InfluxClient(InfluxSettings(url=influxd.url, database=database)) as influx:
            await h.write(influx)
        async with problems_service(config) as a, problems_service(config) as b:
            alive = [a, b]
            for t in range(0, 30 * MIN, 20):
                now = h.at(t)
                await asyncio.gather(*(s.evaluator.evaluate(now) for s in alive))
                if t == 7 * MIN:  # B claims the open message of c1's problem, then dies
                    claimed = await asyncio.to_thread(
                        b.store.claim, ["ops"], now_ns=now, lease_ns=30 * S
                    )
                    alive = [a]
                for s in alive:
                    await s.notifier.deliver_due(now)
        assert claimed, "B died holding nothing: the test did not test the lease"
        store = ProblemStore(state_db)
        try:
            problems = sorted((p.key, p.state) for p in store.find())
        finally:
            store.close()
        assert problems == [("camera:s1/c1", "resolved"), ("camera:s1/c2", "resolved")]
        events = [(r.body["event"], r.body["problem"]["key"]) for r in hook.requests]
        assert Counter(events) == {
            ("open", "camera:s1/c1"): 1,
            ("resolve", "camera:s1/c1"): 1,
            ("open", "camera:s1/c2"): 1,
            ("resolve", "camera:s1/c2"): 1,
        }
        keys = [r.headers["Idempotency-Key"] for r in hook.requests]
        assert len(set(keys)) == 4


async def test_two_api_instances_share_postgresql_and_one_survives_the_other(
    influxd: InfluxProcess, database: str, state_db: str, tmp_path: Path
) -> None:
    """A maintenance window written through API A is listed by API B; with A gone, B still
    writes and reads."""
    settings = InfluxSettings(url=influxd.url, database=database)
    auth = bearer(add_user(state_db, "tech", "technician"))
    app_a = create_app(influx=settings, state_url=state_db)
    app_b = create_app(influx=settings, state_url=state_db)
    # Planned a day ahead: a technician may not enter a window that already began.
    ahead = time.time() + 86400
    window = {
        "site": "s1",
        "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ahead)),
        "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ahead + 7200)),
        "reason": "pole replaced",
    }
    async with serving(app_b) as url_b, httpx.AsyncClient(timeout=10, headers=auth) as http:
        async with serving(app_a) as url_a:
            created = await http.post(f"{url_a}/api/maintenance", json=window, headers=auth)
            assert created.status_code == 201, created.text
            listed = (await http.get(f"{url_b}/api/maintenance")).json()
            assert [w["reason"] for w in listed] == ["pole replaced"]
        # A is gone; B carries on alone.
        second = await http.post(
            f"{url_b}/api/maintenance", json={**window, "reason": "lens cleaned"}, headers=auth
        )
        assert second.status_code == 201, second.text
        reasons = sorted(w["reason"] for w in (await http.get(f"{url_b}/api/maintenance")).json())
        assert reasons == ["lens cleaned", "pole replaced"]
        assert (await http.get(f"{url_b}/api/problems")).status_code == 200
