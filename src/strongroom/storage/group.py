"""Group commit for threads: the writes that arrive while one commit runs share the next one.

A durable commit costs an fsync (milliseconds on most disks); the SQL of one
secret write costs tens of microseconds. So when many request threads write at
once, one thread (the leader) takes every write waiting, applies them all in one
transaction and commits once; the others sleep until the leader tells them how
their own write went. While the leader commits, the next group gathers, so under
load groups grow by themselves and a lone write waits for nothing but its own
commit.

Each write keeps its own outcome: the `commit` callable reports a result or an
exception per item (one bad write fails alone), or raises, which fails exactly
the items of that group. An item's caller returns only after the commit that
holds it has returned, so "answered" still means "durable".

Leadership passes to one waiting thread at a time (its own lock is released),
never by waking every waiter, so a group costs one thread wake-up per write and
one hand-over.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_GROUP = 256  # items per transaction: bounds the work one failure has to redo


class _Waiter(Generic[T]):
    __slots__ = ("item", "outcome", "done", "lead", "wake")

    def __init__(self, item: T) -> None:
        self.item = item
        self.outcome: object = None
        self.done = False
        self.lead = False
        self.wake = threading.Lock()
        self.wake.acquire()  # released once: when the write is done, or when this thread is to lead


class GroupCommit(Generic[T, R]):
    """Run `commit(items) -> [result or exception, one per item]` for groups of concurrent submissions."""

    def __init__(self, commit: Callable[[list[T]], list[R | BaseException]]) -> None:
        self._commit = commit
        self._lock = threading.Lock()
        self._queue: list[_Waiter[T]] = []
        self._leading = False

    def submit(self, item: T) -> R:
        """Commit `item` with whatever else is waiting; return its result or raise its error."""
        me = _Waiter(item)
        with self._lock:
            if self._leading:
                self._queue.append(me)
            else:
                self._leading = me.lead = True
        if not me.lead:
            me.wake.acquire()
        if not me.done:  # handed the lead: our item was not in the last group
            self._lead(me)
        if isinstance(me.outcome, BaseException):
            raise me.outcome
        return me.outcome  # type: ignore[return-value]

    def _lead(self, me: _Waiter[T]) -> None:
        with self._lock:
            group, self._queue = [me, *self._queue[: MAX_GROUP - 1]], self._queue[MAX_GROUP - 1 :]
        try:
            outcomes: list[R | BaseException] = self._commit([w.item for w in group])
            if len(outcomes) != len(group):
                raise RuntimeError("group commit returned the wrong number of outcomes")
        except BaseException as exc:  # the commit failed: every write in it failed, nothing else
            outcomes = [exc] * len(group)
        for w, outcome in zip(group, outcomes, strict=True):
            w.outcome = outcome
            w.done = True
            if w is not me:
                w.wake.release()
        with self._lock:  # hand the lead to the oldest waiter, or give it up
            if self._queue:
                nxt = self._queue.pop(0)
                nxt.lead = True
                nxt.wake.release()
            else:
                self._leading = False
