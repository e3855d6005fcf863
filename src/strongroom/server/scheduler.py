"""The lifecycle scheduler: a background task in each worker; one worker at a time does the work.

Workers race for an exclusive lock file in the state dir (`scheduler.lock`), and
its holder for the storage's leadership (`Storage.try_lead`: an advisory lock on
PostgreSQL, so one replica among several leads); the holder of both runs a lifecycle pass over every vault each `interval` seconds (60, or
1 in dev mode, where tests move time) and right after a time shift. If the
holder dies the kernel releases the lock and another worker takes over at its
next try. In dev mode every worker also reloads the time shifts each half
second, so all of them answer with the same vault time.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from pathlib import Path

from strongroom.keyvault import timeshift
from strongroom.keyvault.lifecycle import Lifecycle
from strongroom.server.runtime import Runtime
from strongroom.barrier import guard

log = logging.getLogger("strongroom.scheduler")
LOCK_FILE = "scheduler.lock"
INTERVAL = 60.0
DEV_INTERVAL = 1.0
CLOCK_SYNC = 0.5


class Scheduler:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.lifecycle = Lifecycle(runtime.keys, runtime.certificates)
        self.dev = bool(getattr(runtime.settings, "dev", False))
        self.interval = DEV_INTERVAL if self.dev else INTERVAL
        self._lock_fd: int | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._current: asyncio.Future | None = None  # the pass running in a worker thread
        self._task: asyncio.Task | None = None

    def wake(self) -> None:
        """Run a pass now (after a time shift)."""
        self._wake.set()

    def _try_lead(self) -> bool:
        if self._lock_fd is not None:
            return True
        path = Path(self.runtime.settings.state_dir) / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def run_pass(self) -> None:
        """One pass over every vault (in a worker thread: it writes and waits for fsync)."""
        for vault in self.runtime.vaults.list():
            if self._stopping:
                return
            self.lifecycle.run(vault)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        """Stop between vaults and wait for a pass in flight, so storage is not closed under it."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        if self._current is not None and not self._current.done():
            await asyncio.wait([self._current], timeout=10)
        self.close()

    async def run(self) -> None:
        guard_service_changes(self.runtime)  # the passes' threads inherit it: each change is recorded first
        if self.dev:
            await asyncio.to_thread(timeshift.apply, self.runtime.store)
        clock_task = asyncio.create_task(self._sync_clock()) if self.dev else None
        try:
            while True:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
                except asyncio.TimeoutError:
                    pass
                self._wake.clear()
                try:
                    # The state dir's flock picks one worker of this replica; the storage's
                    # leadership one replica among those sharing the storage (PostgreSQL).
                    if self._try_lead() and await asyncio.to_thread(self.runtime.store.try_lead, "scheduler"):
                        self._current = asyncio.ensure_future(asyncio.to_thread(self.run_pass))
                        await asyncio.shield(self._current)
                except Exception as exc:  # keep the loop alive; the next round retries
                    log.warning("lifecycle pass failed: %s", type(exc).__name__)
        finally:
            if clock_task is not None:
                clock_task.cancel()

    async def _sync_clock(self) -> None:
        while True:
            await asyncio.sleep(CLOCK_SYNC)
            try:
                if await asyncio.to_thread(timeshift.apply, self.runtime.store):
                    self.wake()
            except Exception as exc:
                log.warning("time shift reload failed: %s", type(exc).__name__)


def guard_service_changes(runtime: Runtime) -> None:
    """Record every change this task (and the threads it starts) commits as the service's own, before the commit."""
    if runtime.audit is not None:
        from strongroom.audit.service import ServiceChanges

        guard.use(ServiceChanges(runtime.audit, runtime.tenant.tenant_id, runtime.settings.vault_url))
