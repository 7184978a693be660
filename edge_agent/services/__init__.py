"""Probes of e-government services from the cloud's catalogue (docs/services.md)."""
