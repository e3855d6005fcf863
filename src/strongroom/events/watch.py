"""Noticing new feed entries in every server process, whichever process wrote them.

Worker processes share nothing but storage, so each process runs one poller
that reads the last sequence number of every stream someone is waiting on,
every `interval` seconds (50 ms by default: one `Storage.heads` call for all of
them, an indexed lookup per watched vault, about 20 µs each on SQLite; one query
on PostgreSQL, where replicas watch each other's writes the same way), and wakes
the waiters of a stream that grew. The poller runs only while there are waiters. Subscribers then read the new entries
themselves. A new event therefore reaches a connected subscriber within about
one interval plus the time to send it.

Why not SQLite's `PRAGMA data_version`: it changes on any commit by another
connection, and every audited request commits, so it would wake every waiter on
every request without saying which stream changed.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from strongroom.barrier import SealedStore, StorageError

log = logging.getLogger("strongroom.events")

DEFAULT_INTERVAL = 0.05

_WATCHERS: "weakref.WeakSet[FeedWatcher]" = weakref.WeakSet()


def close_all() -> None:
    """The server is shutting down: wake every waiter and let the event streams end.

    Called on the event loop by the server's graceful shutdown; without it an
    open stream would hold the shutdown until its timeout.
    """
    for watcher in list(_WATCHERS):
        watcher.close()


class FeedWatcher:
    def __init__(self, store: SealedStore, interval: float = DEFAULT_INTERVAL) -> None:
        self.store = store
        self.interval = interval
        self._last: dict[str, int] = {}
        self._grew: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, int] = {}
        self._task: asyncio.Task | None = None
        self._failing = False
        self.closing = False
        _WATCHERS.add(self)

    def close(self) -> None:
        self.closing = True
        for grew in self._grew.values():
            grew.set()

    def _read_heads(self, streams: list[str]) -> dict[str, int]:
        """Each stream's last number, in one storage call; {} while storage fails."""
        try:
            heads = self.store.stream_heads(streams)
        except StorageError as exc:
            if not self._failing:  # one line per outage, not one per poll
                log.warning("change feed poll failed: %s", exc)
            self._failing = True
            return {}
        self._failing = False
        return heads

    async def wait_beyond(self, stream: str, seq: int, timeout: float) -> bool:
        """True as soon as `stream` holds an entry above `seq`; False once `timeout` seconds pass."""
        self._waiting[stream] = self._waiting.get(stream, 0) + 1
        try:
            if stream not in self._last:
                heads = await asyncio.to_thread(self._read_heads, [stream])  # storage may be a network away
                self._last.setdefault(stream, heads.get(stream, 0))
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._poll())
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while self._last[stream] <= seq:
                if self.closing:
                    return False
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                grew = self._grew.setdefault(stream, asyncio.Event())
                try:
                    await asyncio.wait_for(grew.wait(), remaining)
                except asyncio.TimeoutError:
                    return self._last[stream] > seq
            return True
        finally:
            self._waiting[stream] -= 1
            if not self._waiting[stream]:
                del self._waiting[stream]
                self._last.pop(stream, None)  # re-read on the next wait: no stale number kept

    async def _poll(self) -> None:
        while self._waiting:
            await asyncio.sleep(self.interval)
            streams = list(self._waiting)
            heads = await asyncio.to_thread(self._read_heads, streams)  # off the loop: storage may be remote
            for stream, last in heads.items():
                if stream not in self._waiting or last == self._last.get(stream):
                    continue
                self._last[stream] = last
                grew = self._grew.pop(stream, None)
                if grew is not None:
                    grew.set()  # waiters re-check; later waiters get a fresh Event
