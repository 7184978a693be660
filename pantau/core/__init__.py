"""The core both sides stand on: the wire contract, the MQTT seam, units, config loading and
service helpers. It imports nothing else of pantau (a test checks it)."""
