"""Remediation from the command center: signed commands, the automatic policy, their record."""
