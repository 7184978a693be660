"""The e-government service catalogue: defined once in the cloud (YAML), published to agents,
probed from the cloud too (docs/services.md)."""
