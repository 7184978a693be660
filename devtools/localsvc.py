"""Start real mosquitto and influxd processes on free loopback ports with their data in a temp dir.

Used by ``pantau demo``/``simulate``/``chaos``/``bench`` and by the test fixtures. Each service can
be stopped, killed and restarted on the same port and data directory to inject faults.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import httpx

from devtools.processes import kill_popen, stop_popen

START_TIMEOUT_S = 30.0


class ServiceError(Exception):
    """A local service could not be found or started."""


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(name: str, *extra_dirs: str) -> str:
    """Locate ``name`` on PATH or in ``/usr/sbin``; raise with the install hint if missing."""
    found = shutil.which(name, path=":".join([*extra_dirs, "/usr/sbin", "/usr/bin", "/sbin"]))
    found = found or shutil.which(name)
    if not found:
        raise ServiceError(
            f"{name} not found. Run `make setup` (installs the Debian packages mosquitto and "
            "influxdb) or start the services yourself and pass --mqtt/--influx URLs "
            "(deploy/docker-compose.yml has both)."
        )
    return found


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ManagedProcess:
    """A service process we own: start, stop (SIGTERM), kill (SIGKILL), restart."""

    name: str
    argv: list[str]
    port: int
    workdir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def start(self) -> None:
        """Start and wait until the service answers."""
        if self.process and self.process.poll() is None:
            return
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise ServiceError(f"{self.name} exited with {self.process.returncode}:\n{tail}")
            if self.ready():
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceError(f"{self.name} did not become ready on port {self.port}")

    def ready(self) -> bool:
        """True once the service accepts requests."""
        return _port_open(self.port)

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop gracefully (``stop_signal`` to the server, which stops its own workers), killing
        its whole process group if anything of it lingers."""
        stop_popen(self.process, timeout_s, sig=self.stop_signal, whole_group=False)

    def kill(self) -> None:
        """SIGKILL the server and its process group: no chance to flush anything."""
        kill_popen(self.process)

    def restart(self) -> None:
        """Stop and start again on the same port and data."""
        self.stop()
        self.start()


class InfluxProcess(ManagedProcess):
    """influxd (1.x) with a generated config."""

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        """True once ``/ping`` answers 204."""
        try:
            return httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204
        except httpx.HTTPError:
            return False


class MosquittoProcess(ManagedProcess):
    """mosquitto with a generated config."""

    def reload(self) -> None:
        """SIGHUP: mosquitto re-reads its password and ACL files."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)

    @property
    def url(self) -> str:
        """Broker URL."""
        return f"mqtt://127.0.0.1:{self.port}"


DYNSEC_PLUGIN = "mosquitto_dynamic_security.so"
# Where distributions put the plugin (Debian: the multiarch lib dir).
DYNSEC_PLUGIN_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib",
    "/usr/local/lib",
    "/usr/lib64",
)
BROKER_MAX_PACKET_BYTES = 262_144 + 4_096  # the collector's payload limit plus MQTT overhead


def dynsec_plugin() -> Path:
    """Path of mosquitto's dynamic security plugin, or an error saying how to get it."""
    for directory in DYNSEC_PLUGIN_DIRS:
        candidate = Path(directory) / DYNSEC_PLUGIN
        if candidate.exists():
            return candidate
    raise ServiceError(
        f"{DYNSEC_PLUGIN} not found in {', '.join(DYNSEC_PLUGIN_DIRS)}; it ships with mosquitto "
        ">= 2.0 (Debian: apt-get install mosquitto)"
    )


@dataclass(frozen=True, kw_only=True)
class BrokerSecurity:
    """Accounts for a generated broker: the dynamic security plugin on every listener, and TLS
    listeners when a certificate is given (see deploy/mosquitto/mosquitto.conf)."""

    dynsec_file: Path
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls_port: int | None = None  # TLS with user name and password
    mtls_port: int | None = None  # TLS with client certificates (CN = site id = user name)
    max_packet_bytes: int = BROKER_MAX_PACKET_BYTES

    def config(self) -> str:
        """The mosquitto.conf lines."""
        lines = [
            "allow_anonymous false",
            f"plugin {dynsec_plugin()}",
            f"plugin_opt_config_file {self.dynsec_file}",
            f"max_packet_size {self.max_packet_bytes}",
        ]
        tls = f"cafile {self.ca_file}\ncertfile {self.cert_file}\nkeyfile {self.key_file}\n"
        if self.tls_port:
            lines += [f"listener {self.tls_port} 127.0.0.1", tls + "require_certificate false"]
        if self.mtls_port:
            # Certificate clients skip the plugin's password check, and with it its client id
            # binding: their client id is forced to their certificate's CN (the site id).
            lines += [
                f"listener {self.mtls_port} 127.0.0.1",
                tls + "require_certificate true\nuse_identity_as_username true\n"
                "use_username_as_clientid true",
            ]
        return "\n".join(lines)


