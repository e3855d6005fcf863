"""What is PostgreSQL's own: schema versions, the URL's password, outages, multi-host URLs."""

from __future__ import annotations

import time

import psycopg
import pytest

from strongroom.storage import StorageError, Write, open_storage
from strongroom.storage.base import mask_url
from strongroom.storage.postgresql import MIGRATIONS, PostgreSQLStorage
from tests.pgcluster import PgCluster, _free_port


def test_migrations_are_versioned_idempotent_and_a_newer_schema_is_refused(pg_url: str):
    first = PostgreSQLStorage(pg_url)
    assert first.schema_version() == len(MIGRATIONS)
    first.write([Write("a", b"1")])
    first.close()
    again = open_storage(pg_url.replace("postgresql://", "postgres://"))  # both spellings
    assert again.get("a") == b"1"
    again.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")] == list(
            range(1, len(MIGRATIONS) + 1)
        )
        conn.execute("INSERT INTO schema_migrations VALUES (%s)", (len(MIGRATIONS) + 1,))
    with pytest.raises(StorageError, match="newer than this Strongroom knows"):
        PostgreSQLStorage(pg_url)


def test_the_password_never_appears_in_errors():
    port = _free_port()  # nothing listens there
    url = f"postgresql://strongroom:Hunter2-secret@127.0.0.1:{port}/db?connect_timeout=2"
    with pytest.raises(StorageError) as err:
        open_storage(url)
    assert "Hunter2-secret" not in str(err.value) and "***" in str(err.value)
    assert "Hunter2" not in mask_url("host=127.0.0.1 password='Hunter2 x' user=u")
    assert "Hunter2" not in mask_url("postgresql://u@h/db?sslmode=require&password=Hunter2")
    with pytest.raises(StorageError) as err:
        open_storage("mysql://u:Hunter2@h/db")
    assert "Hunter2" not in str(err.value)


def test_a_multi_host_url_finds_the_writable_server(pg_cluster: PgCluster, pg_url: str):
    dead = _free_port()
    db = pg_url.rsplit("/", 1)[1]
    url = f"postgresql://strongroom@127.0.0.1:{dead},127.0.0.1:{pg_cluster.port}/{db}?target_session_attrs=read-write"
    s = open_storage(url)
    s.write([Write("k", b"v")])
    assert s.get("k") == b"v"
    s.close()


def test_an_outage_raises_storage_errors_then_heals_without_a_restart(pg_cluster: PgCluster, pg_url: str):
    s = PostgreSQLStorage(pg_url, pool_timeout=2.0)
    s.write([Write("before", b"1")])
    pg_cluster.stop("immediate")  # a crash, not a polite shutdown
    try:
        for call in (lambda: s.get("before"), lambda: s.write([Write("during", b"x")]),
                     lambda: s.append("log", [b"e"]), lambda: list(s.scan(""))):
            t0 = time.monotonic()
            with pytest.raises(StorageError):  # never a psycopg exception the server would turn into a 500
                call()
            assert time.monotonic() - t0 < 15
    finally:
        pg_cluster.start()
    deadline = time.monotonic() + 30
    while True:  # the pool reconnects by itself
        try:
            assert s.get("before") == b"1"
            break
        except StorageError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert s.get("during") is None  # the failed write left nothing
    s.write([Write("after", b"2")])
    assert s.append("log", [b"e"]) == [1]
    s.close()


def test_leadership_passes_on_within_seconds_when_the_leader_is_killed(pg_url: str):
    import signal
    import subprocess
    import sys

    leader = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from strongroom.storage import open_storage; "
         f"s = open_storage({pg_url!r}); print(s.try_lead('scheduler'), flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert leader.stdout.readline().strip() == "True"
        other = PostgreSQLStorage(pg_url)
        assert not other.try_lead("scheduler")
        leader.send_signal(signal.SIGKILL)
        leader.wait()
        t0 = time.monotonic()
        while not other.try_lead("scheduler"):
            assert time.monotonic() - t0 < 10, "leadership was not handed over"
            time.sleep(0.1)
        other.close()
    finally:
        leader.kill()
        leader.wait()
        leader.stdout.close()


def test_a_committed_feed_append_is_pushed_to_every_listener_and_a_rolled_back_one_never(pg_url: str):
    """LISTEN/NOTIFY: the append of another handle (another replica) arrives as {stream: last}, after its commit."""
    import queue

    writer, reader = PostgreSQLStorage(pg_url), PostgreSQLStorage(pg_url)
    got: queue.Queue[dict[str, int] | None] = queue.Queue()
    stop = reader.listen(got.put)
    try:
        assert got.get(timeout=10) == {}  # listening: re-read what you watch
        writer.write_and_append([Write("k", b"v")], "changes/kv1", [b"e1", b"e2"])
        assert got.get(timeout=5) == {"changes/kv1": 2}
        writer.write_and_append([Write("k", b"w")], "changes/kv2", [b"e1"])
        assert got.get(timeout=5) == {"changes/kv2": 1}
        with pytest.raises(StorageError):  # a refused batch appends nothing and notifies nothing
            writer.write_and_append([Write("k", b"x"), Write("k\x00", b"bad")], "changes/kv1", [b"e3"])
        writer.append("audit@r1", [b"record"])  # audit streams are not the feed: no notice
        writer.write_and_append([Write("k", b"y")], "changes/kv1", [b"e3"])
        assert got.get(timeout=5) == {"changes/kv1": 3}
        assert got.empty()
    finally:
        stop()
        writer.close()
        reader.close()


def test_a_listener_cut_off_says_so_and_says_again_when_it_listens_again(pg_url: str):
    import queue

    storage = PostgreSQLStorage(pg_url)
    got: queue.Queue[dict[str, int] | None] = queue.Queue()
    stop = storage.listen(got.put)
    try:
        assert got.get(timeout=10) == {}
        with psycopg.connect(pg_url, autocommit=True) as admin:  # what a PostgreSQL restart does to it
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%%' "
                          "AND pid <> pg_backend_pid()")
        assert got.get(timeout=10) is None  # poll meanwhile
        assert got.get(timeout=10) == {}  # back: re-read once
        storage.write_and_append([Write("k", b"v")], "changes/kv1", [b"e1"])
        assert got.get(timeout=5) == {"changes/kv1": 1}
    finally:
        stop()
        storage.close()
