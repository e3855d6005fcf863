"""SQLite backend: the embedded default.

WAL mode with `synchronous=FULL`, so a batch is on disk before `write` returns
and survives `kill -9`. Reads use their own connection so they never wait for a
write's fsync; writes are serialised by a lock (SQLite allows one writer).

Concurrent `write`/`write_and_append` calls are group-committed (storage/group.py):
one transaction and one fsync for all that arrive while the previous one commits,
each call still with its own outcome.

Across processes SQLite's write lock decides, and its default busy handler sleeps
in steps of 1, 2, 5, 10 ... 100 ms: a process that lost the lock once mostly kept
losing it to the other one, which re-takes it microseconds after each commit
(the bench's write p99 was ~0.5-0.9 s). Write transactions therefore start with
a short-poll retry of our own (`_retry_busy`) instead.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from strongroom.storage.base import StorageError, Write
from strongroom.storage.base import prefix_end as _prefix_end
from strongroom.storage.batches import GroupCommitWrites

T = TypeVar("T")

# Each entry upgrades the schema by one version; never edit a released entry.
MIGRATIONS: list[str] = [
    "CREATE TABLE entries (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
    # Append-only logs (audit; later the change feed): numbered entries per stream.
    "CREATE TABLE log (stream TEXT NOT NULL, seq INTEGER NOT NULL, value BLOB NOT NULL, "
    "PRIMARY KEY (stream, seq)) WITHOUT ROWID",
]


_APPEND_CHUNK = 1000  # rows per INSERT; 3 parameters each stays far below SQLite's 32766
_BUSY_TIMEOUT = 30.0  # seconds a write waits for another process's write lock, as before
_BUSY_POLL = (0.0002, 0.0005, 0.001)  # then every _BUSY_POLL[-1]: a commit takes a few ms


def _retry_busy(run: Callable[[], T]) -> T:
    """`run()`, again after a short sleep while another process holds SQLite's write lock.

    Only for statements that take the write lock first (BEGIN IMMEDIATE, a lone
    INSERT): failing with SQLITE_BUSY they changed nothing, so running them again is safe.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT
    attempt = 0
    while True:
        try:
            return run()
        except sqlite3.OperationalError as exc:
            if (getattr(exc, "sqlite_errorcode", 5) & 0xFF) != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        time.sleep(_BUSY_POLL[min(attempt, len(_BUSY_POLL) - 1)])
        attempt += 1


def _apply(c: sqlite3.Connection, batch: list[Write]) -> None:
    """The key/value part of a transaction (the caller holds BEGIN ... COMMIT)."""
    for w in batch:
        if w.value is None:
            c.execute("DELETE FROM entries WHERE key = ?", (w.key,))
        else:
            c.execute(
                "INSERT INTO entries (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (w.key, w.value),
            )


