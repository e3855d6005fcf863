"""The storage contract, on SQLite and on PostgreSQL: ordering, prefix scans, paging, atomic batches, logs.

Upper layers see only this interface, so both backends must pass the same tests.
"""

from __future__ import annotations

import threading

import pytest

from strongroom.storage import Storage, StorageError, Write


def keys(rows) -> list[str]:
    return [k for k, _ in rows]


def test_get_put_overwrite_delete(db: Storage):
    assert db.get("a") is None
    db.write([Write("a", b"1")])
    assert db.get("a") == b"1"
    db.write([Write("a", b"2")])
    assert db.get("a") == b"2"
    db.write([Write("a", None)])
    assert db.get("a") is None
    db.write([Write("never-there", None)])  # deleting a missing key is not an error


def test_scan_is_in_bytewise_key_order(db: Storage):
    names = ["b", "a", "B", "a/2", "a/10", "a/1", "é", "z", "a-", "\U0010ffff", "\U0010ffffz"]
    db.write([Write(n, n.encode()) for n in names])
    got = keys(db.scan(""))
    assert got == sorted(names, key=lambda s: s.encode())
    assert [v for _, v in db.scan("")] == [k.encode() for k in got]


def test_scan_prefix_excludes_neighbours(db: Storage):
    db.write([Write(k, b"x") for k in ["sec", "secrets/v1/a", "secrets/v1/b", "secrets/v10/a", "secrets/v2/a", "secretz"]])
    assert keys(db.scan("secrets/v1/")) == ["secrets/v1/a", "secrets/v1/b"]
    assert keys(db.scan("secrets/v1")) == ["secrets/v1/a", "secrets/v1/b", "secrets/v10/a"]
    assert keys(db.scan("nothing/")) == []


def test_scan_prefix_keeps_keys_with_the_highest_code_point(db: Storage):
    """A prefix scan must not lose keys whose next character sorts after every other."""
    top = "\U0010ffff"
    db.write([Write(k, b"x") for k in ["p/a", f"p/{top}", f"p/{top}{top}x", "p0", f"q{top}"]])
    assert keys(db.scan("p/")) == ["p/a", f"p/{top}", f"p/{top}{top}x"]
    assert keys(db.scan(f"p/{top}")) == [f"p/{top}", f"p/{top}{top}x"]


def test_scan_after_is_strict_and_limit_pages(db: Storage):
    all_keys = [f"k/{i:02d}" for i in range(10)]
    db.write([Write(k, b"v") for k in all_keys])
    assert keys(db.scan("k/", after="k/03")) == all_keys[4:]
    assert keys(db.scan("k/", after="k/03", limit=2)) == ["k/04", "k/05"]
    assert keys(db.scan("k/", after="k/031")) == all_keys[4:]  # `after` need not exist
    assert keys(db.scan("k/", limit=0)) == []
    # `after` before the prefix range starts at the range; after its end yields nothing.
    assert keys(db.scan("k/", after="a")) == all_keys
    assert keys(db.scan("k/", after="k/")) == all_keys
    assert keys(db.scan("k/", after="z")) == []

    # Paging with `after` = last key seen visits every key exactly once.
    seen: list[str] = []
    after = None
    while page := keys(db.scan("k/", after=after, limit=3)):
        seen += page
        after = page[-1]
    assert seen == all_keys


def test_batch_is_all_or_nothing(db: Storage):
    db.write([Write("keep", b"old")])
    # A value the backend refuses (NOT NULL is enforced by the table) aborts the whole batch.
    with pytest.raises(StorageError):
        db.write([Write("keep", b"new"), Write("other", b"x"), Write(None, b"y")])  # type: ignore[arg-type]
    assert db.get("keep") == b"old"
    assert db.get("other") is None
    db.write([Write("keep", b"new")])  # the writer is usable after a failed batch
    assert db.get("keep") == b"new"


def test_a_second_handle_sees_committed_writes_at_once(open_db):
    a, b = open_db(), open_db()  # two processes, or two replicas on PostgreSQL
    a.write([Write("x", b"1")])
    assert b.get("x") == b"1"
    b.write([Write("x", b"2"), Write("y", b"3")])
    assert a.get("x") == b"2" and keys(a.scan("")) == ["x", "y"]


