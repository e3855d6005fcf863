"""The intent record: a change's audit record is on disk before the change is committed.

A request that may change something (PUT, POST, PATCH, DELETE) runs with an
`AuditedChange` as its storage commit guard (`strongroom.storage.guard`). Its
first commit waits until an intent record (`properties.auditStage: "intent"`,
`resultType: "Started"`) is fsynced to the audit file; if that record cannot be
written the commit is refused (CommitRefused, a StorageError) and nothing
changes. The outcome record follows when the answer starts, as for every
request, and carries the same `properties.requestId`.

So no crash and no sink failure can leave a committed change without a record:
either the intent is on disk and the change may follow, or neither exists. A
crash (or a sink failure) after the commit leaves an intent without an outcome,
which `strongroom audit verify` lists. The intent takes the fsync the outcome
used to take (the outcome of such a request is then written like a read's), so
a change still costs one audit fsync, shared by group commit; reads never get one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any

from strongroom.audit.log import AuditSinkError
from strongroom.audit.writer import AuditWriter
from strongroom.storage.guard import CommitRefused

INTENT_STAGE = "intent"
WAIT_LIMIT = 30.0  # a thread never waits for ever on a loop that is shutting down


class AuditedChange:
    """The commit guard of one request (or one scheduler action): its intent record first, once."""

    def __init__(self, writer: AuditWriter, build: Callable[[], dict[str, Any] | None]) -> None:
        self.writer = writer
        self._build = build  # called at the first commit, when the handler knows the operation and caller
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Future | None = None
        self.written = False  # an intent record is durable
        self.unguarded = False  # nothing to record (a sign-in's internal bookkeeping)
        self.failure: AuditSinkError | None = None

    def _refused(self) -> CommitRefused:
        return CommitRefused(f"the change was not made: its audit record could not be written ({self.failure})")

    async def _write(self) -> None:
        event = self._build()
        if event is None:
            self.unguarded = True
            return
        try:
            await self.writer.write(event, durable=True)
        except AuditSinkError as exc:
            self.failure = exc
            return
        self.written = True

    async def before_commit_async(self) -> None:
        if self.written or self.unguarded:
            return
        if self.failure is None:
            if self._task is None:
                self._task = asyncio.ensure_future(self._write())
            await asyncio.shield(self._task)
        if self.failure is not None:
            raise self._refused()

    async def _wait_written(self) -> None:
        try:
            await self.before_commit_async()
        except CommitRefused:
            pass  # `failure` says it; raised in the committing thread

    def before_commit(self) -> None:
        if self.written or self.unguarded:
            return
        if self.failure is None:
            try:
                on_loop = asyncio.get_running_loop() is self._loop
            except RuntimeError:
                on_loop = False
            if on_loop:
                self._write_now()  # a synchronous commit on the event loop cannot wait for the writer's tasks
            else:
                try:
                    asyncio.run_coroutine_threadsafe(self._wait_written(), self._loop).result(WAIT_LIMIT)
                except concurrent.futures.TimeoutError:
                    self.failure = AuditSinkError(f"the audit record was not written within {WAIT_LIMIT:.0f} s")
        if self.failure is not None:
            raise self._refused()

    def _write_now(self) -> None:
        event = self._build()
        if event is None:
            self.unguarded = True
            return
        try:
            self.writer.write_now(event)
        except AuditSinkError as exc:
            self.failure = exc
            return
        self.written = True
