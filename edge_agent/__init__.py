"""The edge agent: probes cameras, reads cabinet sensors, stores and forwards readings."""
