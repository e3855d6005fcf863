"""A check run before any change is committed, so a change can be refused before it exists.

The audit layer uses it to make a change's audit record durable before the
change itself (see `strongroom.audit.intent`): whoever is about to change
something sets a guard in its context, and every commit made in that context
(on the event loop, or in a threadpool thread, which copies the context) asks
it first. Storage knows nothing of audit: a guard is anything with the two
methods below. Without a guard (start-up, migrations, tools) commits go ahead.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Protocol

from strongroom.storage.base import StorageError


class CommitRefused(StorageError):
    """The guard refused the commit: nothing was written."""


class CommitGuard(Protocol):
    def before_commit(self) -> None:
        """Called in the committing thread; raise CommitRefused to refuse."""
        ...

    async def before_commit_async(self) -> None:
        """Called on the event loop by an async commit; raise CommitRefused to refuse."""
        ...


_current: ContextVar[CommitGuard | None] = ContextVar("strongroom.commit_guard", default=None)


def use(guard: CommitGuard | None) -> Token[CommitGuard | None]:
    """Guard the commits of this context (and of the tasks and threads it starts from now on)."""
    return _current.set(guard)


def reset(token: Token[CommitGuard | None]) -> None:
    _current.reset(token)


def current() -> CommitGuard | None:
    return _current.get()


def check() -> None:
    guard = _current.get()
    if guard is not None:
        guard.before_commit()


async def check_async() -> None:
    guard = _current.get()
    if guard is not None:
        await guard.before_commit_async()
