"""The tamper-evident audit trail: every write appends a row chaining the previous row's hash."""

from cloud.audit.chain import AuditRecord, Head, Verdict
from cloud.audit.events import AuditEvent
from cloud.audit.trail import AuditError, AuditTrail, Summary

__all__ = ["AuditError", "AuditEvent", "AuditRecord", "AuditTrail", "Head", "Summary", "Verdict"]
