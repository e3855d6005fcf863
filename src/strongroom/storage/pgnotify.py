"""PostgreSQL's LISTEN/NOTIFY for the change feed: a stream that grows wakes its watchers at once.

Every transaction that appends to a stream through `write_and_append` (the change
feed) also runs `pg_notify(CHANNEL, "<last> <stream>")` for each stream it grew;
PostgreSQL delivers the notification when, and only if, the transaction commits,
in commit order. Each process keeps one listening connection of its own (outside
the pool, in a daemon thread) and hands every notification to the feed watcher
(events/watch.py), which wakes the subscribers of that stream: no polling between
replicas while the connection is up.

Notifications are a hint, never the record: a subscriber reads the entries from
the stream by sequence number. Whatever was sent while the listener was away is
lost, so after every (re)connection, and when the connection drops, the callback
gets `{}` after each (re)connection ("listening now; re-read the heads of everything
you watch once") and `None` when the connection is lost ("poll until I am back").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg

log = logging.getLogger("strongroom.storage")

CHANNEL = "strongroom_streams"
# The notify payload limit is 8000 bytes; stream names are vault keys (short), but never send more.
MAX_PAYLOAD = 7900
_WAKE_EVERY = 0.5  # seconds between checks of `close()` while no notification arrives
_RETRY_MIN, _RETRY_MAX = 0.1, 2.0  # reconnect delay, doubling

OnHeads = Callable[[dict[str, int] | None], None]


def notify_sql(count: int) -> str:
    """One statement notifying `count` streams (arguments: channel, then each payload)."""
    return "SELECT " + ", ".join(["pg_notify(%s, %s)"] * count)


def payload(stream: str, last: int) -> str | None:
    text = f"{last} {stream}"
    return text if len(text.encode()) <= MAX_PAYLOAD else None


def parse(text: str) -> tuple[str, int] | None:
    last, _, stream = text.partition(" ")
    try:
        return stream, int(last)
    except ValueError:
        return None


class StreamListener:
    """A daemon thread holding `LISTEN strongroom_streams` on a connection of its own.

    `on_heads({stream: last})` for each notification; `on_heads({})` once the
    connection is (re)made (re-read what you watch), `on_heads(None)` when it is
    lost (poll until the next `{}`). The
    callback runs on the listener's thread: it must be quick and thread-safe.
    """

    def __init__(self, url: str, connect_kwargs: dict[str, Any], on_heads: OnHeads) -> None:
        self._url = url
        self._kwargs = connect_kwargs
        self._on_heads = on_heads
        self._closed = threading.Event()
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(_WAKE_EVERY * 4)

    def _run(self) -> None:
        delay = _RETRY_MIN
        failing = False
        while not self._closed.is_set():
            try:
                with psycopg.connect(self._url, **self._kwargs) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    if failing:
                        log.warning("change feed listener reconnected")
                    failing, delay = False, _RETRY_MIN
                    self._on_heads({})  # anything committed while we were not listening: re-read
                    while not self._closed.is_set():
                        for n in conn.notifies(timeout=_WAKE_EVERY):
                            found = parse(n.payload)
                            if found is not None:
                                self._on_heads({found[0]: found[1]})
            except psycopg.Error as exc:
                self.connected.clear()
                if not failing:  # one line per outage
                    log.warning("change feed listener lost its connection (%s); polling until it is back",
                                exc.__class__.__name__)
                failing = True
                self._on_heads(None)
                self._closed.wait(delay)
                delay = min(delay * 2, _RETRY_MAX)
            except Exception as exc:  # a bug in a callback must not end the thread silently
                log.warning("change feed listener failed: %s", exc.__class__.__name__)
                self.connected.clear()
                self._closed.wait(_RETRY_MAX)
        self.connected.clear()
