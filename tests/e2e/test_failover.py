"""A PostgreSQL standby promoted under a writing Strongroom: writes go on after reconnecting.

Two private PostgreSQL clusters with streaming replication (tests/pgcluster.py:
`start_standby` runs pg_basebackup -R from the primary), synchronous so that the
standby holds every committed transaction. Strongroom is started with the libpq
multi-host URI and `target_session_attrs=read-write`, as docs/operations.md says.
A client writes in a loop; the primary is stopped (immediate: a crash, no
shutdown checkpoint) and the standby promoted. During the gap every answer is a
503 in the data plane's shape with Retry-After, never a 500; afterwards writes
succeed again without restarting Strongroom, and every write that was answered
200 is there on the promoted server.
"""

from __future__ import annotations

import ssl
import threading
import time

import httpx
import psycopg
import pytest

from tests.conftest import Server, free_port
from tests.pgcluster import PgCluster, remove_cluster, start_cluster, start_standby


@pytest.fixture
def primary_and_standby(pg_cluster: PgCluster):  # pg_cluster: skip (or fail under CI) where PostgreSQL is missing
    primary = start_cluster()
    standby = None
    try:
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE strongroom")
        standby = start_standby(primary)
        primary.replicate_synchronously()
        yield primary, standby
    finally:
        for c in (standby, primary):
            if c is not None:
                remove_cluster(c)


def test_a_promoted_standby_takes_the_writes_with_only_503s_in_between(tmp_path, primary_and_standby):
    primary, standby = primary_and_standby
    url = (f"postgresql://strongroom@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/strongroom"
           "?target_session_attrs=read-write")
    # --no-throttle: one writer at full speed can pass the vault's 300 creates per 10 s (a 429 is not the failover)
    srv = Server(tmp_path / "state", free_port(), extra_args=["--storage", url, "--no-throttle"]).start()
    try:
        srv.cli("keyvault", "create", "--name", "kvfail")
        a = srv.admin
        with httpx.Client(verify=ssl.create_default_context(cafile=srv.ca)) as h:
            token = h.post(f"{srv.url}/{a['tenantId']}/oauth2/v2.0/token", data={
                "grant_type": "client_credentials", "client_id": a["clientId"], "client_secret": a["clientSecret"],
                "scope": f"https://vault.localhost:{srv.port}/.default"}).json()["access_token"]
        client = httpx.Client(verify=ssl.create_default_context(cafile=srv.ca), headers={"Authorization": f"Bearer {token}"},
                              params={"api-version": "7.4"}, timeout=30)
        acked: dict[str, str] = {}  # name -> value answered 200
        answers: list[tuple[float, int, httpx.Response]] = []
        stop = threading.Event()

        def write() -> None:
            i = 0
            while not stop.is_set():
                i += 1
                r = client.put(f"{srv.vault_url('kvfail')}/secrets/w{i}", json={"value": f"v{i}"})
                answers.append((time.monotonic(), r.status_code, r))
                if r.status_code == 200:
                    acked[f"w{i}"] = f"v{i}"
                else:
                    time.sleep(0.05)

        writer = threading.Thread(target=write)
        writer.start()
        try:
            time.sleep(1.0)
            before = len(acked)
            primary.stop("immediate")  # the primary crashes
            crashed = time.monotonic()
            standby.promote()
            promoted = time.monotonic()
            deadline = time.monotonic() + 20
            while not any(t > promoted and code == 200 for t, code, _ in list(answers)):
                assert time.monotonic() < deadline, "writes did not resume on the promoted standby"
                time.sleep(0.05)
            time.sleep(0.5)
        finally:
            stop.set()
            writer.join(30)
        assert before > 3
        failed = [(t, code, r) for t, code, r in answers if code != 200]
        assert {code for _, code, _ in failed} <= {503}, [(code, r.text) for _, code, r in failed]
        for _, _, r in failed:
            assert r.json()["error"]["code"] == "ServiceUnavailable" and int(r.headers["Retry-After"]) >= 1
        resumed = min(t for t, code, _ in answers if t > crashed and code == 200)
        print(f"failover: promote took {promoted - crashed:.2f} s; first write answered {resumed - crashed:.2f} s "
              f"after the primary stopped; {len(failed)} answers 503 in between; {len(acked)} writes answered 200")
        for name, value in acked.items():  # every answered write is on the promoted server
            r = client.get(f"{srv.vault_url('kvfail')}/secrets/{name}")
            assert r.status_code == 200 and r.json()["value"] == value, (name, r.status_code)
        client.close()
    finally:
        srv.stop()
