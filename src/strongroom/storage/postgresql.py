"""PostgreSQL backend: what replicas share.

Same contract as the SQLite backend, on a server every replica reaches:

- Every write commits before it returns (`synchronous_commit` is left at the
  server's setting, `on` by default), so "answered" means "durable", as on SQLite.
- Streams number their entries from a counter row per stream (`log_heads`) that
  the appending transaction updates, and so locks until it commits: numbers are
  gap-free and in commit order across every process and replica. The change feed
  appends in the same transaction as the change (`write_and_append`).
- Concurrent writes of one process are group-committed (storage/group.py,
  storage/asyncgroup.py) as on SQLite: one transaction, one WAL flush and one round
  trip for the commit, for all that arrive while the previous commit runs.
- A connection pool (psycopg_pool) reconnects by itself: while PostgreSQL is
  unreachable every call raises StorageError (the server answers 503 with
  Retry-After) and nothing is half-written, since a transaction that did not
  commit left nothing behind.
- The schema is created and migrated on start under an advisory lock (replicas
  may start together), and a database migrated by a newer Strongroom is refused.

Keys and stream names use the "C" collation: bytewise UTF-8 order, which is code
point order, as the interface promises. The URL's password never appears in a
message (`mask_url`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pgerrors
from psycopg_pool import ConnectionPool, PoolTimeout

from strongroom.storage import pgnotify
from strongroom.storage.base import StorageError, Write, mask_url, prefix_end
from strongroom.storage.batches import GroupCommitWrites

T = TypeVar("T")

# Each entry upgrades the schema by one version; never edit a released entry.
MIGRATIONS: list[str] = [
    'CREATE TABLE entries (key TEXT COLLATE "C" PRIMARY KEY, value BYTEA NOT NULL)',
    'CREATE TABLE log (stream TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL, value BYTEA NOT NULL, '
    "PRIMARY KEY (stream, seq))",
    # One row per stream: its last sequence number. Appenders lock it, which orders them.
    'CREATE TABLE log_heads (stream TEXT COLLATE "C" PRIMARY KEY, last BIGINT NOT NULL)',
]

MIGRATION_LOCK = 0x5354524F4E47  # pg_advisory_xact_lock key ("STRONG"): one migrator at a time
POOL_MAX = 16  # connections per process; a server process runs its blocking work on <= 40 threads
POOL_TIMEOUT = 5.0  # seconds a call waits for a connection before it fails (503)
# While PostgreSQL is known to be unreachable, a call waits only this long: server reads run on
# the event loop, which must not stall POOL_TIMEOUT per request through an outage.
OUTAGE_TIMEOUT = 0.1
CONNECT_TIMEOUT = 5  # seconds libpq waits for one host, unless the URL says otherwise
# The pool retries a lost connection with a doubling delay until this many seconds pass, then
# gives up until the next request asks for one (which retries at once). Short, so that after a
# long outage the server notices PostgreSQL is back within seconds, not after a backoff of minutes.
RECONNECT_TIMEOUT = 8.0
SESSION_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
_RETRY_GROUP = 3  # a deadlock or serialization failure aborts a whole group: run it again

_DISCONNECTED = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
_RETRYABLE = (pgerrors.DeadlockDetected, pgerrors.SerializationFailure)


def _password(url: str) -> str | None:
    try:
        return psycopg.conninfo.conninfo_to_dict(url).get("password")  # type: ignore[return-value]
    except psycopg.Error:
        return None


class PostgreSQLStorage(GroupCommitWrites):
    _commit_thread_name = "pg-commit"

    def __init__(self, url: str, *, pool_max: int = POOL_MAX, pool_timeout: float = POOL_TIMEOUT) -> None:
        self.url = url
        self.safe_url = mask_url(url)
        self._secret = _password(url)
        try:
            params = psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.Error:
            raise StorageError(f"bad PostgreSQL URL {self.safe_url!r}") from None
        kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in params:
            kwargs["connect_timeout"] = CONNECT_TIMEOUT
        if "application_name" not in params:
            kwargs["application_name"] = "strongroom"
        self._kwargs = kwargs
        self._params = params
        self._pool_timeout = pool_timeout
        self._unreachable = False  # set by a failed connection, cleared by the next success
        self._migrate()
        self._pool = ConnectionPool(
            url, kwargs=kwargs, min_size=1, max_size=pool_max, timeout=pool_timeout,
            open=False, name="strongroom", reconnect_timeout=RECONNECT_TIMEOUT,
        )
        self._pool.open(wait=False)
        self._init_writes()
        self._lead_lock = threading.Lock()
        self._leads: dict[str, psycopg.Connection] = {}
        self._candidates: dict[str, psycopg.Connection] = {}  # sessions that tried and may try again
        self._members: dict[str, psycopg.Connection] = {}  # sessions holding a group's shared lock
        self._listeners: list[pgnotify.StreamListener] = []

    @classmethod
    def from_url(cls, url: str) -> PostgreSQLStorage:
        return cls(url)

    # -- errors ------------------------------------------------------------

    def _error(self, what: str, exc: BaseException) -> StorageError:
        """A StorageError naming the failure, never the password, never row data."""
        if isinstance(exc, PoolTimeout):
            detail = f"no connection to PostgreSQL within {self._pool_timeout:g} s"
        elif isinstance(exc, psycopg.Error):
            state = getattr(exc, "sqlstate", None)
            detail = exc.__class__.__name__ + (f" (SQLSTATE {state})" if state else "")
        else:
            detail = exc.__class__.__name__
        return StorageError(f"postgresql {what} failed: {detail}")

    def _connect_error(self, exc: BaseException) -> StorageError:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        if self._secret:
            text = text.replace(self._secret, "***")
        return StorageError(f"cannot use PostgreSQL at {self.safe_url}: {mask_url(text)}")

    # -- schema ------------------------------------------------------------

    def _migrate(self) -> None:
        try:
            with psycopg.connect(self.url, **self._kwargs) as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
                done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
                newest = max(done, default=0)
                if newest > len(MIGRATIONS):
                    raise StorageError(
                        f"the PostgreSQL database at {self.safe_url} has schema version {newest}, newer than this "
                        f"Strongroom knows ({len(MIGRATIONS)}): a newer Strongroom migrated it; upgrade this one"
                    )
                for version, sql in enumerate(MIGRATIONS, start=1):
                    if version not in done:
                        conn.execute(sql)
                        conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
        except StorageError:
            raise
        except psycopg.Error as exc:
            raise self._connect_error(exc) from None

    def schema_version(self) -> int:
        return int(self._read("read", lambda c: (c.execute("SELECT MAX(version) FROM schema_migrations").fetchone() or (None,))[0]) or 0)

    # -- reads -------------------------------------------------------------

    def _read(self, what: str, run: Callable[[psycopg.Connection], T]) -> T:
        """`run(conn)` on a pooled connection; once more on a fresh one if the first had gone stale."""
        for attempt in (1, 2):
            try:
                with self._pool.connection(timeout=self._wait()) as conn:
                    result = run(conn)
                self._unreachable = False
                return result
            except PoolTimeout as exc:
                self._unreachable = True
                raise self._error(what, exc) from None
            except _DISCONNECTED as exc:  # e.g. PostgreSQL restarted: the pool drops the broken connection
                if attempt == 2:
                    self._unreachable = True
                    raise self._error(what, exc) from None
            except psycopg.Error as exc:
                raise self._error(what, exc) from None
        raise AssertionError("unreachable")

    def _wait(self) -> float:
        """How long to wait for a pooled connection: short while PostgreSQL is known to be away."""
        return OUTAGE_TIMEOUT if self._unreachable else self._pool_timeout

    def get(self, key: str) -> bytes | None:
        row = self._read("read", lambda c: c.execute("SELECT value FROM entries WHERE key = %s", (key,)).fetchone())
        return None if row is None else bytes(row[0])

    def scan(self, prefix: str, after: str | None = None, limit: int | None = None) -> Iterator[tuple[str, bytes]]:
        low = after if after is not None and after > prefix else prefix
        op = ">" if after is not None and after >= prefix else ">="
        end = prefix_end(prefix)
        sql = f"SELECT key, value FROM entries WHERE key {op} %s{'' if end is None else ' AND key < %s'} ORDER BY key"
        params: tuple[Any, ...] = (low,) if end is None else (low, end)
        if limit is not None:
            sql += " LIMIT %s"
            params += (limit,)
        rows = self._read("scan", lambda c: c.execute(sql, params).fetchall())
        for key, value in rows:
            yield key, bytes(value)

    def read(self, stream: str, after: int = 0, limit: int | None = None) -> list[tuple[int, bytes]]:
        sql = "SELECT seq, value FROM log WHERE stream = %s AND seq > %s ORDER BY seq"
        params: tuple[Any, ...] = (stream, after)
        if limit is not None:
            sql += " LIMIT %s"
            params += (limit,)
        rows = self._read("read", lambda c: c.execute(sql, params).fetchall())
        return [(int(seq), bytes(value)) for seq, value in rows]

    def last(self, stream: str) -> tuple[int, bytes] | None:
        row = self._read("read", lambda c: c.execute(
            "SELECT seq, value FROM log WHERE stream = %s ORDER BY seq DESC LIMIT 1", (stream,)
        ).fetchone())
        return None if row is None else (int(row[0]), bytes(row[1]))

    def heads(self, streams: list[str]) -> dict[str, int]:
        rows = self._read("read", lambda c: c.execute(
            "SELECT stream, last FROM log_heads WHERE stream = ANY(%s)", (list(streams),)
        ).fetchall())
        found = {stream: int(last) for stream, last in rows}
        return {stream: found.get(stream, 0) for stream in streams}

    def streams(self, prefix: str) -> list[str]:
        end = prefix_end(prefix)
        sql = "SELECT stream FROM log_heads WHERE stream >= %s AND last > 0"
        params: tuple[Any, ...] = (prefix,)
        if end is not None:
            sql += " AND stream < %s"
            params += (end,)
        rows = self._read("read", lambda c: c.execute(sql + " ORDER BY stream", params).fetchall())
        return [r[0] for r in rows]

    # -- writes (write, write_and_append[_async]: storage/batches.py) -------

    def _commit_group(self, items: list[tuple[list[Write], str | None, list[bytes]]]) -> list[list[int] | BaseException]:
        """One transaction for every item, in two round trips; the outcome of each (its sequence numbers, or its error).

        The group's statements go out in pipeline mode: the stream counters are locked and
        read in one statement (its numbers are needed for the entries), then every write,
        append, counter update, NOTIFY and the COMMIT leave together and are answered at
        once, instead of one round trip (and one wake-up of this thread) per statement.
        A statement PostgreSQL refuses aborts the pipeline without saying which item sent
        it, so then the group runs again statement by statement (`_commit_group_stepwise`),
        which fails that item alone.
        """
        retries = 0
        while True:
            try:
                with self._pool.connection(timeout=self._wait()) as conn:
                    with conn.pipeline(), conn.transaction(), conn.cursor() as cur:
                        streams = sorted({s for _, s, e in items if s is not None and e})
                        heads = _lock_heads(cur, streams)
                        outcomes: list[list[int] | BaseException] = [_apply_item(cur, heads, *item) for item in items]
                        if streams:
                            cur.execute(
                                "UPDATE log_heads SET last = h.last FROM unnest(%s::text[], %s::bigint[]) AS h(stream, last) "
                                "WHERE log_heads.stream = h.stream",
                                (streams, [heads[s] for s in streams]),
                            )
                        _notify(cur, heads)
                self._unreachable = False
                return outcomes
            except _RETRYABLE as exc:
                retries += 1
                if retries > _RETRY_GROUP:
                    raise self._error("write", exc) from None
            except _DISCONNECTED as exc:
                self._unreachable = True
                raise self._error("write", exc) from None
            except Exception:  # one item was refused (or could not be sent): find it
                return self._commit_group_stepwise(items)

    def _commit_group_stepwise(self, items: list[tuple[list[Write], str | None, list[bytes]]]) -> list[list[int] | BaseException]:
        """One transaction for every item, a round trip per statement; the outcome of each (its sequence numbers, or its error).

        An item PostgreSQL refuses is left out and the transaction run again
        without it, so it fails alone; a lost connection or a failed commit fails
        them all (raised). A deadlock with another process reruns the group.
        """
        outcomes: list[list[int] | BaseException] = [[] for _ in items]
        todo = list(range(len(items)))
        retries = 0
        while todo:
            culprit = None
            try:
                with self._pool.connection(timeout=self._wait()) as conn, conn.transaction(), conn.cursor() as cur:
                    # Lock the counters of every stream in the group in one order, so two
                    # processes' groups cannot each hold one the other waits for.
                    streams = sorted({s for i in todo if (s := items[i][1]) is not None and items[i][2]})
                    heads = _lock_heads(cur, streams)
                    for i in todo:
                        culprit = i
                        outcomes[i] = _apply_item(cur, heads, *items[i])
                    culprit = None
                    for stream in streams:
                        cur.execute("UPDATE log_heads SET last = %s WHERE stream = %s", (heads[stream], stream))
                    _notify(cur, heads)
                self._unreachable = False
                return outcomes
            except _RETRYABLE as exc:
                retries += 1
                if retries > _RETRY_GROUP:
                    raise self._error("write", exc) from None
            except _DISCONNECTED as exc:
                self._unreachable = True
                raise self._error("write", exc) from None
            except Exception as exc:
                if culprit is None:
                    raise self._error("write", exc) from None
                outcomes[culprit] = self._error("write", exc) if isinstance(exc, psycopg.Error) else exc
                todo.remove(culprit)
        return outcomes

    def append(
        self, stream: str, entries: list[bytes], *, sync: bool = True, after: int | None = None
    ) -> list[int]:
        if not entries:
            return []
        try:
            # Pipeline mode: two round trips (the counter's number, then the rest with the COMMIT).
            with self._pool.connection(timeout=self._wait()) as conn, conn.pipeline(), conn.transaction(), conn.cursor() as cur:
                if not sync:  # visible at once; durable with the next synchronous commit (the caller keeps a copy)
                    cur.execute("SET LOCAL synchronous_commit = off")
                last = _lock_heads(cur, [stream])[stream]
                if after is not None and last != after:
                    raise StorageError(f"log stream {stream!r} ends at {last}, not {after}")
                cur.executemany(
                    "INSERT INTO log (stream, seq, value) VALUES (%s, %s, %s)",
                    [(stream, i, e) for i, e in enumerate(entries, start=last + 1)],
                )
                cur.execute("UPDATE log_heads SET last = %s WHERE stream = %s", (last + len(entries), stream))
        except StorageError:
            raise
        except (psycopg.Error, PoolTimeout) as exc:
            if isinstance(exc, _DISCONNECTED):
                self._unreachable = True
            raise self._error("append", exc) from None
        self._unreachable = False
        return list(range(last + 1, last + 1 + len(entries)))

    # -- notifications -----------------------------------------------------

    def listen(self, on_heads: pgnotify.OnHeads) -> Callable[[], None]:
        """Push instead of poll: `on_heads({stream: last})` when a change-feed append commits anywhere.

        One LISTEN connection (outside the pool) per call; `on_heads({})` on each
        (re)connection (re-read the heads), `on_heads(None)` on its loss. Returns the
        function that stops listening (`close` stops every listener too).
        """
        listener = pgnotify.StreamListener(self.url, self._session_kwargs("listen"), on_heads)
        with self._lead_lock:
            self._listeners.append(listener)

        def stop() -> None:
            with self._lead_lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)
            listener.close()

        return stop

    # -- leadership --------------------------------------------------------

    def try_lead(self, name: str) -> bool:
        """A session advisory lock on a connection of its own, outside the pool.

        PostgreSQL lets go when that session ends, so a replica that dies (or
        loses its connection) hands leadership over as soon as the server notices.
        A holder checks its session on every call: one that was cut off has lost
        the lock (another may hold it now) and must try again. A follower keeps
        its connection too, so trying every few seconds costs one query, not a
        connection. The session's application_name says `strongroom lead <pid>`,
        so `pg_stat_activity` and `pg_locks` tell which process leads.
        """
        key = _lock_key(f"strongroom-lead/{name}")
        with self._lead_lock:
            conn = self._leads.get(name)
            try:
                if conn is not None:
                    conn.execute("SELECT 1")
                    return True
                conn = self._candidates.pop(name, None)
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.url, **self._session_kwargs("lead"))
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]  # type: ignore[index]
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                self._leads.pop(name, None)
                return False
            if got:
                self._leads[name] = conn
                return True
            self._candidates[name] = conn
            return False

    def count_members(self, group: str) -> int | None:
        """Join `group` (once, for this handle's life) and count the live handles that joined it.

        Membership is a shared advisory lock held by a session of its own: it ends
        with the process (PostgreSQL notices a killed replica's closed connection at
        once), so the count is of live server processes across every replica, with
        no heartbeat rows to write or expire. None while PostgreSQL cannot be asked.
        """
        key = _lock_key(f"strongroom-members/{group}")
        unsigned = key & 0xFFFFFFFFFFFFFFFF
        with self._lead_lock:
            conn = self._members.get(group)
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.url, **self._session_kwargs("member"))
                    conn.execute("SELECT pg_advisory_lock_shared(%s)", (key,))  # never waits: no one locks it exclusively
                    self._members[group] = conn
                row = conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                    "AND classid = %s::oid AND objid = %s::oid "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                    (unsigned >> 32, unsigned & 0xFFFFFFFF),
                ).fetchone()
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                self._members.pop(group, None)
                return None
        return max(1, int(row[0]))  # type: ignore[index]

    def _session_kwargs(self, role: str) -> dict[str, Any]:
        """Connection arguments of a session of our own (leadership, membership, LISTEN), named for pg_stat_activity.

        These sessions hold locks that must go when their replica does. A killed process
        closes its sockets and PostgreSQL lets go at once; a replica whose machine or
        network is lost sends nothing, and without keepalives its locks would stay until
        the kernel's default of two hours. So both ends probe an idle session every 5 s
        after 10 s of silence and give up after 3 misses (~25 s), unless the URL sets them.
        """
        kwargs = dict(self._kwargs)
        if kwargs.get("application_name") == "strongroom":
            kwargs["application_name"] = f"strongroom {role} {os.getpid()}"
        for name, value in SESSION_KEEPALIVES.items():
            if name not in self._params:
                kwargs[name] = value
        if "options" not in self._params:  # the server's side of the same socket
            kwargs["options"] = " ".join(f"-c tcp_{n}={v}" for n, v in SESSION_KEEPALIVES.items() if n != "keepalives")
        return kwargs

    def close(self) -> None:
        with self._lead_lock:
            for conn in [*self._leads.values(), *self._candidates.values(), *self._members.values()]:
                conn.close()
            self._leads.clear()
            self._candidates.clear()
            self._members.clear()
            listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.close()
        self._close_writes()
        self._pool.close()


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for `name`."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _notify(cur: psycopg.Cursor, heads: dict[str, int]) -> None:
    """Tell every listening process which streams grew, delivered when (and if) this transaction commits."""
    payloads = [p for stream, last in heads.items() if (p := pgnotify.payload(stream, last)) is not None]
    if payloads:
        args: list[str] = []
        for p in payloads:
            args += [pgnotify.CHANNEL, p]
        cur.execute(pgnotify.notify_sql(len(payloads)), args)


def _lock_heads(cur: psycopg.Cursor, streams: list[str]) -> dict[str, int]:
    """Lock the counter rows of `streams` (creating missing ones) in the given order; their last numbers."""
    if not streams:
        return {}
    # One statement (one round trip): rows are inserted, so locked, in the order given.
    cur.execute(
        "INSERT INTO log_heads (stream, last) SELECT s, 0 FROM unnest(%s::text[]) WITH ORDINALITY AS u(s, n) ORDER BY n "
        "ON CONFLICT (stream) DO UPDATE SET last = log_heads.last RETURNING stream, last",
        (streams,),
    )
    return {stream: int(last) for stream, last in cur.fetchall()}


def _apply_item(cur: psycopg.Cursor, heads: dict[str, int], batch: list[Write], stream: str | None, entries: list[bytes]) -> list[int]:
    final: dict[str, bytes | None] = {}
    for w in batch:  # the last write of a key decides, as applying them in order would
        final.pop(w.key, None)
        final[w.key] = w.value
    deletes = [(k,) for k, v in final.items() if v is None]
    puts = [(k, v) for k, v in final.items() if v is not None]
    if deletes:
        cur.executemany("DELETE FROM entries WHERE key = %s", deletes)
    if puts:
        cur.executemany(
            "INSERT INTO entries (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            puts,
        )
    if stream is None or not entries:
        return []
    first = heads[stream] + 1
    cur.executemany(
        "INSERT INTO log (stream, seq, value) VALUES (%s, %s, %s)",
        [(stream, i, e) for i, e in enumerate(entries, start=first)],
    )
    heads[stream] = first + len(entries) - 1
    return list(range(first, first + len(entries)))
