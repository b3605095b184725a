"""The tamper-evident audit log (审计): SM3-chained entries with SM2-signed checkpoints."""

from stamping.audit.log import AuditConflict, AuditError, AuditLog, AuditReport, verify_audit
from stamping.audit.models import AuditCheckpoint, AuditEntry

__all__ = ["AuditCheckpoint", "AuditConflict", "AuditEntry", "AuditError", "AuditLog", "AuditReport", "verify_audit"]
