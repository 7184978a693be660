"""panva's oidc-provider (npm, OpenID Certified) on a free loopback port: an identity provider
nobody here wrote, for the OpenID Connect login's tests. ``make setup`` installs it into
devtools/oidc/node_modules (``npm ci``); :func:`ensure_installed` does the same when missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx

from devtools.localsvc import ManagedProcess, ServiceError, free_port

HERE = Path(__file__).resolve().parent / "oidc"
NPM_TIMEOUT_S = 300


def ensure_installed() -> None:
    """Install the pinned oidc-provider (package-lock.json) unless it is there."""
    if (HERE / "node_modules" / "oidc-provider" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ServiceError("npm is missing: install nodejs and npm (make setup)")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=HERE,
        check=True,
        timeout=NPM_TIMEOUT_S,
        capture_output=True,
    )


class OidcProviderProcess(ManagedProcess):
    """node running devtools/oidc/provider.mjs."""

    @property
    def issuer(self) -> str:
        """The issuer URL (discovery at /.well-known/openid-configuration)."""
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        """True once the discovery document answers."""
        try:
            url = f"{self.issuer}/.well-known/openid-configuration"
            return httpx.get(url, timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False


def start_oidc_provider(
    workdir: Path,
    *,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    users: dict[str, object],
) -> OidcProviderProcess:
    """Start the provider with one client and ``users`` ({name: {password, claims}})."""
    ensure_installed()
    node = shutil.which("node")
    if node is None:
        raise ServiceError("node is missing: install nodejs (make setup)")
    port = free_port()
    config = workdir / "oidc-provider.json"
    config.write_text(
        json.dumps(
            {
                "port": port,
                "client": {"id": client_id, "secret": client_secret, "redirect_uri": redirect_uri},
                "users": users,
            }
        )
    )
    process = OidcProviderProcess(
        name="oidc-provider",
        argv=[node, str(HERE / "provider.mjs"), str(config)],
        port=port,
        workdir=workdir,
        log_path=workdir / "oidc-provider.log",
    )
    process.start()
    return process
