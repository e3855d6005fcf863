"""The write side both backends share: every commit asks the guard, then joins a group commit.

A backend supplies `_commit_group` (one transaction for many batches, each with its
own outcome); this class routes writes from threads through `GroupCommit` and writes
from the event loop through `AsyncGroupCommit`, whose thread starts with the first
such write. Keeping it in one place keeps the guard check (the audit's intent record,
storage/guard.py) on every commit path of every backend.
"""

from __future__ import annotations

import threading

from strongroom.storage import guard
from strongroom.storage.asyncgroup import AsyncGroupCommit
from strongroom.storage.base import Write
from strongroom.storage.group import GroupCommit

Item = tuple[list[Write], str | None, list[bytes]]


class GroupCommitWrites:
    """`write`, `write_and_append` and `write_and_append_async` over a backend's `_commit_group`."""

    _commit_thread_name = "storage-commit"

    def _commit_group(self, items: list[Item]) -> list[list[int] | BaseException]:
        raise NotImplementedError

    def _init_writes(self) -> None:
        self._group: GroupCommit[Item, list[int]] = GroupCommit(self._commit_group)
        self._async_group: AsyncGroupCommit[Item, list[int]] | None = None
        self._async_lock = threading.Lock()

    def write(self, batch: list[Write]) -> None:
        if not batch:
            return
        guard.check()
        self._group.submit((batch, None, []))

    def write_and_append(self, batch: list[Write], stream: str, entries: list[bytes]) -> list[int]:
        if not batch and not entries:
            return []
        guard.check()
        return self._group.submit((batch, stream, entries))

    async def write_and_append_async(self, batch: list[Write], stream: str, entries: list[bytes]) -> list[int]:
        if not batch and not entries:
            return []
        await guard.check_async()
        with self._async_lock:
            if self._async_group is None:  # its thread starts with the first write from a loop
                self._async_group = AsyncGroupCommit(self._commit_group, self._commit_thread_name)
        return await self._async_group.submit((batch, stream, entries))

    def _close_writes(self) -> None:
        if self._async_group is not None:
            self._async_group.close()
