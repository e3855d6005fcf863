"""Records of what the service does on its own: key rotation, certificate renewal, purges, expiry events.

No request carries these changes, so no caller's identity can be recorded: they
are recorded as the service's own principal (`SERVICE_PRINCIPAL_ID`, the same
in every instance, which no token can carry). The background task that makes
them runs with a `ServiceChanges` commit guard (`strongroom.storage.guard`):
before each commit it writes one record, fsynced, so a change of the service's
is never committed without its record either, and a broken audit sink stops the
change (the scheduler retries it on its next pass).

The code that makes a change names it with `action(...)`; a commit made
outside any named action is recorded as "ServiceMaintenance".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from strongroom.audit.event import OBJECT_ID_CLAIM, azure_time
from strongroom.audit.log import AuditSinkError
from strongroom.audit.writer import AuditWriter
from strongroom.storage.guard import CommitRefused

# A fixed, documented id: the same in every instance; no principal of a directory can have it.
SERVICE_PRINCIPAL_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://strongroom.invalid/service-principal"))
CLIENT_INFO = "strongroom-scheduler"
WAIT_LIMIT = 30.0

_action: ContextVar[dict[str, Any] | None] = ContextVar("strongroom.service_action", default=None)


@contextlib.contextmanager
def action(operation: str, vault: Any, collection: str | None = None, name: str | None = None) -> Iterator[None]:
    """Name what the service is about to change: e.g. ("KeyRotate", vault, "keys", "k1")."""
    token = _action.set({"operationName": operation, "vault": vault, "collection": collection, "name": name})
    try:
        yield
    finally:
        _action.reset(token)


def expiry_operation(object_type: str, near: bool) -> str:
    """Azure's operation names for expiry notifications: SecretNearExpiryEventGridNotification, ..."""
    return f"{object_type.capitalize()}{'NearExpiry' if near else 'Expired'}EventGridNotification"


class ServiceChanges:
    """The commit guard of the scheduler's background work: one durable record before each commit."""

    def __init__(self, writer: AuditWriter, tenant_id: str, vault_url: Callable[[str], str]) -> None:
        self.writer = writer
        self.tenant_id = tenant_id
        self.vault_url = vault_url
        self._loop = asyncio.get_running_loop()

    def event(self) -> dict[str, Any]:
        found = _action.get() or {}
        vault = found.get("vault")
        object_url = None
        if vault is not None:
            object_url = self.vault_url(vault.name)
            if found.get("collection"):
                object_url += f"/{found['collection']}/{found['name']}"
        return {
            "time": azure_time(time.time()),
            "resourceId": (vault.resource_id if vault is not None else "").upper(),
            "operationName": found.get("operationName", "ServiceMaintenance"),
            "operationVersion": "",
            "category": "AuditEvent",
            "resultType": "Success",
            "resultSignature": "Started",
            "resultDescription": "",
            "durationMs": 0,
            "callerIpAddress": "",
            "correlationId": "",
            "identity": {"claim": {
                OBJECT_ID_CLAIM: SERVICE_PRINCIPAL_ID, "oid": SERVICE_PRINCIPAL_ID, "appid": SERVICE_PRINCIPAL_ID,
                "tid": self.tenant_id, "idtyp": "app",
            }},
            "properties": {
                "id": object_url, "clientInfo": CLIENT_INFO, "httpStatusCode": None, "requestUri": None,
                "auditStage": "service",
            },
        }

    async def before_commit_async(self) -> None:
        try:
            await self.writer.write(self.event(), durable=True)
        except AuditSinkError as exc:
            raise CommitRefused(f"the service's change was not made: its audit record could not be written ({exc})") from None

    def before_commit(self) -> None:
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        try:
            if on_loop:
                self.writer.write_now(self.event())
            else:
                future = asyncio.run_coroutine_threadsafe(self.writer.write(self.event(), durable=True), self._loop)
                future.result(WAIT_LIMIT)
        except (AuditSinkError, concurrent.futures.TimeoutError) as exc:
            raise CommitRefused(f"the service's change was not made: its audit record could not be written ({exc})") from None
