"""The MQTT seam's value types: where the broker is, how to connect, what arrives, what fails."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from pantau.core.contract import PublishTopic


class MqttError(Exception):
    """Root of this module's errors."""


class NotConnectedError(MqttError):
    """Raised by ``publish``/``publish_nowait`` while the link has no broker connection, and set
    on the futures of publishes still unacknowledged when the link closes."""


class FatalConnectError(MqttError):
    """The link cannot work without a local fix: the broker's certificate is not trusted, or it
    refused a subscription (``MqttLink.raise_on_failure``). Refused credentials are not fatal:
    the link keeps retrying, slowly and loudly, while an operator fixes the broker's accounts;
    only ``wait_connected`` raises this for them, to a caller that needs a connection now."""


@dataclass(frozen=True, kw_only=True)
class BrokerAddress:
    """Where the broker is, parsed from ``mqtt://[user:pass@]host[:port]`` or ``mqtts://...``."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse a broker URL; raise ``ValueError`` naming the problem."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError(f"broker URL {url!r} has no host")
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


@dataclass(frozen=True, kw_only=True)
class Will:
    """A Last Will the broker publishes when the connection drops without DISCONNECT."""

    topic: PublishTopic
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, kw_only=True)
class LinkSettings:
    """How a link connects. Credentials given here override those in the URL."""

    address: BrokerAddress
    client_id: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    keepalive_s: int = 30
    clean_start: bool = True
    session_expiry_s: int = 0
    receive_maximum: int = 1000
    max_inflight_out: int = 100
    manual_ack: bool = False
    will: Will | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    max_packet_bytes: int | None = None  # told to the broker: larger messages are not sent to us


@dataclass(frozen=True, slots=True)
class Message:
    """A received message. ``generation`` identifies the connection it arrived on: a manual ack
    of a message from an earlier connection is skipped (the resumed session redelivers it)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    generation: int


def tls_verify_error(
    context: ssl.SSLContext, host: str, port: int, timeout_s: float = 5.0
) -> str | None:
    """The certificate verification error of a TLS handshake with ``host:port``, if any."""
    try:
        with (
            socket.create_connection((host, port), timeout=timeout_s) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            return None
    except ssl.SSLCertVerificationError as exc:
        return str(exc.verify_message or exc)
    except (OSError, ssl.SSLError):
        return None  # unreachable or another TLS failure: retrying may help
