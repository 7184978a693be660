"""One InfluxDB settings model for every role: the API, the problem rules and the report read an
InfluxDB that demands credentials (a user and password, or a token), with the secrets from the
environment or a file; without them InfluxDB refuses and they say so."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from cloud.api.app import create_app
from cloud.auth.settings import AuthSettings
from cloud.config import CollectorConfig
from cloud.influx import InfluxClient, InfluxQueryError
from cloud.influx_config import InfluxSettings, influx_settings, with_env
from cloud.problems.config import EvaluatorConfig
from cloud.problems.service import problems_service
from devtools.localsvc import InfluxProcess, free_port, make_influx
from tests.helpers import async_wait_for, serving

ADMIN, ADMIN_PW = "admin", "admin-pw"
READER, READER_PW = "reader", "reader-pw"
DB = "secured"
TOKEN = "token-of-a-2x-bucket"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxProcess]:
    """influxd with HTTP auth on: an admin, a database and a read-only user on it."""
    process = make_influx(tmp_path_factory.mktemp("influx-auth"), auth=True)
    process.start()
    try:
        for statement, auth in (
            (f"CREATE USER {ADMIN} WITH PASSWORD '{ADMIN_PW}' WITH ALL PRIVILEGES", None),
            (f"CREATE DATABASE {DB}", (ADMIN, ADMIN_PW)),
            (f"CREATE USER {READER} WITH PASSWORD '{READER_PW}'", (ADMIN, ADMIN_PW)),
            (f"GRANT READ ON {DB} TO {READER}", (ADMIN, ADMIN_PW)),
        ):
            answer = httpx.post(f"{process.url}/query", data={"q": statement}, auth=auth)
            assert answer.status_code == 200 and "error" not in answer.text, answer.text
        now = time.time_ns()
        # A camera probed just now; a site whose Last Will fired two minutes ago.
        body = (
            f'camera,camera=c1,district=d1,site=s1 up=1i,cause="ok",state="up" {now - 10**9}\n'
            f"agent,district=d1,site=s2 backlog=0i,dropped_total=0i,oldest_age_s=0.0 "
            f"{now - 180 * 10**9}\n"
            f"site,district=d1,site=s2 online=0i,lat=-3.8,lon=102.3 {now - 120 * 10**9}"
        )
        written = httpx.post(
            f"{process.url}/write", params={"db": DB}, content=body, auth=(ADMIN, ADMIN_PW)
        )
        assert written.status_code == 204, written.text
        yield process
    finally:
        process.stop()


def test_secured_influxd_refuses_anonymous_reads(secured: InfluxProcess) -> None:
    """The server really demands credentials, so the tests below prove something."""
    answer = httpx.post(f"{secured.url}/query", data={"q": "SHOW MEASUREMENTS", "db": DB})
    assert answer.status_code == 401


@pytest.mark.parametrize("with_credentials", [True, False])
async def test_api_reads_with_user_and_password(
    secured: InfluxProcess, tmp_path: Path, with_credentials: bool
) -> None:
    """The API, given a user and (from the environment) a password, lists the camera; without
    them it answers 503."""
    env = {"PANTAU_INFLUX_USER": READER, "PANTAU_INFLUX_PASSWORD": READER_PW}
    settings = influx_settings(
        env if with_credentials else {}, url=secured.url, database=DB, username=None
    )
    app = create_app(
        influx=settings,
        state_url=f"sqlite:///{tmp_path / 's.sqlite'}",
        auth=AuthSettings(public_read=True),
    )
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        answer = await http.get("/api/cameras")
    if with_credentials:
        assert answer.status_code == 200, answer.text
        assert [(c["camera"], c["status"]) for c in answer.json()] == [("c1", "up")]
    else:
        assert answer.status_code == 503


async def test_problems_read_with_a_password_file(secured: InfluxProcess, tmp_path: Path) -> None:
    """The problem rules, configured with a user and a password file, open the offline site's
    problem; with a wrong password they fail with InfluxDB's refusal."""
    secret = tmp_path / "influx-password"
    secret.write_text(READER_PW + "\n")
    section = {"url": secured.url, "database": DB, "username": READER, "password_file": secret}
    config = EvaluatorConfig.model_validate(
        {"influx": section, "state_url": f"sqlite:///{tmp_path / 's.sqlite'}"}
    )
    assert config.influx.password == READER_PW
    async with problems_service(config) as service:
        changes = await service.evaluator.evaluate(time.time_ns())
    assert "site:s2" in changes.opened

    secret.write_text("wrong")
    wrong = EvaluatorConfig.model_validate(
        {"influx": section, "state_url": f"sqlite:///{tmp_path / 't.sqlite'}"}
    )
    async with problems_service(wrong) as service:
        with pytest.raises(InfluxQueryError, match="401"):
            await service.evaluator.evaluate(time.time_ns())


def _report(
    secured: InfluxProcess, out: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    month = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=7)))
    return subprocess.run(
        [
            sys.executable, "-m", "pantau", "report", "--month", f"{month:%Y-%m}",
            "--influx", secured.url, "--database", DB, "--influx-user", READER,
            "--state", f"sqlite:///{out / 'state.sqlite'}", "--out", str(out),
        ],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **env},
    )  # fmt: skip


