"""Passwords, sessions and tokens under attack: 100 wrong passwords in a minute lock the account
(and a flood from one address throttles it) without slowing anyone else; a stolen session cookie
without its CSRF token cannot write; expired, revoked and disabled credentials are refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cloud.api.app import create_app
from cloud.auth.identity import Identity
from cloud.auth.principal import Role
from cloud.auth.sessions import COOKIE
from cloud.auth.throttle import ThrottlePolicy
from cloud.influx import InfluxSettings
from devtools.localsvc import InfluxProcess
from tests.auth import add_user, bearer, open_problem, sign_in
from tests.helpers import serving

PASSWORD = "correct horse battery"
POLICY = ThrottlePolicy()  # the limits the API runs with


@dataclass
class Api:
    url: str
    state_url: str
    problem: int


@pytest.fixture
async def api(influxd: InfluxProcess, database: str, tmp_path: Path) -> AsyncIterator[Api]:
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    for name in ("siti", "budi"):
        add_user(state_url, name, Role.TECHNICIAN, ["d1"], password=PASSWORD)
    problem = open_problem(state_url, "s1", "d1")
    app = create_app(influx=InfluxSettings(url=influxd.url, database=database), state_url=state_url)
    async with serving(app) as url:
        yield Api(url, state_url, problem)


def client_from(url: str, address: str) -> httpx.AsyncClient:
    """A client whose connections come from ``address`` (any 127.x.y.z is this machine)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=url, transport=transport, timeout=30)


async def timed_login(http: httpx.AsyncClient, username: str, password: str) -> tuple[int, float]:
    started = time.perf_counter()
    answer = await http.post("/auth/login", json={"username": username, "password": password})
    return answer.status_code, time.perf_counter() - started


async def test_a_hundred_wrong_passwords_lock_the_account_not_the_others(api: Api) -> None:
    """100 guesses at siti in under a minute, ten at a time: at most the limit are checked
    (401, one at a time), the rest are refused at once (429 + Retry-After), siti's right
    password too; budi, from another address, signs in all along as fast as before."""
    async with (
        client_from(api.url, "127.0.0.1") as attacker,
        client_from(api.url, "127.0.0.2") as colleague,
    ):
        baseline = [await timed_login(colleague, "budi", PASSWORD) for _ in range(3)]
        assert {status for status, _ in baseline} == {200}
        normal_s = max(seconds for _, seconds in baseline)

        async def attack() -> list[httpx.Response]:
            answers: list[httpx.Response] = []
            for batch in range(10):  # ten volleys of ten parallel guesses
                answers += await asyncio.gather(
                    *(
                        attacker.post(
                            "/auth/login", json={"username": "siti", "password": f"guess{batch}{i}"}
                        )
                        for i in range(10)
                    )
                )
            return answers

        async def keep_signing_in() -> list[tuple[int, float]]:
            seen = []
            while not attack_task.done():
                seen.append(await timed_login(colleague, "budi", PASSWORD))
            return seen

        started = time.perf_counter()
        attack_task = asyncio.create_task(attack())
        during = await keep_signing_in()
        answers = await attack_task
        attack_s = time.perf_counter() - started

        assert attack_s < 60, f"the attack took {attack_s:.1f} s, not within a minute"
        statuses = [a.status_code for a in answers]
        assert set(statuses) == {401, 429}
        assert statuses.count(401) <= POLICY.account_attempts
        assert statuses.count(429) >= 100 - POLICY.account_attempts
        locked = next(a for a in answers if a.status_code == 429)
        assert int(locked.headers["retry-after"]) > 0
        assert "too many failed logins" in locked.json()["detail"]
        # Locked means locked: the right password from the attacker's address is refused too...
        assert (await timed_login(attacker, "siti", PASSWORD))[0] == 429
        # ...while budi was never refused, nor slowed down.
        assert during and {status for status, _ in during} == {200}
        slowest = max(seconds for _, seconds in during)
        assert slowest < max(1.0, 5 * normal_s), (slowest, normal_s)
        print(f"budi's login: {normal_s:.3f} s before, at most {slowest:.3f} s during the attack")
        # The lock is in the state database, and an admin lifts it (pantau users enable).
        ids = Identity(api.state_url)
        ids.throttle.unlock("siti")
        ids.close()
        async with client_from(api.url, "127.0.0.5") as elsewhere:
            assert (await timed_login(elsewhere, "siti", PASSWORD))[0] == 200


