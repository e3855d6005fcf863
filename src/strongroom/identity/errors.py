"""Entra ID's error shape for the token endpoint."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone


@dataclass
class EntraError(Exception):
    status: int
    error: str
    code: int  # the AADSTS number
    description: str
    trace_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __str__(self) -> str:
        return f"AADSTS{self.code}: {self.description}"

    def body(self, correlation_id: str | None = None) -> dict:
        ts = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.description} Trace ID: {self.trace_id} "
                f"Correlation ID: {correlation_id or ''} Timestamp: {ts}"
            ),
            "error_codes": [self.code],
            "timestamp": ts,
            "trace_id": self.trace_id,
            "correlation_id": correlation_id or str(uuid.uuid4()),
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }
