"""Group commit on the event loop: one commit thread, one hand-over per group, not per write.

The thread group commit (storage/group.py) serves callers that are threads; a
request handler that ran its whole write in the threadpool paid a thread
hand-over each way per request (~10% of a write's CPU on two cores, mostly the
GIL changing hands). Here a request prepares its write on the loop and awaits
a future; one flusher task takes everything pending, runs `commit(items)` in a
dedicated thread (it blocks on the fsync) and resolves each future with that
item's own result or error. While the thread commits, the next group gathers.
The same pattern as the audit writer (audit/writer.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_GROUP = 256  # as the thread group commit: bounds what one refused item makes the group redo


def _consume(fut: asyncio.Future[object]) -> None:
    if not fut.cancelled():
        fut.exception()


class AsyncGroupCommit(Generic[T, R]):
    def __init__(self, commit: Callable[[list[T]], list[R | BaseException]], thread_name: str) -> None:
        self._commit = commit
        self._io = ThreadPoolExecutor(1, thread_name_prefix=thread_name)
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, item: T) -> R:
        """Return `item`'s result once the commit holding it has returned (durable); raise its error."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (tests run several): the old one's state is gone with it
            self._loop, self._pending, self._flusher = loop, [], None
        fut = loop.create_future()
        self._pending.append((item, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        try:
            return await asyncio.shield(fut)  # a cancelled request does not cancel its write: it may be committing
        except asyncio.CancelledError:
            fut.add_done_callback(_consume)  # no one awaits it now: no "exception never retrieved" log
            raise

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
            try:
                outcomes: list[R | BaseException] = await loop.run_in_executor(self._io, self._commit, [item for item, _ in group])
                if len(outcomes) != len(group):
                    raise RuntimeError("group commit returned the wrong number of outcomes")
            except Exception as exc:  # the commit failed: exactly this group's writes failed
                outcomes = [exc] * len(group)
            for (_, fut), outcome in zip(group, outcomes, strict=True):
                if fut.done():
                    continue
                if isinstance(outcome, BaseException):
                    fut.set_exception(outcome)
                else:
                    fut.set_result(outcome)

    def close(self) -> None:
        self._io.shutdown(wait=True)
