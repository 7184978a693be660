"""OpenID Connect login end to end against panva's certified oidc-provider (node, a free
loopback port): the browser's redirects followed by hand, the code exchanged, the ID token
verified; the person becomes a pantau principal from a local account or from claims."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from cloud.api.app import create_app
from cloud.auth.identity import Identity
from cloud.auth.principal import Role
from cloud.auth.settings import AuthSettings, OidcSettings
from cloud.influx import InfluxSettings
from cloud.webserver import bind_socket, serve_app
from devtools.oidcprovider import OidcProviderProcess, start_oidc_provider
from tests.auth import add_user, open_problem
from tests.helpers import async_wait_for

SECRET = "client-secret-for-tests"
USERS = {
    # A local account decides ayu's role and scope; her provider claims say nothing of pantau.
    "ayu": {"password": "ayu-password", "claims": {"name": "Ayu"}},
    # rudi exists only at the provider: his claims make him a supervisor of d2.
    "rudi": {
        "password": "rudi-password",
        "claims": {"pantau_role": "supervisor", "pantau_districts": ["d2"]},
    },
    # A claim asking for admin is capped at supervisor.
    "eko": {
        "password": "eko-password",
        "claims": {"pantau_role": "admin", "pantau_districts": "*"},
    },
    # Known to the provider, unknown to pantau.
    "tamu": {"password": "tamu-password", "claims": {}},
}


@dataclass
class Stack:
    url: str
    idp: OidcProviderProcess
    state_url: str


@pytest.fixture
def provider_port(tmp_path: Path) -> Iterator[tuple[int, OidcProviderProcess]]:
    sock = bind_socket("127.0.0.1", 0)
    api_port = sock.getsockname()[1]
    sock.close()
    idp = start_oidc_provider(
        tmp_path,
        client_id="pantau",
        client_secret=SECRET,
        redirect_uri=f"http://127.0.0.1:{api_port}/auth/oidc/callback",
        users=USERS,
    )
    try:
        yield api_port, idp
    finally:
        idp.stop()


@pytest.fixture
async def stack(
    tmp_path: Path, provider_port: tuple[int, OidcProviderProcess]
) -> AsyncIterator[Stack]:
    api_port, idp = provider_port
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    add_user(state_url, "ayu", Role.TECHNICIAN, ["d1"])  # no password: signs in through OIDC
    oidc = OidcSettings(
        issuer=idp.issuer,
        client_id="pantau",
        client_secret=SECRET,
        redirect_url=f"http://127.0.0.1:{api_port}/auth/oidc/callback",
        scopes="openid profile pantau",
        role_claim="pantau_role",
        districts_claim="pantau_districts",
    )
    app = create_app(
        influx=InfluxSettings(url="http://127.0.0.1:9", database="unused"),
        state_url=state_url,
        auth=AuthSettings(oidc=oidc),
    )
    sock = bind_socket("127.0.0.1", api_port)
    task = asyncio.create_task(serve_app(app, sock), name="oidc-api")
    url = f"http://127.0.0.1:{api_port}"

    async def up() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{url}/openapi.json")).status_code == 200
        return False

    try:
        await async_wait_for(up, timeout_s=10, what="API up")
        yield Stack(url, idp, state_url)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def through_provider(
    http: httpx.AsyncClient, stack: Stack, username: str, password: str
) -> httpx.Response:
    """Do what a browser does from 'Single sign-on' to pantau's callback; its answer."""
    answer = await http.get(f"{stack.url}/auth/oidc/login")
    assert answer.status_code == 303 and answer.headers["location"].startswith(stack.idp.issuer)
    for _ in range(20):
        location = urljoin(str(answer.url), answer.headers["location"])
        if location.startswith(f"{stack.url}/auth/oidc/callback"):
            return await http.get(location)
        answer = await http.get(location)
        if answer.status_code == 200 and 'name="password"' in answer.text:  # the login form
            path = urlsplit(location).path.rstrip("/") + "/login"
            answer = await http.post(
                f"{stack.idp.issuer}{path}", data={"username": username, "password": password}
            )
            if answer.status_code == 401:
                return answer
        assert answer.status_code in (302, 303), (answer.status_code, answer.text[:500])
    raise AssertionError("the provider never sent the browser back to pantau")


