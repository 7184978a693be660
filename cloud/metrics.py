"""The collector's Prometheus metrics, in a registry owned by one collector instance."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cloud.schema import FUTURE_REJECTED


class CollectorMetrics:
    """Counters and gauges of one collector; exported at ``/metrics``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages_received = Counter(
            "pantau_messages_received", "MQTT messages received", registry=r
        )
        self.messages_rejected = Counter(
            "pantau_messages_rejected", "messages rejected, by reason", ["reason"], registry=r
        )
        self.receipts_sent = Counter(
            "pantau_receipts_sent",
            "receipts handed to the broker (one per site per batch)",
            registry=r,
        )
        self.receipts_unsent = Counter(
            "pantau_receipts_unsent",
            "receipts lost on the way out (their agents send the readings again)",
            registry=r,
        )
        self.future_rejected = Counter(
            FUTURE_REJECTED,  # also the InfluxDB measurement the collector copies it to
            "messages refused because a reading was stamped in the future (the site's clock "
            "runs ahead; its agent keeps the readings), by site",
            ["site"],
            registry=r,
        )
        self.budget_refused = Counter(
            "pantau_device_budget_refused",
            "device keys refused because their site was over its device budget, by site",
            ["site"],
            registry=r,
        )
        self.stale_wills = Counter(
            "pantau_stale_wills",
            "Last Wills of an older connection than the site's latest birth (late deliveries), "
            "stored before that birth",
            registry=r,
        )
        self.unknown_fields = Counter(
            "pantau_unknown_fields",
            "fields of a newer contract minor left out of stored batches",
            registry=r,
        )
        self.readings_written = Counter(
            "pantau_readings_written", "readings (points) written to InfluxDB", registry=r
        )
        self.batches_written = Counter(
            "pantau_batches_written", "successful /write calls", registry=r
        )
        self.write_failures = Counter(
            "pantau_write_failures", "failed /write attempts, by kind", ["kind"], registry=r
        )
        self.write_latency = Histogram(
            "pantau_write_latency_seconds",
            "duration of successful /write calls",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.pending_messages = Gauge(
            "pantau_pending_messages",
            "messages received but not yet acknowledged (waiting for a write)",
            registry=r,
        )
        self.pending_points = Gauge(
            "pantau_pending_points", "points waiting to be written", registry=r
        )
        self.influx_up = Gauge("pantau_influx_up", "1 if the last write succeeded", registry=r)
        self.mqtt_connected = Gauge(
            "pantau_mqtt_connected", "1 while connected to the broker", registry=r
        )

    def rejected_by_reason(self) -> dict[str, float]:
        """Current rejection counts keyed by reason."""
        return by_label(self.messages_rejected, "reason")


def by_label(counter: Counter, label: str) -> dict[str, float]:
    """A labelled counter's totals keyed by one label's values."""
    counts: dict[str, float] = {}
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                counts[sample.labels[label]] = sample.value
    return counts


def counter_value(counter: Counter) -> float:
    """The current total of an unlabelled counter."""
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                return sample.value
    return 0.0
