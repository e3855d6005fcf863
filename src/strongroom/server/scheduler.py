"""The background work: a task in each worker; one worker of one replica at a time does the work.

Workers race for an exclusive lock file in the state dir (`scheduler.lock`), and
its holder for the storage's leadership (`Storage.try_lead`: an advisory lock on
PostgreSQL, so one replica among several leads). The holder of both runs a
lifecycle pass over every vault (key rotation, certificate renewal, expiry events)
each `interval` seconds (60, or 1 in dev mode, where tests move time) and right
after a time shift, and the purge of soft-deleted objects past their scheduled
purge date every PURGE_INTERVAL (each pass in dev mode). Nothing of it runs
anywhere else: two replicas' passes racing could each renew the same certificate.

The others try to take over every LEAD_RETRY seconds: when the leader dies its
lock file and its PostgreSQL session go with it, and the next try of another
worker or replica wins and runs a pass at once. In dev mode every worker also
reloads the time shifts each half second, so all of them answer with the same
vault time.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from pathlib import Path

from strongroom.barrier import guard
from strongroom.keyvault import timeshift
from strongroom.keyvault.lifecycle import Lifecycle
from strongroom.server.runtime import Runtime

log = logging.getLogger("strongroom.scheduler")
LOCK_FILE = "scheduler.lock"
INTERVAL = 60.0
DEV_INTERVAL = 1.0
CLOCK_SYNC = 0.5
MEMBERS_INTERVAL = 3.0  # seconds between counts of the live server processes (limits are shared by them)
LEAD_RETRY = 2.0  # seconds between a follower's tries to take over (one query on a kept connection)
PURGE_INTERVAL = 60.0


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
        self.leading = False
        self._last_purge = 0.0

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
        """One pass over every vault (in a worker thread: it writes and waits for fsync); the purge when due."""
        for vault in self.runtime.vaults.list():
            # Still the leader? A session cut off meanwhile may have let another replica take over.
            if self._stopping or not self.runtime.store.try_lead("scheduler"):
                return
            self.lifecycle.run(vault)
        now = time.monotonic()
        if self.dev or now - self._last_purge >= PURGE_INTERVAL:
            self._last_purge = now
            self.run_purge()

    def run_purge(self) -> None:
        """Purge soft-deleted secrets, keys and certificates whose scheduled purge date has passed."""
        for vault in self.runtime.vaults.list():
            if self._stopping:
                return
            try:
                self.runtime.secrets.purge_expired(vault)
                self.runtime.keys.purge_expired(vault)
                self.runtime.certificates.purge_expired(vault)
            except Exception as exc:  # one vault's failure does not hold up the others
                log.warning("scheduled purge of %s failed: %s", vault.name, type(exc).__name__)

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
        members_task = asyncio.create_task(self._count_members()) if self.runtime.throttle is not None else None
        try:
            while True:
                wait = self.interval if self.leading else min(self.interval, LEAD_RETRY)
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                except TimeoutError:
                    pass
                self._wake.clear()
                try:
                    # The state dir's flock picks one worker of this replica; the storage's
                    # leadership one replica among those sharing the storage (PostgreSQL).
                    self.leading = self._try_lead() and await asyncio.to_thread(self.runtime.store.try_lead, "scheduler")
                    if self.leading:
                        self._current = asyncio.ensure_future(asyncio.to_thread(self.run_pass))
                        await asyncio.shield(self._current)
                except Exception as exc:  # keep the loop alive; the next round retries
                    log.warning("lifecycle pass failed: %s", type(exc).__name__)
        finally:
            for task in (clock_task, members_task):
                if task is not None:
                    task.cancel()

    async def _count_members(self) -> None:
        """Keep the per-vault limits divided among every live server process of every replica."""
        throttle = self.runtime.throttle
        while throttle is not None:
            try:
                count = await asyncio.to_thread(self.runtime.store.count_members, "servers")
                if count is not None:  # None: SQLite (our workers are the share), or PostgreSQL away (keep the last)
                    throttle.share(count)
            except Exception as exc:
                log.warning("counting the server processes failed: %s", type(exc).__name__)
            await asyncio.sleep(MEMBERS_INTERVAL)

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
