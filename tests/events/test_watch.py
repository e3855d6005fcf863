"""The feed watcher on PostgreSQL: woken by NOTIFY from another process's commit, not by its poll."""

from __future__ import annotations

import asyncio
import os
import time

from strongroom.barrier import Barrier, Keyring, MasterKey, SealedStore
from strongroom.events.watch import FeedWatcher
from strongroom.storage import Write
from strongroom.storage.postgresql import PostgreSQLStorage


def sealed(url: str) -> SealedStore:
    return SealedStore(PostgreSQLStorage(url), Barrier(Keyring([MasterKey(os.urandom(32))])))


def test_a_commit_by_another_replica_wakes_a_waiter_at_once_though_the_poll_is_half_a_minute(pg_url: str):
    other = PostgreSQLStorage(pg_url)  # another replica, on the same database
    store = sealed(pg_url)
    watcher = FeedWatcher(store, interval=30.0)  # were it polling, nothing would arrive within the test

    async def scenario() -> list[float]:
        waits = []
        for seq in range(3):
            deadline = time.monotonic() + 10
            while not watcher.pushed:  # the listener's connection is up
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            waiter = asyncio.create_task(watcher.wait_beyond("changes/kv1", seq, timeout=10))
            await asyncio.sleep(0.2)  # it waits
            t0 = time.monotonic()
            await asyncio.to_thread(other.write_and_append, [Write("k", b"v")], "changes/kv1", [b"e"])
            assert await waiter
            waits.append(time.monotonic() - t0)
        return waits

    async def first_wait_starts_the_listener() -> None:
        assert not await watcher.wait_beyond("changes/kv1", 0, timeout=0.05)

    try:
        asyncio.run(_both(first_wait_starts_the_listener, scenario))
    finally:
        watcher.close()
        store.close()
        other.close()


async def _both(first, then) -> None:
    await first()
    waits = await then()
    assert max(waits) < 1.0, waits


def test_an_event_committed_while_the_listener_was_cut_off_wakes_the_waiter_when_it_listens_again(pg_url: str):
    import psycopg

    other = PostgreSQLStorage(pg_url)
    store = sealed(pg_url)
    watcher = FeedWatcher(store, interval=30.0)  # the fallback poll would take half a minute: only the re-read helps

    async def scenario() -> float:
        assert not await watcher.wait_beyond("changes/kv1", 0, timeout=0.05)  # starts the listener
        deadline = time.monotonic() + 10
        while not watcher.pushed:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        waiter = asyncio.create_task(watcher.wait_beyond("changes/kv1", 0, timeout=15))
        await asyncio.sleep(0.2)
        t0 = time.monotonic()

        def cut_off_then_write() -> None:
            with psycopg.connect(pg_url, autocommit=True) as admin:  # as a PostgreSQL restart or failover would
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%%' "
                              "AND pid <> pg_backend_pid()")
            other.write_and_append([Write("k", b"v")], "changes/kv1", [b"e"])

        await asyncio.to_thread(cut_off_then_write)
        assert await waiter
        return time.monotonic() - t0

    try:
        assert asyncio.run(scenario()) < 5
    finally:
        watcher.close()
        store.close()
        other.close()
