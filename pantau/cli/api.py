"""``pantau api``: the HTTP API and the technician page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pantau.cli.common import fail
from pantau.cli.influx_options import (
    InfluxDbOpt,
    InfluxPasswordFileOpt,
    InfluxTokenFileOpt,
    InfluxUrlOpt,
    InfluxUserOpt,
    influx_from_cli,
)
from pantau.core.configfile import ConfigError, load_yaml_model
from pantau.core.paths import state_db_url
from pantau.core.service import configure_logging

LogLevel = Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR")]


def api(
    port: Annotated[int, typer.Option("--port", help="HTTP port")] = 8080,
    host: Annotated[str, typer.Option("--host", help="bind address")] = "127.0.0.1",
    influx: InfluxUrlOpt = None,
    database: InfluxDbOpt = None,
    influx_user: InfluxUserOpt = None,
    influx_password_file: InfluxPasswordFileOpt = None,
    influx_token_file: InfluxTokenFileOpt = None,
    influx_timeout: Annotated[
        float,
        typer.Option(
            "--influx-timeout",
            min=0.1,
            max=600,
            help="seconds to wait for one InfluxDB query; a slower one answers 504",
        ),
    ] = 10.0,
    state: Annotated[
        str,
        typer.Option(
            "--state",
            help="state database URL (sqlite:///FILE or postgresql://...); default: state.sqlite "
            "in PANTAU_DATA_DIR, /var/lib/pantau (root) or ~/.local/state/pantau",
        ),
    ] = "",
    public_read: Annotated[
        bool,
        typer.Option(
            "--public-read",
            help="answer reads without identity, as a viewer of every district (a wall "
            "display); writes still need a session or a personal token",
        ),
    ] = False,
    oidc_config: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--oidc-config",
            help="YAML of an OpenID Connect provider (issuer, client_id, client_secret, "
            "redirect_url, claims; see docs/operations.md); keep it readable by pantau only",
        ),
    ] = None,
    secure_cookies: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option(
            "--secure-cookies/--no-secure-cookies",
            help="mark the session cookie Secure (default: when the request came over https; "
            "say --secure-cookies behind a TLS-terminating proxy)",
        ),
    ] = None,
    lang: Annotated[
        str,
        typer.Option(
            "--lang", help="language before sign-in (login page): id (Bahasa Indonesia) or en"
        ),
    ] = "id",
    advance_approval_hours: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            "--advance-approval-hours",
            min=1,
            help="a technician's maintenance window entered at least this many hours before it "
            "starts counts without a supervisor's approval (default: every one needs it)",
        ),
    ] = None,
    services: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--services", help="the service catalogue (services.yaml): /api/services and /status"
        ),
    ] = None,
    remediation_config: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--remediation",
            help="YAML of remediation (broker, key_file; docs/problems.md): enables the page's "
            "and API's power-cycle, reboot and view acceptance; the key from key_file or "
            "PANTAU_COMMAND_KEY_FILE",
        ),
    ] = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) and the technician page; every request needs a
    session or a personal token (`pantau users`)."""
    import uvicorn  # noqa: PLC0415

    from cloud.api.app import create_app  # noqa: PLC0415
    from cloud.auth.settings import AuthSettings, OidcSettings  # noqa: PLC0415
    from cloud.maintenance_rules import MaintenancePolicy  # noqa: PLC0415
    from cloud.remediation.config import RemediationConfig  # noqa: PLC0415
    from cloud.remediation.sender import CommandKeyError, read_key  # noqa: PLC0415

    configure_logging(log_level)
    if lang not in ("id", "en"):
        raise fail(f"--lang {lang!r}: choose id or en")
    try:
        oidc = load_yaml_model(oidc_config, OidcSettings) if oidc_config else None
        remediation = (
            load_yaml_model(remediation_config, RemediationConfig) if remediation_config else None
        )
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if remediation is not None:
        key = remediation.key_path()
        if key is None:
            raise fail(
                f"{remediation_config}: no key_file and no PANTAU_COMMAND_KEY_FILE; create a key "
                "with 'pantau keys init --out DIR'"
            )
        try:
            read_key(key)  # a bad key stops the start, not the first power-cycle
        except CommandKeyError as exc:
            raise fail(str(exc)) from None
    auth = AuthSettings(public_read=public_read, oidc=oidc, cookie_secure=secure_cookies)
    settings = influx_from_cli(
        url=influx,
        database=database,
        user=influx_user,
        password_file=influx_password_file,
        token_file=influx_token_file,
        timeout_s=influx_timeout,
    )
    uvicorn.run(
        create_app(
            influx=settings,
            state_url=state or state_db_url(),
            auth=auth,
            lang=lang,
            maintenance_policy=MaintenancePolicy(advance_approval_h=advance_approval_hours),
            services_catalogue=services,
            remediation=remediation,
        ),
        host=host,
        port=port,
        log_level=log_level.lower(),
        access_log=False,
    )
