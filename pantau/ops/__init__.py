"""Operator tools: the development PKI and the broker's accounts."""
