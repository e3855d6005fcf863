"""Audit before answering: the response of an audited request starts only once its record is written.

Written means in the audit file for a read or a sign-in, and on disk (fsynced)
for a request that may have changed something (`changes_state`).

A request is audited when its handler called `strongroom.audit.facts.begin()`.
At `http.response.start` the middleware builds the AuditEvent and waits for the
group-commit writer; only then does the status line leave. Error answers are
held until their (small) body is complete, so the record can carry Azure's
resultDescription. If the record cannot be written, the client gets 503
ServiceUnavailable instead and none of the original response: fail closed, as
Vault does when no audit device can log.

A request that may change something (not GET or HEAD) also runs with a storage
commit guard (`strongroom.audit.intent`): its first commit waits until an intent
record is on disk, and is refused if it cannot be, so a broken sink refuses the
change itself, not only its answer.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from strongroom.audit import event as audit_event
from strongroom.audit.facts import SCOPE_KEY
from strongroom.audit.intent import AuditedChange
from strongroom.audit.writer import AuditSinkError, AuditWriter
from strongroom.barrier import guard
from strongroom.errors import Unavailable
from strongroom.server.errors import error_response

log = logging.getLogger("strongroom.audit")

MAX_HELD_BODY = 64 * 1024  # error bodies are small; a larger one is passed on undescribed
_LOG_EVERY = 5.0


def changes_state(scope, facts) -> bool:
    """Whether the request may have changed something, so its record must be on disk before the answer.

    Reads (GET, HEAD) and sign-ins (token requests, recorded as "Authentication")
    change nothing: their records are in the file before the answer and on disk
    within the next group commit (see `strongroom.audit.writer`).
    """
    return scope.get("method") not in ("GET", "HEAD") and facts.get("operationName") != "Authentication"


class AuditMiddleware:
    def __init__(self, app, writer: AuditWriter) -> None:
        self.app = app
        self.writer = writer
        self._last_error_log = 0.0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_wall = time.time()
        started = time.perf_counter()
        state = "start"  # start -> passing | holding -> passing | refused
        held_start: dict[str, Any] | None = None
        held_body: list[bytes] = []
        held_size = 0

        def intent() -> dict[str, Any] | None:
            facts = scope.get(SCOPE_KEY) or {}
            if facts.get("operationName") == "Authentication":
                return None  # a sign-in changes nothing of the caller's; what it stores is bookkeeping
            duration_ms = int((time.perf_counter() - started) * 1000)
            return audit_event.build_intent(facts, scope, started=started_wall, duration_ms=duration_ms)

        # A request that may change something commits only once its intent record is durable.
        change = AuditedChange(self.writer, intent) if scope.get("method") not in ("GET", "HEAD") else None

        async def record(status: int, description: str) -> bool:
            facts = scope[SCOPE_KEY]
            if change is not None and change.failure is not None:
                return False  # the change was refused for want of a record: so is the answer
            duration_ms = int((time.perf_counter() - started) * 1000)
            try:
                ev = audit_event.build(
                    facts, scope, status=status, started=started_wall, duration_ms=duration_ms, description=description
                )
                # With an intent on disk the change is covered: the outcome is written as a read's is.
                durable = changes_state(scope, facts) and not (change is not None and change.written)
                await self.writer.write(ev, durable=durable)
                return True
            except AuditSinkError as exc:
                self._log_failure(exc)
                return False
            except Exception as exc:  # a record that cannot be built or serialised is not written either
                self._log_failure(AuditSinkError(f"the audit record could not be built: {type(exc).__name__}"))
                return False

        async def refuse() -> None:
            err = Unavailable("ServiceUnavailable", "The audit log cannot be written, so the request was not answered. Retry later.")
            await error_response(err, scope)(scope, receive, send)  # in the shape of the plane the request reached

        async def audited_send(message) -> None:
            nonlocal state, held_start, held_size
            if state == "refused":
                return  # the original response is dropped
            if state == "passing":
                await send(message)
                return
            if message["type"] == "http.response.start":
                if change is not None and change.failure is not None:
                    state = "refused"  # whatever the handler made of the refused commit, the answer is the audit's 503
                    await refuse()
                    return
                facts = scope.get(SCOPE_KEY)
                if not facts or "operationName" not in facts:
                    state = "passing"
                    await send(message)
                    return
                status = message["status"]
                if status >= 400:
                    state, held_start = "holding", message
                    return
                if await record(status, ""):
                    state = "passing"
                    await send(message)
                else:
                    state = "refused"
                    await refuse()
                return
            if state == "holding" and message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                held_body.append(chunk)
                held_size += len(chunk)
                if message.get("more_body", False) and held_size <= MAX_HELD_BODY:
                    return
                assert held_start is not None
                body = b"".join(held_body)
                description = audit_event.error_message(body) if held_size <= MAX_HELD_BODY else ""
                if not await record(held_start["status"], description):
                    state = "refused"
                    await refuse()
                    return
                state = "passing"
                await send(held_start)
                await send({"type": "http.response.body", "body": body, "more_body": message.get("more_body", False)})
                return
            await send(message)

        if change is None:
            await self.app(scope, receive, audited_send)
            return
        token = guard.use(change)
        try:
            await self.app(scope, receive, audited_send)
        finally:
            guard.reset(token)

    def _log_failure(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= _LOG_EVERY:  # one line per burst, not one per request
            self._last_error_log = now
            log.error("audit record not written, answering 503: %s", exc)