def test_append_numbers_from_one_without_gaps_and_reads_in_order(db: Storage):
    assert db.last("audit/a") is None and db.read("audit/a") == []
    assert db.append("audit/a", [b"1", b"2"]) == [1, 2]
    assert db.append("audit/a", [b"3"], sync=False) == [3]
    assert db.append("audit/b", [b"x"]) == [1]  # each stream counts on its own
    assert db.append("audit/a", []) == []
    assert db.read("audit/a") == [(1, b"1"), (2, b"2"), (3, b"3")]
    assert db.read("audit/a", after=1, limit=1) == [(2, b"2")]
    assert db.last("audit/a") == (3, b"3")
    assert db.streams("audit/") == ["audit/a", "audit/b"]
    assert db.streams("audit/a") == ["audit/a"]
    assert db.streams("nothing") == []


def test_append_after_is_a_compare_and_append(open_db):
    a, b = open_db(), open_db()
    assert a.append("s", [b"1"], after=0) == [1]
    with pytest.raises(StorageError):
        b.append("s", [b"other"], after=0)  # someone appended since: nothing is written
    assert b.append("s", [b"2", b"3"], after=1) == [2, 3]
    with pytest.raises(StorageError):
        a.append("s", [b"x"] * 1500, after=1)  # large batches too
    assert a.read("s") == [(1, b"1"), (2, b"2"), (3, b"3")]
    assert a.append("s", [b"y"] * 1500, after=3)[-1] == 1503


def test_concurrent_appends_from_two_handles_are_gapless(open_db):
    a, b = open_db(), open_db()
    got: list[int] = []
    lock = threading.Lock()

    def appender(db: Storage, tag: str) -> None:
        for n in range(30):
            seqs = db.append("log", [f"{tag}{n}".encode()] * 2)
            with lock:
                got.extend(seqs)

    threads = [threading.Thread(target=appender, args=(db, t)) for db, t in ((a, "a"), (b, "b"), (a, "c"), (b, "d"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 241))
    assert [seq for seq, _ in a.read("log")] == list(range(1, 241))


def test_write_and_append_is_atomic(db: Storage):
    assert db.write_and_append([Write("k", b"v")], "changes/v", [b"e1", b"e2"]) == [1, 2]
    assert db.get("k") == b"v" and db.last("changes/v") == (2, b"e2")
    with pytest.raises(StorageError):  # a refused change leaves no event, and the event no change
        db.write_and_append([Write("k", b"w"), Write(None, b"x")], "changes/v", [b"e3"])  # type: ignore[arg-type]
    assert db.get("k") == b"v" and db.last("changes/v") == (2, b"e2")
    assert db.write_and_append([], "changes/v", []) == []


def test_one_handle_leads_and_the_next_takes_over_when_it_closes(open_db):
    a, b = open_db(), open_db()  # two processes, or two replicas
    assert a.try_lead("scheduler") and a.try_lead("scheduler")  # held, and kept
    assert not b.try_lead("scheduler")
    assert b.try_lead("other")  # each name on its own
    a.close()  # or dies: the lock goes with its file descriptor / session
    assert b.try_lead("scheduler")


def test_heads_names_each_streams_last_number_in_one_call(open_db):
    a, b = open_db(), open_db()
    a.append("changes/x", [b"1", b"2"])
    b.write_and_append([Write("k", b"v")], "changes/y", [b"e"])
    assert b.heads(["changes/x", "changes/y", "changes/none"]) == {"changes/x": 2, "changes/y": 1, "changes/none": 0}
    assert a.heads([]) == {}


class _Refuse:
    """A commit guard that refuses, as the audit layer's does when the intent record cannot be written."""

    def before_commit(self) -> None:
        from strongroom.storage.guard import CommitRefused

        raise CommitRefused("audit sink unavailable")

    async def before_commit_async(self) -> None:
        self.before_commit()


def test_a_refusing_commit_guard_writes_nothing(db: Storage):
    """Every commit path asks the context's guard first (storage/guard.py), on every backend."""
    import asyncio

    from strongroom.storage import guard
    from strongroom.storage.guard import CommitRefused

    token = guard.use(_Refuse())
    try:
        with pytest.raises(CommitRefused):
            db.write([Write("g/a", b"1")])
        with pytest.raises(CommitRefused):
            db.write_and_append([Write("g/b", b"1")], "g-feed", [b"e"])
        with pytest.raises(CommitRefused):
            asyncio.run(db.write_and_append_async([Write("g/c", b"1")], "g-feed", [b"e"]))
    finally:
        guard.reset(token)
    assert keys(db.scan("g/")) == [] and db.last("g-feed") is None
    db.write([Write("g/a", b"1")])  # without the guard the same commit goes ahead
    assert db.get("g/a") == b"1"