class SQLiteStorage(GroupCommitWrites):
    _commit_thread_name = "sqlite-commit"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only from the first byte: SQLite would create the file (and its -wal/-shm, which copy the
        # database's mode) with the process umask, readable by other local users when the umask is 022.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self.path = path
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._writer = self._connect()
        self._writer.execute("PRAGMA busy_timeout=0")  # writes wait in _retry_busy, polling finely
        self._unsynced: sqlite3.Connection | None = None
        self._init_writes()
        self._leads: dict[str, int] = {}
        self._migrate()

    @classmethod
    def from_url(cls, url: str) -> SQLiteStorage:
        # sqlite:///relative/path or sqlite:////absolute/path, as SQLAlchemy spells it.
        rest = url.removeprefix("sqlite:")
        if not rest.startswith("///"):
            raise StorageError(f"bad sqlite URL {url!r}: expected sqlite:///PATH")
        return cls(Path(rest[3:]))

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            # A reader per threadpool thread (up to 40): at SQLite's default 2 MB page cache
            # each, reads alone grew a worker by ~70 MB. 512 KiB still holds every interior
            # page of the tables; a leaf miss is a pread from the OS cache (~microseconds),
            # and any change in another connection empties a WAL reader's cache anyway.
            conn.execute("PRAGMA cache_size=-512")
        return conn

    def _migrate(self) -> None:
        with self._write_lock:
            c = self._writer
            _retry_busy(lambda: c.execute("BEGIN IMMEDIATE"))
            try:
                c.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
                done = {row[0] for row in c.execute("SELECT version FROM schema_migrations")}
                for version, sql in enumerate(MIGRATIONS, start=1):
                    if version not in done:
                        c.execute(sql)
                        c.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def schema_version(self) -> int:
        row = self._reader().execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def get(self, key: str) -> bytes | None:
        try:
            row = self._reader().execute("SELECT value FROM entries WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite read failed: {exc.__class__.__name__}") from None
        return None if row is None else bytes(row[0])

    def scan(self, prefix: str, after: str | None = None, limit: int | None = None) -> Iterator[tuple[str, bytes]]:
        low = after if after is not None and after > prefix else prefix
        op = ">" if after is not None and after >= prefix else ">="
        end = _prefix_end(prefix)
        sql = f"SELECT key, value FROM entries WHERE key {op} ?{'' if end is None else ' AND key < ?'} ORDER BY key"
        params: tuple[Any, ...] = (low,) if end is None else (low, end)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        try:
            rows = self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite scan failed: {exc.__class__.__name__}") from None
        for key, value in rows:
            yield key, bytes(value)

    def _commit_group(self, items: list[tuple[list[Write], str | None, list[bytes]]]) -> list[list[int] | BaseException]:
        """One transaction for every item; the outcome of each (its sequence numbers, or its error).

        An item SQLite refuses is left out and the transaction done again without
        it, so it fails alone; the commit failing fails them all (raised).
        """
        outcomes: list[list[int] | BaseException] = [[] for _ in items]
        todo = list(range(len(items)))
        with self._write_lock:
            c = self._writer
            while todo:
                culprit = None
                try:
                    _retry_busy(lambda: c.execute("BEGIN IMMEDIATE"))  # the sequence reads below stay ours
                    for i in todo:
                        culprit = i
                        outcomes[i] = self._apply_item(c, *items[i])
                    culprit = None
                    c.execute("COMMIT")
                    return outcomes
                except BaseException as exc:
                    if c.in_transaction:  # never leave the writer inside a transaction
                        try:
                            c.execute("ROLLBACK")
                        except sqlite3.Error:
                            pass
                    if culprit is None or not isinstance(exc, Exception):  # BEGIN or COMMIT: the whole group failed
                        if isinstance(exc, sqlite3.Error):
                            raise StorageError(f"sqlite write failed: {exc.__class__.__name__}") from None
                        raise
                    outcomes[culprit] = (
                        StorageError(f"sqlite write failed: {exc.__class__.__name__}") if isinstance(exc, sqlite3.Error) else exc
                    )
                    todo.remove(culprit)
        return outcomes

    @staticmethod
    def _apply_item(c: sqlite3.Connection, batch: list[Write], stream: str | None, entries: list[bytes]) -> list[int]:
        _apply(c, batch)
        if stream is None or not entries:
            return []
        row = c.execute("SELECT MAX(seq) FROM log WHERE stream = ?", (stream,)).fetchone()
        first = int(row[0] or 0) + 1
        c.executemany(
            "INSERT INTO log (stream, seq, value) VALUES (?, ?, ?)",
            [(stream, i, e) for i, e in enumerate(entries, start=first)],
        )
        return list(range(first, first + len(entries)))

    def _log_connection(self) -> sqlite3.Connection:
        """A second writer connection without fsync on commit, for `append(sync=False)`.

        synchronous is per connection; a separate one keeps the key/value writer at
        FULL without switching it back and forth. Both are used under `_write_lock`.
        """
        conn = self._unsynced
        if conn is None:
            conn = self._unsynced = self._connect()
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=0")  # waits in _retry_busy, like the writer
        return conn

    def append(
        self, stream: str, entries: list[bytes], *, sync: bool = True, after: int | None = None
    ) -> list[int]:
        if not entries:
            return []
        if after is not None and len(entries) <= _APPEND_CHUNK:
            return self._append_after(stream, entries, sync, after)
        with self._write_lock:
            c = self._writer if sync else self._log_connection()
            try:
                # BEGIN IMMEDIATE takes SQLite's write lock before reading the last
                # number, so appenders in other processes cannot take the same one.
                _retry_busy(lambda: c.execute("BEGIN IMMEDIATE"))
                row = c.execute("SELECT MAX(seq) FROM log WHERE stream = ?", (stream,)).fetchone()
                first = int(row[0] or 0) + 1
                if after is not None and first != after + 1:
                    c.execute("ROLLBACK")
                    raise StorageError(f"log stream {stream!r} ends at {first - 1}, not {after}")
                # Multi-row INSERTs: one statement step per chunk, not one per entry.
                for start in range(0, len(entries), _APPEND_CHUNK):
                    chunk = entries[start : start + _APPEND_CHUNK]
                    params: list[Any] = []
                    for i, entry in enumerate(chunk, start=first + start):
                        params += (stream, i, entry)
                    c.execute("INSERT INTO log (stream, seq, value) VALUES " + ",".join(["(?, ?, ?)"] * len(chunk)), params)
                c.execute("COMMIT")
            except sqlite3.Error as exc:
                try:
                    c.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise StorageError(f"sqlite append failed: {exc.__class__.__name__}") from None
        return list(range(first, first + len(entries)))

    def _append_after(self, stream: str, entries: list[bytes], sync: bool, after: int) -> list[int]:
        """Compare-and-append as one statement (atomic on its own): fewest trips into SQLite."""
        params: list[Any] = []
        for i, entry in enumerate(entries, start=after + 1):
            params += (stream, i, entry)
        params += (stream, after)
        sql = (
            "INSERT INTO log (stream, seq, value) SELECT column1, column2, column3 FROM (VALUES "
            + ",".join(["(?, ?, ?)"] * len(entries))
            + ") WHERE (SELECT COALESCE(MAX(seq), 0) FROM log WHERE stream = ?) = ?"
        )
        with self._write_lock:
            c = self._writer if sync else self._log_connection()
            try:
                inserted = _retry_busy(lambda: c.execute(sql, params)).rowcount
            except sqlite3.Error as exc:
                raise StorageError(f"sqlite append failed: {exc.__class__.__name__}") from None
        if inserted != len(entries):
            raise StorageError(f"log stream {stream!r} does not end at {after}")
        return list(range(after + 1, after + 1 + len(entries)))

    def streams(self, prefix: str) -> list[str]:
        out: list[str] = []
        end = _prefix_end(prefix)
        after = None
        try:
            while True:  # one index seek per stream, not a scan of every entry
                if after is None:
                    row = self._reader().execute(
                        "SELECT stream FROM log WHERE stream >= ? ORDER BY stream LIMIT 1", (prefix,)
                    ).fetchone()
                else:
                    row = self._reader().execute(
                        "SELECT stream FROM log WHERE stream > ? ORDER BY stream LIMIT 1", (after,)
                    ).fetchone()
                if row is None or (end is not None and row[0] >= end):
                    return out
                out.append(row[0])
                after = row[0]
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite read failed: {exc.__class__.__name__}") from None

    def read(self, stream: str, after: int = 0, limit: int | None = None) -> list[tuple[int, bytes]]:
        sql = "SELECT seq, value FROM log WHERE stream = ? AND seq > ? ORDER BY seq"
        params: tuple[Any, ...] = (stream, after)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        try:
            rows = self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite read failed: {exc.__class__.__name__}") from None
        return [(int(seq), bytes(value)) for seq, value in rows]

    def heads(self, streams: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        try:
            for stream in streams:  # one index seek each, in-process: no trip to save
                row = self._reader().execute("SELECT MAX(seq) FROM log WHERE stream = ?", (stream,)).fetchone()
                out[stream] = int(row[0] or 0)
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite read failed: {exc.__class__.__name__}") from None
        return out

    def last(self, stream: str) -> tuple[int, bytes] | None:
        try:
            row = self._reader().execute(
                "SELECT seq, value FROM log WHERE stream = ? ORDER BY seq DESC LIMIT 1", (stream,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite read failed: {exc.__class__.__name__}") from None
        return None if row is None else (int(row[0]), bytes(row[1]))

    def listen(self, on_heads: Callable[[dict[str, int] | None], None]) -> Callable[[], None] | None:
        """No push on SQLite: the feed watcher polls `heads` (a few µs per stream, on this machine)."""
        return None

    def count_members(self, group: str) -> int | None:
        """One machine: the server counts its own workers."""
        return None

    def try_lead(self, name: str) -> bool:
        """An exclusive flock on a file beside the database: the kernel lets go when the holder dies."""
        if name in self._leads:
            return True
        fd = os.open(f"{self.path}.lead-{name}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._leads[name] = fd
        return True

    def close(self) -> None:
        for fd in self._leads.values():
            os.close(fd)
        self._leads.clear()
        self._close_writes()
        self._writer.close()
        if self._unsynced is not None:
            self._unsynced.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