async def test_a_flood_from_one_address_is_throttled_there_only(api: Api) -> None:
    """Guesses spread over many names stay under each account's limit, so the address limit
    stops them; a right password from that address then waits too, elsewhere it does not."""
    async with (
        client_from(api.url, "127.0.0.3") as sprayer,
        client_from(api.url, "127.0.0.4") as colleague,
    ):
        statuses = []
        for n in range(POLICY.address_attempts + 10):
            name = f"user{n % 20}"  # each name gets fewer guesses than the account limit
            statuses.append((await timed_login(sprayer, name, "wrong-password"))[0])
        assert statuses[: POLICY.address_attempts] == [401] * POLICY.address_attempts
        assert set(statuses[POLICY.address_attempts :]) == {429}
        assert (await timed_login(sprayer, "budi", PASSWORD))[0] == 429
        assert (await timed_login(colleague, "budi", PASSWORD))[0] == 200


async def test_a_stolen_cookie_without_the_csrf_token_cannot_write(api: Api) -> None:
    """The cookie is HttpOnly and SameSite=Strict; replayed alone it reads but cannot write;
    with a wrong CSRF token neither; with the page's token it can; after logout nothing."""
    async with httpx.AsyncClient(base_url=api.url) as victim:
        csrf = await sign_in(victim, "siti", PASSWORD)
        login = await victim.post("/auth/login", json={"username": "siti", "password": PASSWORD})
        set_cookie = login.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie
        assert "path=/" in set_cookie
        cookie = victim.cookies[COOKIE]
        csrf = login.json()["csrf_token"]
        assert csrf and csrf not in cookie
        session = (await victim.get("/auth/session")).json()
        assert (session["username"], session["csrf_token"]) == ("siti", csrf)

        async with httpx.AsyncClient(base_url=api.url, cookies={COOKIE: cookie}) as thief:
            assert (await thief.get("/api/problems")).status_code == 200
            ack = f"/api/problems/{api.problem}/ack"
            for headers in ({}, {"X-CSRF-Token": "guess"}, {"X-CSRF-Token": csrf[:-1]}):
                stolen = await thief.post(ack, json={}, headers=headers)
                assert stolen.status_code == 403, headers
                assert "X-CSRF-Token" in stolen.json()["detail"]
                window = await thief.post(
                    "/api/maintenance",
                    headers=headers,
                    json={
                        "district": "d1",
                        "start": "2027-01-01T00:00:00Z",
                        "end": "2027-01-01T01:00:00Z",
                        "reason": "x",
                    },
                )
                assert window.status_code == 403
            listed = (await thief.get("/api/problems")).json()
            assert listed[0]["state"] == "open"

        # The page's own request, with the token it read from /auth/session, writes.
        acked = await victim.post(
            f"/api/problems/{api.problem}/ack", json={}, headers={"X-CSRF-Token": csrf}
        )
        assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "siti"
        assert (await victim.post("/auth/logout")).status_code == 204
        async with httpx.AsyncClient(base_url=api.url, cookies={COOKIE: cookie}) as thief:
            assert (await thief.get("/api/problems")).status_code == 401


async def test_expired_revoked_and_disabled_credentials_are_refused(api: Api) -> None:
    """A live token reads; expired, revoked, wrong-secret and malformed ones get 401; disabling
    the account stops its tokens and sessions at once."""
    ids = Identity(api.state_url)
    try:
        siti = ids.accounts.require("siti")
        now = time.time_ns()
        live, _ = ids.tokens.create(siti.id, name="wall", expires_ns=now + 3600 * 10**9)
        expired, _ = ids.tokens.create(siti.id, name="old", expires_ns=now - 1)
        revoked, info = ids.tokens.create(siti.id, name="lost", expires_ns=now + 3600 * 10**9)
        assert ids.tokens.revoke(info.id)
    finally:
        ids.close()
    wrong_secret = live[:-4] + ("AAAA" if not live.endswith("AAAA") else "BBBB")
    async with httpx.AsyncClient(base_url=api.url) as http:
        assert (await http.get("/api/problems", headers=bearer(live))).status_code == 200
        for token in (expired, revoked, wrong_secret, "pantau_x", "nonsense"):
            answer = await http.get("/api/problems", headers=bearer(token))
            assert answer.status_code == 401, token
            assert "expired or revoked" in answer.json()["detail"]
        csrf = await sign_in(http, "siti", PASSWORD)
        assert (await http.get("/auth/session")).status_code == 200

        ids = Identity(api.state_url)
        ids.accounts.set_disabled("siti", disabled=True)
        ids.close()
        assert (await http.get("/api/problems", headers=bearer(live))).status_code == 401
        assert (await http.get("/auth/session")).status_code == 401
        write = await http.post(
            f"/api/problems/{api.problem}/ack", json={}, headers={"X-CSRF-Token": csrf}
        )
        assert write.status_code == 401
        again = await http.post("/auth/login", json={"username": "siti", "password": PASSWORD})
        assert again.status_code == 401
