"""A small, bounded pool for CPU-heavy cryptography: key generation, key import, certificate creation and import.

Starlette's `run_in_threadpool` lends up to 40 threads to anything that blocks;
forty RSA-4096 key generations at once take every core from the event loop and
reads wait behind them. Heavy crypto runs here instead: at most `WORKERS` jobs
compute at once (the rest wait their turn), and at most `MAX_WAITING` wait;
past that the caller gets 429 with Retry-After at once instead of a growing queue.
Each worker process has its own pool.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from strongroom.server.throttle import Throttled

T = TypeVar("T")

WORKERS = max(1, min(4, (os.cpu_count() or 2) // 2))
MAX_WAITING = 32


class CryptoPool:
    def __init__(self, workers: int = WORKERS, max_waiting: int = MAX_WAITING) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="strongroom-crypto")
        self._capacity = workers + max_waiting
        self._admitted = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on a pool thread; Throttled (429) when the pool and its queue are full."""
        if self._admitted >= self._capacity:
            raise Throttled(1)
        self._admitted += 1  # only the event loop thread counts: no lock needed
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))
        finally:
            self._admitted -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


_pool: CryptoPool | None = None


def pool() -> CryptoPool:
    """This process's pool, made on first use (threads are not forked into workers)."""
    global _pool
    if _pool is None:
        _pool = CryptoPool()
    return _pool


async def run_heavy(fn: Callable[..., T], *args: Any) -> T:
    return await pool().run(fn, *args)
