"""Two-stage group commit on the event loop: written before any answer, on disk before a change's answer.

Stage 1 (the flusher task) takes every pending record as one batch, seals it onto
the chain and writes it to the file right on the event loop: cheap CPU and one
page-cache write. From then on the record survives the server process dying,
which is what Vault's file audit device promises before it answers. A record
written with `durable=False` (a read, a sign-in: nothing in the vault changed) is
answered now.

Stage 2 (the committer task) has a dedicated thread fsync the file and copy the
lines to the table, while stage 1 goes on writing the next batches; one fsync
covers everything written before it. A record written with `durable=True` (the
request changed something) is answered only then, so an acknowledged change never
outlives its audit record in a power failure. Reads therefore never wait for a
disk flush, whose tail on a shared disk reaches tens of milliseconds.

Failure closes the log either way: a batch that cannot be written fails all its
requests (503) and is taken back out of the file; an fsync or table failure fails
the durable requests it covered and makes the next batch take the chain over
again from the file (the records of reads already answered stay in it).

Why not a writer thread doing all of it: threads share the GIL with the event
loop, and a thread that wakes for every small step (seal, write, each SQL
statement) waits for the loop to let go of the GIL each time. Measured on two
cores, that halved throughput even with fsync switched off; here the thread
wakes twice per commit.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from strongroom.audit.chain import canonical
from strongroom.audit.log import AuditLog, AuditSinkError, Sealed

log = logging.getLogger("strongroom.audit")

MAX_BATCH = 1024


class AuditWriter:
    def __init__(self, audit_log: AuditLog) -> None:
        self.log = audit_log
        self._pending: list[tuple[bytes, asyncio.Future, bool]] = []
        self._unsynced: list[tuple[Sealed, list[asyncio.Future]]] = []
        self._flusher: asyncio.Task | None = None
        self._committer: asyncio.Task | None = None
        self._closed = False
        self._io = ThreadPoolExecutor(1, thread_name_prefix="audit-fsync")

    async def write(self, event: dict[str, Any], *, durable: bool = True) -> None:
        """Return once `event` is in the file (`durable`: on disk, and in the table); raise AuditSinkError if it could not be.

        The event is serialised here, so one that cannot be (TypeError) fails alone, not its batch.
        """
        if self._closed:
            raise AuditSinkError("the audit writer is stopped")
        body = canonical(event)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._pending.append((body, fut, durable))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        await fut

    def write_now(self, event: dict[str, Any]) -> None:
        """Write `event` and fsync it before returning, blocking the caller: for a commit made synchronously on the event loop.

        Safe on the loop thread: the flusher runs there too, so it is between two
        steps; the batch joins the committer's list so the table gets it in order.
        """
        if self._closed:
            raise AuditSinkError("the audit writer is stopped")
        if not self.log.ready:
            raise AuditSinkError(f"{self.log.path.name} is being taken over again; retry")
        sealed = self.log.seal([canonical(event)], self.log.check())
        self.log.write(sealed)
        try:
            self.log.sync()
        except AuditSinkError:
            self.log.invalidate()
            raise
        self._unsynced.append((sealed, []))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.get_running_loop().create_task(self._commit())

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                if not self.log.ready:  # not opened yet, or out of step: take the chain over (after any commit in flight)
                    await loop.run_in_executor(self._io, self.log.adopt)
                sealed = self.log.seal([body for body, _, _ in batch], self.log.check())
                self.log.write(sealed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure fails the batch closed, never the flusher
                _fail([fut for _, fut, _ in batch], exc)
                continue
            waiting = []
            for _, fut, durable in batch:
                if durable:
                    waiting.append(fut)
                elif not fut.done():  # done: the request was cancelled (client went away)
                    fut.set_result(None)
            self._unsynced.append((sealed, waiting))
            if self._committer is None or self._committer.done():
                self._committer = loop.create_task(self._commit())

    async def _commit(self) -> None:
        loop = asyncio.get_running_loop()
        while self._unsynced:
            done, self._unsynced = self._unsynced, []
            lines = [line for sealed, _ in done for line in sealed.lines]
            waiting = [fut for _, futs in done for fut in futs]
            try:
                await loop.run_in_executor(self._io, self.log.commit, lines, done[0][0].before.seq)
            except asyncio.CancelledError:
                raise  # the loop is shutting down; the thread finishes the commit on its own
            except Exception as exc:
                self.log.invalidate()
                _fail(waiting, exc)
                continue
            for fut in waiting:
                if not fut.done():
                    fut.set_result(None)

    def close(self) -> None:
        """Stop taking records; what is in flight finishes first."""
        if self._closed:
            return
        self._closed = True
        self._io.shutdown(wait=True)
        self.log.close()


def _fail(futures: list[asyncio.Future], exc: Exception) -> None:
    error = exc if isinstance(exc, AuditSinkError) else AuditSinkError(f"{type(exc).__name__}: {exc}")
    for fut in futures:
        if not fut.done():
            fut.set_exception(error)
