"""Noticing new feed entries in every server process, whichever process wrote them.

Worker processes and replicas share nothing but storage. Two ways to notice:

- **Pushed** (PostgreSQL): each append to the change feed NOTIFYs in its own
  transaction, and each process keeps one LISTEN connection (`SealedStore.listen_streams`,
  storage/pgnotify.py) whose notifications wake the waiters of that stream at
  once, whichever replica wrote. A slow safety poll (every SAFETY_INTERVAL) stays,
  and after the listener (re)connects every watched stream is re-read at once.
- **Polled** (SQLite, which cannot push; and PostgreSQL while its listener is
  down): every `interval` seconds (50 ms) one `Storage.heads` call reads the last
  number of every stream someone waits on (an indexed lookup per watched
  vault, about 20 µs each on SQLite).

Either way the poller runs only while there are waiters, and subscribers then
read the new entries themselves, by sequence number: a notification is a hint,
never the record, so a missed one delays an event by at most a poll, never loses it.

Why not SQLite's `PRAGMA data_version`: it changes on any commit by another
connection, and every audited request commits, so it would wake every waiter on
every request without saying which stream changed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Callable

from strongroom.barrier import SealedStore, StorageError

log = logging.getLogger("strongroom.events")

DEFAULT_INTERVAL = 0.05
SAFETY_INTERVAL = 2.0  # while notifications are pushed: the poll only covers a silently lost one

_WATCHERS: weakref.WeakSet[FeedWatcher] = weakref.WeakSet()


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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listening = False  # asked storage to push (once)
        self.pushed = False  # notifications arrive now: poll only for safety
        self._kick: asyncio.Event | None = None  # poll now (the listener has just (re)connected)
        self._stop_listen: Callable[[], None] | None = None
        _WATCHERS.add(self)

    def close(self) -> None:
        self.closing = True
        for grew in self._grew.values():
            grew.set()
        stop, self._stop_listen = self._stop_listen, None
        if stop is not None:
            threading.Thread(target=stop, daemon=True).start()  # joins its thread: not on the loop

    def _listen(self) -> None:
        """Ask storage to push stream heads (on the loop, at the first wait); PostgreSQL can, SQLite cannot."""
        self._listening = True
        self._loop = asyncio.get_running_loop()
        self._kick = asyncio.Event()
        try:
            self._stop_listen = self.store.listen_streams(self._from_listener)
        except Exception as exc:  # polling still works
            log.warning("change feed listener did not start: %s", exc.__class__.__name__)

    def _from_listener(self, heads: dict[str, int] | None) -> None:
        """Called on the listener's thread: hand over to the loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._pushed, heads)
            except RuntimeError:  # the loop closed meanwhile
                pass

    def _pushed(self, heads: dict[str, int] | None) -> None:
        if heads is None:  # the listener lost its connection: poll fast until it is back
            self.pushed = False
            return
        self.pushed = True
        if not heads:  # (re)connected: notices may have been missed, re-read everything watched now
            if self._kick is not None:
                self._kick.set()
            return
        self._grown(heads)

    def _grown(self, heads: dict[str, int]) -> None:
        for stream, last in heads.items():
            if stream not in self._waiting or last <= self._last.get(stream, 0):
                continue
            self._last[stream] = last
            grew = self._grew.pop(stream, None)
            if grew is not None:
                grew.set()  # waiters re-check; later waiters get a fresh Event

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
            if not self._listening:
                self._listen()
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
                except TimeoutError:
                    return self._last[stream] > seq
            return True
        finally:
            self._waiting[stream] -= 1
            if not self._waiting[stream]:
                del self._waiting[stream]
                self._last.pop(stream, None)  # re-read on the next wait: no stale number kept

    async def _poll(self) -> None:
        while self._waiting:
            interval = SAFETY_INTERVAL if self.pushed else self.interval
            if self._kick is None:
                await asyncio.sleep(interval)
            else:
                try:
                    await asyncio.wait_for(self._kick.wait(), interval)
                except TimeoutError:
                    pass
                self._kick.clear()
            streams = list(self._waiting)
            if not streams:
                break
            heads = await asyncio.to_thread(self._read_heads, streams)  # off the loop: storage may be remote
            self._grown(heads)
