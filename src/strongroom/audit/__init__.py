"""Audit: Azure AuditEvent records, hash-chained, written before the answer leaves.

`facts` is the hook handlers use, `event` builds records, `chain` seals and
checks them, `log` keeps the two sinks (audit.jsonl and a storage stream),
`writer` batches records into group commits, `verify` and `query` read them back.
"""

from strongroom.audit.log import AUDIT_FILE, STREAM, AuditLog, AuditSinkError
from strongroom.audit.writer import AuditWriter

__all__ = ["AUDIT_FILE", "STREAM", "AuditLog", "AuditSinkError", "AuditWriter"]
