"""Grafana dashboards as code (built with grafanalib)."""
