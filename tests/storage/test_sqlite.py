"""The SQLite backend on a real file: ordering, prefix scans, paging, atomic batches, migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from strongroom.storage import StorageError, Write, open_storage
from strongroom.storage.sqlite import MIGRATIONS, SQLiteStorage


@pytest.fixture
def db(tmp_path: Path):
    storage = SQLiteStorage(tmp_path / "s.db")
    yield storage
    storage.close()


def keys(rows) -> list[str]:
    return [k for k, _ in rows]


def test_get_put_overwrite_delete(db: SQLiteStorage):
    assert db.get("a") is None
    db.write([Write("a", b"1")])
    assert db.get("a") == b"1"
    db.write([Write("a", b"2")])
    assert db.get("a") == b"2"
    db.write([Write("a", None)])
    assert db.get("a") is None
    db.write([Write("never-there", None)])  # deleting a missing key is not an error


def test_scan_is_in_bytewise_key_order(db: SQLiteStorage):
    names = ["b", "a", "B", "a/2", "a/10", "a/1", "é", "z", "a-", "\U0010ffff", "\U0010ffffz"]
    db.write([Write(n, n.encode()) for n in names])
    got = keys(db.scan(""))
    assert got == sorted(names, key=lambda s: s.encode())
    assert [v for _, v in db.scan("")] == [k.encode() for k in got]


def test_scan_prefix_excludes_neighbours(db: SQLiteStorage):
    db.write([Write(k, b"x") for k in ["sec", "secrets/v1/a", "secrets/v1/b", "secrets/v10/a", "secrets/v2/a", "secretz"]])
    assert keys(db.scan("secrets/v1/")) == ["secrets/v1/a", "secrets/v1/b"]
    assert keys(db.scan("secrets/v1")) == ["secrets/v1/a", "secrets/v1/b", "secrets/v10/a"]
    assert keys(db.scan("nothing/")) == []


def test_scan_prefix_keeps_keys_with_the_highest_code_point(db: SQLiteStorage):
    """A prefix scan must not lose keys whose next character sorts after every other."""
    top = "\U0010ffff"
    db.write([Write(k, b"x") for k in ["p/a", f"p/{top}", f"p/{top}{top}x", "p0", f"q{top}"]])
    assert keys(db.scan("p/")) == ["p/a", f"p/{top}", f"p/{top}{top}x"]
    assert keys(db.scan(f"p/{top}")) == [f"p/{top}", f"p/{top}{top}x"]


def test_scan_after_is_strict_and_limit_pages(db: SQLiteStorage):
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


def test_batch_is_all_or_nothing(db: SQLiteStorage, tmp_path: Path):
    db.write([Write("keep", b"old")])
    # A value SQLite refuses (NOT NULL is enforced by the table) aborts the whole batch.
    with pytest.raises(StorageError):
        db.write([Write("keep", b"new"), Write("other", b"x"), Write(None, b"y")])  # type: ignore[arg-type]
    assert db.get("keep") == b"old"
    assert db.get("other") is None
    db.write([Write("keep", b"new")])  # the writer is usable after a failed batch
    assert db.get("keep") == b"new"


def test_written_data_survives_reopen_and_other_connections_see_it(tmp_path: Path):
    path = tmp_path / "s.db"
    first = SQLiteStorage(path)
    first.write([Write("a", b"1"), Write("b", b"2")])
    # A separate process would see the committed batch: check with a raw connection.
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT value FROM entries WHERE key='b'").fetchone()[0] == b"2"
    raw.close()
    first.close()
    second = SQLiteStorage(path)
    assert second.get("a") == b"1"
    second.close()


def test_wal_and_full_sync_are_on(db: SQLiteStorage):
    conn = db._writer
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_migrations_are_idempotent(tmp_path: Path):
    path = tmp_path / "s.db"
    first = SQLiteStorage(path)
    assert first.schema_version() == len(MIGRATIONS)
    first.write([Write("a", b"1")])
    first.close()
    for _ in range(2):
        again = SQLiteStorage(path)
        assert again.schema_version() == len(MIGRATIONS)
        assert again.get("a") == b"1"
        again.close()
    raw = sqlite3.connect(path)
    rows = raw.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    raw.close()
    assert [r[0] for r in rows] == list(range(1, len(MIGRATIONS) + 1))


def test_storage_urls(tmp_path: Path):
    s = open_storage(f"sqlite:///{tmp_path / 'u.db'}")
    s.write([Write("a", b"1")])
    assert (tmp_path / "u.db").exists()
    s.close()
    with pytest.raises(StorageError):
        open_storage("sqlite:relative.db")
    with pytest.raises(StorageError):
        open_storage("mysql://x")