def test_report_reads_with_the_password_from_the_environment(
    secured: InfluxProcess, tmp_path: Path
) -> None:
    """`pantau report --influx-user reader` with PANTAU_INFLUX_PASSWORD writes the month's
    report; without the password it fails naming InfluxDB's 401."""
    done = _report(secured, tmp_path, {"PANTAU_INFLUX_PASSWORD": READER_PW})
    assert done.returncode == 0, done.stderr
    assert "1 cameras" in done.stdout
    assert "c1" in next(tmp_path.glob("availability-*.csv")).read_text()
    refused = _report(secured, tmp_path / "no", {"PANTAU_INFLUX_PASSWORD": ""})
    assert refused.returncode == 2
    assert "401" in refused.stderr


# --- a token: InfluxDB 2.x/3.x's v1 API takes "Authorization: Token <token>". influxd 1.x does
# not, and no 2.x server is installed here: a front that checks the token as 2.x does and hands
# the request to the secured influxd stands in for one.


def token_front(upstream: str) -> Any:
    """An ASGI app: ``Token TOKEN`` or 401, then the request as the admin to ``upstream``."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        if request.headers.get("authorization") != f"Token {TOKEN}":
            response = Response('{"code":"unauthorized"}', status_code=401)
        else:
            async with httpx.AsyncClient(auth=(ADMIN, ADMIN_PW)) as http:
                answer = await http.request(
                    request.method,
                    f"{upstream}{request.url.path}",
                    params=request.query_params,
                    content=await request.body(),
                    headers={"content-type": request.headers.get("content-type", "")},
                )
            response = Response(answer.content, status_code=answer.status_code)
        await response(scope, receive, send)

    return app


@pytest.fixture
async def token_url(secured: InfluxProcess) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(token_front(secured.url), port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve(), name="token-front")

    async def up() -> bool:
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"http://127.0.0.1:{port}/ping")).status_code == 401
        except httpx.HTTPError:
            return False

    try:
        await async_wait_for(up, timeout_s=10, what="token front up")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_api_and_problems_read_with_a_token(token_url: str, tmp_path: Path) -> None:
    """With PANTAU_INFLUX_TOKEN the API lists the camera and the rules open the site's problem
    through a token-checking InfluxDB; a wrong token is refused."""
    settings = influx_settings({"PANTAU_INFLUX_TOKEN": TOKEN}, url=token_url, database=DB)
    app = create_app(
        influx=settings,
        state_url=f"sqlite:///{tmp_path / 's.sqlite'}",
        auth=AuthSettings(public_read=True),
    )
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        answer = await http.get("/api/cameras")
    assert answer.status_code == 200, answer.text
    assert [c["camera"] for c in answer.json()] == ["c1"]
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    config = EvaluatorConfig.model_validate(
        {
            "influx": {"url": token_url, "database": DB, "token_file": token_file},
            "state_url": f"sqlite:///{tmp_path / 'p.sqlite'}",
        }
    )
    async with problems_service(config) as service:
        assert "site:s2" in (await service.evaluator.evaluate(time.time_ns())).opened
    async with InfluxClient(InfluxSettings(url=token_url, database=DB, token="wrong")) as client:
        with pytest.raises(InfluxQueryError, match="401"):
            await client.query("SHOW MEASUREMENTS")


# --- the model ---------------------------------------------------------------------------------


def test_environment_fills_only_what_is_unset() -> None:
    """PANTAU_INFLUX_* fill unset settings; given ones win; env credentials never join a token."""
    env = {
        "PANTAU_INFLUX_URL": "http://influx.example:8086",
        "PANTAU_INFLUX_DB": "fromenv",
        "PANTAU_INFLUX_USER": "u",
        "PANTAU_INFLUX_PASSWORD": "p",
    }
    filled = influx_settings(env, database="given", timeout_s=None)
    assert (filled.url, filled.database, filled.username, filled.password) == (
        "http://influx.example:8086",
        "given",
        "u",
        "p",
    )
    assert with_env(InfluxSettings(token="t"), env).username is None
    # The collector's section is the same model, and stays the collector's.
    collector = with_env(CollectorConfig().influx, env)
    assert (type(collector).__name__, collector.username, collector.create_database) == (
        "InfluxConfig",
        "u",
        True,
    )


def test_bad_settings_name_the_problem(tmp_path: Path) -> None:
    """Both credential kinds, a password without a user, credentials in the URL, an unreadable
    secret file: each refused with a message saying what to fix; secrets never in repr."""
    cases: list[tuple[dict[str, Any], str]] = [
        ({"username": "u", "password": "p", "token": "t"}, "not both"),
        ({"password": "p"}, "needs a username"),
        ({"url": "http://u:p@host:8086"}, "not the URL"),
        ({"url": "influx:8086"}, "must look like"),
        ({"username": "u", "password_file": tmp_path / "missing"}, "cannot read"),
    ]
    for given, message in cases:
        with pytest.raises(ValidationError, match=message):
            InfluxSettings.model_validate(given)
    assert "s3cret" not in repr(InfluxSettings(username="u", password="s3cret"))


def test_older_problems_config_keys_still_read() -> None:
    """A problems config with the older top-level ``influx_url`` and ``database`` still loads."""
    config = EvaluatorConfig.model_validate({"influx_url": "http://h:8086", "database": "d"})
    assert (config.influx.url, config.influx.database) == ("http://h:8086", "d")
