"""The change counter: a request that pinned it reads unchanged records from memory, and sees every change
made before it by any process (two handles on one store stand for two workers, or two replicas on PostgreSQL)."""

from __future__ import annotations

import contextvars
from pathlib import Path

import pytest

from strongroom.barrier import Barrier, Keyring, MasterKey, SealedStore
from strongroom.barrier.envelope import CHANGE_SLOTS, CHANGES
from strongroom.storage import Storage, open_storage


class Counting:
    """A real storage, with its reads (point reads and scans) counted (what the counter exists to save)."""

    def __init__(self, storage: Storage) -> None:
        self.storage, self.gets = storage, 0

    def get(self, key: str) -> bytes | None:
        self.gets += 1
        return self.storage.get(key)

    def scan(self, *args, **kwargs):
        self.gets += 1
        return self.storage.scan(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.storage, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 's.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")


def request(store: SealedStore, *keys: str) -> list[bytes | None]:
    """One request: pin, then read `keys` (a new context, as each request is its own asyncio task)."""

    def run() -> list[bytes | None]:
        store.pin()
        return [store.get(k) for k in keys]

    return contextvars.copy_context().run(run)


def test_a_request_sees_every_earlier_change_by_another_process_and_reads_nothing_else(url: str):
    key = MasterKey.generate()
    counted = Counting(open_storage(url))
    mine = SealedStore(counted, Barrier(Keyring([key])))  # type: ignore[arg-type]
    other = SealedStore(open_storage(url), Barrier(Keyring([key])))
    other._changes_key = f"{CHANGES}/{(int(mine._changes_key[-2:]) + 1) % CHANGE_SLOTS:02d}"  # never mine's slot
    try:
        other.write({"vaults/a": b"one", "secrets/a/s": b"v1"})
        assert request(mine, "vaults/a", "secrets/a/s") == [b"one", b"v1"]
        before = counted.gets
        assert request(mine, "vaults/a", "secrets/a/s") == [b"one", b"v1"]
        assert counted.gets - before == 1  # the counter only: both records came from memory
        other.write({"secrets/a/s": b"v2"})  # another worker or replica changes one record
        assert request(mine, "vaults/a", "secrets/a/s") == [b"one", b"v2"]
        other.write({"vaults/a": None})
        assert request(mine, "vaults/a", "secrets/a/s") == [None, b"v2"]
    finally:
        mine.close()
        other.close()


def test_a_request_reads_its_own_write_and_unpinned_reads_always_fetch(url: str):
    key = MasterKey.generate()
    counted = Counting(open_storage(url))
    store = SealedStore(counted, Barrier(Keyring([key])))  # type: ignore[arg-type]
    try:
        store.write({"k": b"old"})

        def writes_then_reads() -> bytes | None:
            store.pin()
            assert store.get("k") == b"old"
            store.write({"k": b"new"})  # same request, counter pinned before the write
            return store.get("k")

        assert contextvars.copy_context().run(writes_then_reads) == b"new"
        assert store.change_token() is None  # no pin here: background work and tools
        before = counted.gets
        assert store.get("k") == b"new" and counted.gets - before == 1
    finally:
        store.close()
