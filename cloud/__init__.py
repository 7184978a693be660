"""The cloud side: MQTT ingest, InfluxDB sink and the HTTP API."""
