"""Concurrent writes share commits but keep their own outcomes (storage/group.py; SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from strongroom.storage import StorageError, Write
from strongroom.storage.group import GroupCommit

THREADS = 16
WRITES_EACH = 40


def run_threads(target, n: int = THREADS) -> None:
    start = threading.Barrier(n)
    threads = [threading.Thread(target=lambda i=i: (start.wait(), target(i))) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_concurrent_writers_get_gapless_sequences_and_all_their_writes(open_db):
    # Two storages on one file stand for two worker processes.
    a, b = open_db(), open_db()
    seqs: list[int] = []
    lock = threading.Lock()

    def writer(i: int) -> None:
        db = a if i % 2 else b
        for n in range(WRITES_EACH):
            got = db.write_and_append([Write(f"k/{i}/{n}", f"{i}-{n}".encode())], "changes/v", [f"{i}-{n}".encode()])
            with lock:
                seqs.extend(got)

    run_threads(writer)
    total = THREADS * WRITES_EACH
    assert sorted(seqs) == list(range(1, total + 1))  # each call got its own numbers, none shared, no gaps
    assert sum(1 for _ in a.scan("k/")) == total
    entries = {value: seq for seq, value in a.read("changes/v")}
    for i in range(THREADS):  # one writer's events are numbered in the order it wrote them
        mine = [entries[f"{i}-{n}".encode()] for n in range(WRITES_EACH)]
        assert mine == sorted(mine)
    a.close()
    b.close()


def test_a_refused_write_fails_alone_while_its_group_commits(open_db):
    db = open_db()
    errors: dict[int, Exception] = {}

    def writer(i: int) -> None:
        for n in range(WRITES_EACH):
            bad = i == 3 and n % 4 == 0  # a NULL key: the backend refuses it (NOT NULL)
            key = None if bad else f"k/{i}/{n}"
            try:
                db.write_and_append([Write(key, b"v")], "changes/v", [b"e"])  # type: ignore[arg-type]
            except StorageError as exc:
                errors[i * 1000 + n] = exc

    run_threads(writer)
    assert sorted(errors) == [3000 + n for n in range(0, WRITES_EACH, 4)]
    good = THREADS * WRITES_EACH - len(errors)
    assert sum(1 for _ in db.scan("k/")) == good
    assert [seq for seq, _ in db.read("changes/v")] == list(range(1, good + 1))  # the refused left no event
    db.close()


def test_a_failed_commit_fails_exactly_its_group():
    gate = threading.Event()
    groups: list[list[int]] = []

    def commit(items: list[int]) -> list[int | BaseException]:
        groups.append(items)
        if items == [0]:
            gate.wait(5)  # hold the first commit so the others gather behind it
            return [0]
        if 13 in items:
            raise OSError("disk gone")
        return [x * 10 for x in items]

    gc: GroupCommit[int, int] = GroupCommit(commit)
    results: dict[int, object] = {}

    def submit(i: int) -> None:
        try:
            results[i] = gc.submit(i)
        except OSError as exc:
            results[i] = exc

    first = threading.Thread(target=submit, args=(0,))
    first.start()
    while not groups:
        time.sleep(0.001)
    others = [threading.Thread(target=submit, args=(i,)) for i in range(1, 20)]
    for t in others:
        t.start()
    while len(gc._queue) < 19:  # all of them wait behind the held commit
        time.sleep(0.001)
    gate.set()
    first.join()
    for t in others:
        t.join()
    assert groups[0] == [0] and sorted(groups[1]) == list(range(1, 20))  # the waiting writes became one group
    assert all(isinstance(results[i], OSError) for i in range(1, 20))
    assert results[0] == 0
    assert gc.submit(5) == 50  # the committer is usable after a failed group


def test_writes_from_one_thread_each_see_the_last(open_db):
    db = open_db()
    for n in range(5):
        db.write([Write("k", str(n).encode())])
        assert db.get("k") == str(n).encode()
    with pytest.raises(StorageError):
        db.write([Write("k", b"x"), Write(None, b"y")])  # type: ignore[arg-type]
    assert db.get("k") == b"4"
    db.close()


def test_async_writes_share_commits_and_keep_their_own_outcomes(open_db):
    db = open_db()

    async def main() -> list[object]:
        async def one(i: int) -> object:
            key = None if i == 7 else f"k/{i}"
            try:
                return await db.write_and_append_async([Write(key, b"v")], "changes/v", [str(i).encode()])  # type: ignore[arg-type]
            except StorageError as exc:
                return exc

        return await asyncio.gather(*(one(i) for i in range(50)))

    outcomes = asyncio.run(main())
    assert isinstance(outcomes[7], StorageError)
    seqs = [s for i, o in enumerate(outcomes) if i != 7 for s in o]  # type: ignore[union-attr]
    assert sorted(seqs) == list(range(1, 50))
    stored = {int(value): seq for seq, value in db.read("changes/v")}
    assert 7 not in stored and all(stored[i] == outcomes[i][0] for i in stored)  # type: ignore[index]
    assert db.get("k/3") == b"v" and sum(1 for _ in db.scan("k/")) == 49
    asyncio.run(main())  # a second loop (as in tests) is served too
    db.close()


def test_a_cancelled_async_writer_still_has_its_write_committed(open_db):
    # A client that goes away mid-write: its write may already be in the transaction, so it completes.
    db = open_db()

    async def main() -> None:
        task = asyncio.ensure_future(db.write_and_append_async([Write("gone", b"v")], "changes/v", [b"e"]))
        await asyncio.sleep(0)  # submitted
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await db.write_and_append_async([Write("next", b"v")], "changes/v", [b"e"]) == [2]

    asyncio.run(main())
    assert db.get("gone") == b"v" and db.get("next") == b"v"
    db.close()