async def test_oidc_login_end_to_end(stack: Stack) -> None:
    """ayu signs in at the provider and is pantau's d1 technician (her local account): she
    reads d1's problem only and acknowledges it with the session's CSRF token."""
    d1 = open_problem(stack.state_url, "s1", "d1")
    open_problem(stack.state_url, "s2", "d2")
    async with httpx.AsyncClient(timeout=15) as browser:
        landed = await through_provider(browser, stack, "ayu", "ayu-password")
        assert landed.status_code == 200, landed.text
        assert 'url=/"' in landed.text
        cookie = landed.headers["set-cookie"].lower()
        assert "pantau_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        session = (await browser.get(f"{stack.url}/auth/session")).json()
        assert (session["username"], session["role"], session["districts"], session["via"]) == (
            "ayu",
            "technician",
            ["d1"],
            "oidc",
        )
        assert [p["id"] for p in (await browser.get(f"{stack.url}/api/problems")).json()] == [d1]
        acked = await browser.post(
            f"{stack.url}/api/problems/{d1}/ack",
            json={"comment": "on my way"},
            headers={"X-CSRF-Token": session["csrf_token"]},
        )
        assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "ayu"


async def test_oidc_claims_make_the_account_within_limits(stack: Stack) -> None:
    """Claims make rudi a d2 supervisor; eko's 'admin' claim gives a supervisor; a person
    pantau does not know is refused; a wrong password never comes back with a code."""
    async with httpx.AsyncClient(timeout=15) as browser:
        assert (await through_provider(browser, stack, "rudi", "rudi-password")).status_code == 200
        session = (await browser.get(f"{stack.url}/auth/session")).json()
        assert (session["role"], session["districts"]) == ("supervisor", ["d2"])
    async with httpx.AsyncClient(timeout=15) as browser:
        assert (await through_provider(browser, stack, "eko", "eko-password")).status_code == 200
        session = (await browser.get(f"{stack.url}/auth/session")).json()
        assert (session["role"], session["districts"]) == ("supervisor", None)
    async with httpx.AsyncClient(timeout=15) as browser:
        refused = await through_provider(browser, stack, "tamu", "tamu-password")
        assert refused.status_code == 403
        assert "no pantau account 'tamu'" in refused.json()["detail"]
        assert (await browser.get(f"{stack.url}/auth/session")).status_code == 401
    async with httpx.AsyncClient(timeout=15) as browser:
        wrong = await through_provider(browser, stack, "rudi", "not-his-password")
        assert wrong.status_code == 401 and wrong.url.host == "127.0.0.1"
        assert str(wrong.url).startswith(stack.idp.issuer)
    ids = Identity(stack.state_url)
    try:
        made = {u.username: (u.source, u.password_hash) for u in ids.accounts.all()}
    finally:
        ids.close()
    assert made == {"ayu": ("local", None), "rudi": ("oidc", None), "eko": ("oidc", None)}


async def test_a_forged_or_replayed_callback_opens_no_session(stack: Stack) -> None:
    """A callback whose state is not this browser's, or a code used twice: no session."""
    async with httpx.AsyncClient(timeout=15) as browser:
        answer = await browser.get(f"{stack.url}/auth/oidc/login")
        location = answer.headers["location"]
        state = parse_qs(urlsplit(location).query)["state"][0]
        forged = await browser.get(
            f"{stack.url}/auth/oidc/callback", params={"state": state + "x", "code": "abc"}
        )
        assert forged.status_code == 400
    async with httpx.AsyncClient(timeout=15) as browser:
        browser.follow_redirects = False
        answer = await browser.get(f"{stack.url}/auth/oidc/login")
        # Complete the login but keep the callback URL to replay it.
        for _ in range(20):
            location = urljoin(str(answer.url), answer.headers["location"])
            if location.startswith(f"{stack.url}/auth/oidc/callback"):
                break
            answer = await browser.get(location)
            if answer.status_code == 200 and 'name="password"' in answer.text:
                path = urlsplit(location).path.rstrip("/") + "/login"
                answer = await browser.post(
                    f"{stack.idp.issuer}{path}",
                    data={"username": "ayu", "password": "ayu-password"},
                )
        first = await browser.get(location)
        assert first.status_code == 200
        browser.cookies.clear()
        browser.cookies.set("pantau_oidc", parse_qs(urlsplit(location).query)["state"][0])
        again = await browser.get(location)
        assert again.status_code == 403 and "unknown or expired" in again.json()["detail"]
