"""The paho client behind ``pantau.core.mqtt.MqttLink``, configured from ``LinkSettings``:
MQTT 5, credentials, TLS, the initial will, jittered reconnect backoff and flow limits."""

from __future__ import annotations

import random
import ssl

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from pantau.core.mqtt_types import LinkSettings


def paho_client(s: LinkSettings) -> tuple[paho.Client, ssl.SSLContext | None]:
    """A paho client for ``s`` (callbacks not set) and its TLS context, if any."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=s.client_id,
        protocol=paho.MQTTv5,
        manual_ack=s.manual_ack,
    )
    username = s.username or s.address.username
    password = s.password or s.address.password
    if username:
        client.username_pw_set(username, password)
    tls: ssl.SSLContext | None = None
    if s.address.tls:
        # Verifies the broker's certificate and host name against ca_file (or the system CAs).
        tls = ssl.create_default_context(cafile=s.ca_file)
        if s.cert_file:
            tls.load_cert_chain(s.cert_file, s.key_file)
        client.tls_set_context(tls)
    if s.will:
        client.will_set(s.will.topic, s.will.payload, qos=s.will.qos, retain=s.will.retain)
    # paho's backoff doubles from min to max without jitter; a random start per client spreads
    # a fleet's reconnects after a broker restart.
    jittered_min = max(0.05, s.reconnect_min_s * random.uniform(0.5, 1.5))
    # paho sleeps a float number of seconds; rounding to whole seconds made this constant.
    client.reconnect_delay_set(
        min_delay=jittered_min,  # type: ignore[arg-type]
        max_delay=int(s.reconnect_max_s),
    )
    client.max_inflight_messages_set(s.max_inflight_out)
    client.max_queued_messages_set(0)
    return client, tls
