"""A load publisher for the benchmark: site-batched camera readings, as agents send them.

Runs as its own process (``python -m bench.publisher``) so the publishers' CPU is not
the collector's. It prints one JSON line when done: how many readings it published (all PUBACKed).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from pantau.core.contract import TopicKind, site_topic
from pantau.core.mqtt import BrokerAddress

MAX_INFLIGHT = 64
CAMERA_TEMPLATE = (
    '{{"camera":"c{cam}","ts":{ts},"up":true,"cause":"ok","latency_ms":12.345,"tcp_ms":1.234,'
    '"rtsp_ms":5.678,"snapshot_ms":5.432,"snapshot_bytes":48213,"rtsp_status":200}}'
)


def build_payload(site: str, base_ts: int, batch: int, cameras: int, msg: int) -> bytes:
    """A batch of ``batch`` camera readings; readings of one camera are 1 ns apart. ``msg`` is
    the message id an agent sends, so the collector publishes receipts as it does for agents."""
    readings = [
        CAMERA_TEMPLATE.format(cam=i % cameras + 1, ts=base_ts + i // cameras) for i in range(batch)
    ]
    return (
        f'{{"v":1,"site":"{site}","district":"bench","msg":{msg},"cameras":[{",".join(readings)}]}}'
    ).encode()


class _Allowance:
    """How many readings this publisher may have published so far, set by the bench."""

    def __init__(self, path: str) -> None:
        self._path = path

    def get(self) -> int:
        try:
            with open(self._path, "rb") as handle:
                return int(handle.read().strip() or 0)
        except (OSError, ValueError):
            return 0


def run(args: argparse.Namespace) -> dict[str, float]:
    """Publish until ``duration`` is over, at ``rate`` readings/s (0: as fast as acked)."""
    address = BrokerAddress.parse(args.mqtt)
    acked = threading.Semaphore(MAX_INFLIGHT)
    done = threading.Event()
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{args.site}", protocol=paho.MQTTv5
    )
    client.max_inflight_messages_set(MAX_INFLIGHT)
    client.on_publish = lambda *_a: acked.release()
    client.on_connect = lambda *_a: done.set()
    client.connect(address.host, address.port, keepalive=30)
    client.loop_start()
    if not done.wait(10):
        raise SystemExit(f"cannot connect to {args.mqtt}")
    topic = args.raw_topic or site_topic(args.site, TopicKind.READINGS)
    raw = b"x" * args.raw_bytes if args.raw_topic else None
    cameras = args.cameras
    # Each message advances every camera's clock so identities never repeat within a run.
    base_ts = args.start_ns
    step = args.batch // cameras + 1
    published = 0
    started = time.perf_counter()
    deadline = started + args.duration
    allowance = _Allowance(args.allowance_file) if args.allowance_file else None
    while time.perf_counter() < deadline:
        if allowance is not None:
            while published >= allowance.get() and time.perf_counter() < deadline:
                time.sleep(0.005)
        if args.rate > 0:
            due = started + published / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        acked.acquire()
        payload = raw or build_payload(args.site, base_ts, args.batch, cameras, published)
        client.publish(topic, payload, qos=1)
        base_ts += step
        published += args.batch
    for _ in range(MAX_INFLIGHT):  # wait for every PUBACK
        acked.acquire()
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return {"published": published, "seconds": elapsed}


def main() -> None:
    """Parse arguments, publish, print the result as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mqtt", required=True)
    parser.add_argument("--site", required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="readings/s; 0 = unlimited")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--cameras", type=int, default=64)
    parser.add_argument("--start-ns", type=int, required=True)
    parser.add_argument("--allowance-file", help="file holding this publisher's allowance")
    parser.add_argument("--raw-topic", help="publish raw messages here instead (broker ceiling)")
    parser.add_argument("--raw-bytes", type=int, default=200, help="size of a raw message")
    result = run(parser.parse_args())
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