def mosquitto_config(
    port: int,
    data_dir: Path,
    *,
    extra: str = "",
    security: BrokerSecurity | None = None,
    user: str | None = None,
) -> str:
    """A mosquitto.conf for a loopback test/demo broker (anonymous allowed unless secured)."""
    # Started as root, mosquitto switches to the user "mosquitto", which cannot write our temp
    # dir: its persistence file and log would silently fail. Stay the user that started it.
    return f"""# generated by pantau
user {user or getpass.getuser()}
listener {port} 127.0.0.1
{security.config() if security else "allow_anonymous true"}
persistence true
persistence_location {data_dir}/
autosave_interval 5
# QoS 1 messages queued for a subscriber that is slow or away (our collector during an InfluxDB
# outage): mosquitto's default of 1000 silently drops beyond that.
max_queued_messages 1000000
max_queued_bytes 2000000000
# 0 = leave the in-flight window to each MQTT 5 client's Receive Maximum.
max_inflight_messages 0
log_dest file {data_dir}/mosquitto.log
log_type error
log_type warning
log_type notice
{extra}
"""


def influx_config(http_port: int, rpc_port: int, data_dir: Path, *, auth: bool = False) -> str:
    """An influxd 1.x config for a loopback test/demo database (``auth``: HTTP authentication on;
    until the first admin user exists, creating it is the one statement allowed without one)."""
    return f"""# generated by pantau
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{data_dir}/meta"
  logging-enabled = false
[data]
  dir = "{data_dir}/data"
  wal-dir = "{data_dir}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
  # Idle data goes from the WAL into compressed TSM files soon (the fleet bench measures disk).
  cache-snapshot-write-cold-duration = "3s"
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = {"true" if auth else "false"}
  log-enabled = false
  max-body-size = 0
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
"""


def make_mosquitto(
    base: Path,
    *,
    port: int | None = None,
    extra: str = "",
    security: BrokerSecurity | None = None,
    user: str | None = None,
) -> MosquittoProcess:
    """Prepare (not start) a mosquitto in ``base/mosquitto``, running as ``user`` if given (its
    data directory is then handed to that user, as a packaged broker's would be)."""
    binary = find_binary("mosquitto")
    data = base / "mosquitto"
    data.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = data / "mosquitto.conf"
    conf.write_text(mosquitto_config(port, data, extra=extra, security=security, user=user))
    if user:
        shutil.chown(data, user)
    return MosquittoProcess("mosquitto", [binary, "-c", str(conf)], port, data, data / "stdout.log")


class PostgresProcess(ManagedProcess):
    """A PostgreSQL server of our own (trust auth on loopback), for the shared state database."""

    # Fast shutdown: open sessions are ended, not waited for.
    stop_signal: ClassVar[signal.Signals] = signal.SIGINT

    @property
    def url(self) -> str:
        """The server's URL (database ``postgres``)."""
        return f"postgresql://pantau@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str) -> str:
        """Create database ``name``; return its URL."""
        subprocess.run(
            [
                *self._as_owner(),
                str(postgres_bin_dir() / "psql"),
                "-h", "127.0.0.1", "-p", str(self.port), "-U", "pantau", "-d", "postgres",
                "-v", "ON_ERROR_STOP=1", "-q", "-c", f'CREATE DATABASE "{name}"',
            ],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        return f"postgresql://pantau@127.0.0.1:{self.port}/{name}"

    def _as_owner(self) -> list[str]:
        return _postgres_owner()


def _postgres_owner() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the ``postgres`` user."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]


def postgres_bin_dir() -> Path:
    """Where Debian (or the PATH) has PostgreSQL's server binaries."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if found:
        return found[-1].parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    raise ServiceError(
        "PostgreSQL server not found; install it (Debian: apt-get install postgresql)"
    )


def make_postgres(base: Path, *, port: int | None = None) -> PostgresProcess:
    """Prepare (not start) a PostgreSQL in ``base/postgres``: initdb'd, trust auth on loopback.

    As root the data directory belongs to ``postgres`` and ``base`` must be enterable by it.
    """
    bin_dir = postgres_bin_dir()
    data = base / "postgres"
    data.mkdir(parents=True, exist_ok=True)
    owner = _postgres_owner()
    if owner:
        shutil.chown(data, "postgres", "postgres")
    port = port or free_port()
    subprocess.run(
        [*owner, str(bin_dir / "initdb"), "-D", str(data / "db"), "-U", "pantau",
         "--auth=trust", "--no-sync", "-E", "UTF8"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    argv = [
        *owner, str(bin_dir / "postgres"), "-D", str(data / "db"), "-h", "127.0.0.1",
        "-p", str(port), "-k", str(data),
    ]  # fmt: skip
    return PostgresProcess("postgres", argv, port, data, data / "stdout.log")


def make_influx(base: Path, *, port: int | None = None, auth: bool = False) -> InfluxProcess:
    """Prepare (not start) an influxd in ``base/influxdb`` (``auth``: see ``influx_config``)."""
    binary = find_binary("influxd")
    data = base / "influxdb"
    data.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = data / "influxdb.conf"
    conf.write_text(influx_config(port, free_port(), data, auth=auth))
    return InfluxProcess("influxd", [binary, "-config", str(conf)], port, data, data / "stdout.log")
