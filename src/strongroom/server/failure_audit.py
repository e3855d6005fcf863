"""Audit records of repeated unauthenticated failures, aggregated so that a flood cannot flood the log.

Every failed authentication stays accounted for, but not with a record each: per
source address and reason, the first INDIVIDUAL failures in an INTERVAL are audited
as usual (each its own record, written by the audit middleware: an SDK's challenge
or a mistyped secret looks as it always did), and the ones that follow in that
interval are only counted. When the interval ends, one ordinary AuditEvent
describes them: the last such request's facts, a resultDescription that starts
with the count, and `properties.aggregatedCount`. A flood of 4,000 requests
without a token thus writes INDIVIDUAL + 1 records per source, reason and 10 seconds.

The records go through the audit writer like any other (`AuditWriter.write`);
the audit middleware skips a request whose facts were taken here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from strongroom.audit import event as audit_event
from strongroom.audit.facts import SCOPE_KEY
from strongroom.audit.writer import AuditWriter

log = logging.getLogger("strongroom.audit")

INTERVAL = 10.0
INDIVIDUAL = 20
MAX_KEYS = 10_000  # (source, reason) pairs tracked at once; past it, reasons of a source share one pair
# What of a request's ASGI scope a record is built from (audit.event.build).
_SCOPE_FIELDS = ("type", "method", "headers", "client", "scheme", "path", "raw_path", "query_string",
                 "extensions", "strongroom.request_id")


@dataclass
class _Pending:
    seen: int = 1  # failures in this interval, the individually recorded ones included
    count: int = 0  # of which counted only
    status: int = 0
    facts: dict[str, Any] | None = None
    scope: dict[str, Any] | None = None
    started: float = 0.0


class FailureAudit:
    def __init__(self, writer: AuditWriter | None, interval: float = INTERVAL) -> None:
        self.writer = writer
        self.interval = interval
        self._open: dict[tuple[str, str], _Pending] = {}
        self._tasks: set[asyncio.Task] = set()

    def note(self, scope: MutableMapping[str, Any], source: str, reason: str, status: int) -> None:
        """Account for one failed request: audited on its own (first of its interval) or counted."""
        if self.writer is None or SCOPE_KEY not in scope:
            return
        key = (source, reason[:80])
        if key not in self._open and len(self._open) >= MAX_KEYS:
            key = (source, "")
        pending = self._open.get(key)
        if pending is None:  # the first: its own record, and an interval opens
            self._open[key] = _Pending()
            asyncio.get_running_loop().call_later(self.interval, self._close, key)
            return
        pending.seen += 1
        if pending.seen <= INDIVIDUAL:
            return
        pending.count += 1
        pending.status = status
        pending.facts = scope.pop(SCOPE_KEY)  # the middleware writes no record for this request
        pending.scope = {k: scope[k] for k in _SCOPE_FIELDS if k in scope}
        pending.started = time.time()
        pending.facts["reason"] = reason

    def _close(self, key: tuple[str, str]) -> None:
        pending = self._open.pop(key, None)
        if pending is None or not pending.count or pending.facts is None or pending.scope is None:
            return
        description = (
            f"{pending.count} more failures of this kind from {key[0]} within {self.interval:g} s "
            f"(recorded once); the last: {pending.facts.get('reason', '')}"
        )
        ev = audit_event.build(pending.facts, pending.scope, status=pending.status, started=pending.started,
                               duration_ms=0, description=description)
        ev["properties"]["aggregatedCount"] = pending.count
        task = asyncio.get_running_loop().create_task(self._write(ev))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, ev: dict[str, Any]) -> None:
        assert self.writer is not None
        try:
            await self.writer.write(ev, durable=False)
        except Exception as exc:  # the writer logs and fails closed for requests; here there is no one to answer
            log.error("aggregated audit record not written: %s", type(exc).__name__)


_instance: FailureAudit | None = None


def failure_audit(writer: AuditWriter | None) -> FailureAudit:
    """This process's aggregator (made on first use, on the event loop)."""
    global _instance
    if _instance is None or _instance.writer is not writer:
        _instance = FailureAudit(writer)
    return _instance
