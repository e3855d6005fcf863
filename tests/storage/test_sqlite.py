"""What is SQLite's own: its file, WAL and fsync settings, migrations, URLs (the shared contract: test_contract.py)."""

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


def test_the_database_and_its_wal_are_owner_only_whatever_the_umask(tmp_path: Path):
    """Another local user must not read the sealed records, even when the process umask is 022."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        storage = SQLiteStorage(tmp_path / "s.db")
        storage.write([Write("a", b"1")])
        files = sorted(p for p in tmp_path.iterdir() if p.name.startswith("s.db"))
        assert {p.name for p in files} >= {"s.db", "s.db-wal"}
        for p in files:
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, (p.name, oct(p.stat().st_mode))
        storage.close()
    finally:
        os.umask(old)
