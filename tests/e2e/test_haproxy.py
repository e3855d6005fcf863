"""Two replicas behind a real HAProxy (Debian's `haproxy`, TCP mode, TLS passed through).

The recipe of docs/operations.md, on 127.0.0.1: writes through the load balancer
reach both replicas; kill -9 of one replica during a write burst loses no
acknowledged write; PostgreSQL stopped for a few seconds gives only 503s, then
the instance recovers by itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import threading
import time
from types import SimpleNamespace

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.test_durability import WRITERS, Answered, writer
from tests.e2e.test_replicas import Cluster, replica
from tests.pgcluster import PgCluster

HAPROXY_CFG = """
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s

frontend strongroom
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server check check-ssl verify none inter 300ms fall 1 rise 1
    server a 127.0.0.1:{a}
    server b 127.0.0.1:{b}
"""


@pytest.fixture(scope="module")
def lb(tmp_path_factory, pg_cluster: PgCluster):
    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if haproxy is None:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail("CI=true but haproxy is missing; .ci/run installs it", pytrace=False)
        pytest.skip("haproxy is not installed (Debian: apt-get install haproxy)")
    url = pg_cluster.create_database()
    port, la, lb_ = free_port(), free_port(), free_port()
    public = f"https://localhost:{port}"
    root = tmp_path_factory.mktemp("haproxy")
    cfg = root / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(port=port, a=la, b=lb_))
    with open(root / "haproxy.log", "wb") as log:  # haproxy keeps its own descriptor
        proc = subprocess.Popen([haproxy, "-f", str(cfg), "-db"], stdout=log, stderr=subprocess.STDOUT)
    a = replica(tmp_path_factory.mktemp("ha-a"), url, public, la)
    b = replica(tmp_path_factory.mktemp("ha-b"), url, public, lb_, copy_from=a)
    a.cli("keyvault", "create", "--name", "kvha")  # through HAProxy: admin.json's server is the public URL
    c = Cluster(a, b, None, public, url)  # type: ignore[arg-type]
    yield c
    for srv in (a, b):
        srv.stop()
    proc.terminate()
    proc.wait(10)


def public_vault(c: Cluster) -> str:
    return f"https://kvha.vault.localhost:{c.public_port}"


def test_writes_through_haproxy_reach_both_replicas_and_read_back_everywhere(lb: Cluster):
    token = lb.token(lb.public, lb.vault_scope)
    seen_versions: set[str] = set()
    for i in range(10):
        with httpx.Client(verify=ssl.create_default_context(cafile=lb.a.ca), headers={"Authorization": f"Bearer {token}"},
                          params={"api-version": "7.4"}) as h:  # a new connection each time: round robin
            r = h.put(f"{public_vault(lb)}/secrets/ha-{i}", json={"value": str(i)})
            assert r.status_code == 200, r.text
            seen_versions.add(r.json()["id"])
    for srv in (lb.a, lb.b):
        with httpx.Client(verify=ssl.create_default_context(cafile=lb.a.ca), headers={"Authorization": f"Bearer {token}"},
                          params={"api-version": "7.4"}) as h:
            assert [h.get(f"{srv.vault_url('kvha')}/secrets/ha-{i}").json()["value"] for i in range(10)] == [str(i) for i in range(10)]
    for srv in (lb.a, lb.b):  # both served some of the writes (each audits its own)
        assert "SecretSet" in (srv.state_dir / "audit.jsonl").read_text()


def test_postgresql_stopped_a_few_seconds_gives_only_503s_then_recovers(lb: Cluster, pg_cluster: PgCluster):
    token = lb.token(lb.public, lb.vault_scope)
    statuses: list[int] = []
    with httpx.Client(verify=ssl.create_default_context(cafile=lb.a.ca), headers={"Authorization": f"Bearer {token}"},
                      params={"api-version": "7.4"}, timeout=30) as h:
        assert h.put(f"{public_vault(lb)}/secrets/steady", json={"value": "v"}).status_code == 200
        pg_cluster.stop("immediate")
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 3:
                statuses.append(h.get(f"{public_vault(lb)}/secrets/steady").status_code)
        finally:
            pg_cluster.start()
        deadline = time.monotonic() + 30
        while (code := h.get(f"{public_vault(lb)}/secrets/steady").status_code) != 200:
            statuses.append(code)
            assert time.monotonic() < deadline, "no recovery"
            time.sleep(0.2)
        for srv in (lb.a, lb.b):  # every replica recovers by itself, not only the one HAProxy picked first
            while (code := h.get(f"{srv.vault_url('kvha')}/secrets/steady").status_code) != 200:
                statuses.append(code)
                assert time.monotonic() < deadline, f"replica on port {srv.port} did not recover"
                time.sleep(0.2)
    assert set(statuses) <= {503} and statuses, statuses  # never a 500, never a dropped connection


def test_an_agent_whose_replica_dies_reconnects_to_the_other_and_misses_no_event(lb: Cluster):
    """The agent's own feed client (agent/feed_client.py), configured as `mount --watch` is, through HAProxy:
    kill -9 the replica its stream is on, keep writing through the other; every event arrives, once, in order."""
    from strongroom.agent.feed_client import FeedClient, FeedTarget
    from tests.csi.csi_support import driver_attributes, objects_yaml, provider_config

    a = lb.a.admin
    attributes = driver_attributes({"keyvaultName": "kvha", "tenantId": a["tenantId"], "usePodIdentity": "false",
                                    "objects": objects_yaml({"objectName": "agent-feed", "objectType": "secret"})})
    config = provider_config(SimpleNamespace(port=lb.public_port, url=lb.public, ca=lb.a.ca))
    http = httpx.Client(verify=ssl.create_default_context(cafile=lb.a.ca), timeout=10)
    got: list[dict] = []
    arrived: list[float] = []
    stop = threading.Event()

    def on_event(event: dict) -> None:
        arrived.append(time.monotonic())
        got.append(event)

    feed = FeedClient(lambda: FeedTarget(attributes, {"clientid": a["clientId"], "clientsecret": a["clientSecret"]}, config, http),
                      ["agent-feed"], http, on_event, lambda: None, stop)

    def subscriptions() -> list[int]:
        return [(srv.state_dir / "audit.jsonl").read_text().count('"EventSubscribe"') for srv in (lb.a, lb.b)]

    token = lb.token(lb.public, lb.vault_scope)
    written: list[str] = []

    def write(srv, i: int) -> None:
        with httpx.Client(verify=ssl.create_default_context(cafile=lb.a.ca), headers={"Authorization": f"Bearer {token}"},
                          params={"api-version": "7.4"}) as h:
            r = h.put(f"{srv.vault_url('kvha')}/secrets/agent-feed", json={"value": str(i)})
            assert r.status_code == 200, r.text
            written.append(r.json()["id"].rsplit("/", 1)[1])

    def wait_for(n: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(got) < n:
            assert time.monotonic() < deadline, f"{len(got)} of {n} events"
            time.sleep(0.02)

    before = subscriptions()
    feed.start()
    try:
        assert feed.connected.wait(15)
        after = subscriptions()
        on, other = (lb.a, lb.b) if after[0] > before[0] else (lb.b, lb.a)
        latencies = []  # rotation across replicas: written through one, seen by the agent on the other
        for i in range(20):
            t0 = time.monotonic()
            write(other, i)
            wait_for(i + 1)
            latencies.append(arrived[i] - t0)
        latencies.sort()
        print(f"agent via HAProxy, write through the other replica -> event: p50 {latencies[9] * 1000:.1f} ms, "
              f"p99 {latencies[-1] * 1000:.1f} ms (20 events)")
        assert latencies[-1] < 1.0, latencies
        on.proc.send_signal(signal.SIGKILL)  # the replica holding the agent's stream
        on.proc.wait()
        for i in range(20, 30):  # written while the agent is away, and after it is back
            write(other, i)
            time.sleep(0.1)
        wait_for(30)
        time.sleep(0.5)
        assert [e["data"]["Version"] for e in got] == written  # every event, once, in order
        assert subscriptions()[(lb.a, lb.b).index(other)] > after[(lb.a, lb.b).index(other)]  # it resumed on the other
    finally:
        stop.set()
        http.close()
    on.proc = None
    on.start()  # back for whoever runs after


def test_kill_9_of_a_replica_behind_haproxy_loses_no_acknowledged_write(lb: Cluster):
    token = lb.token(lb.public, lb.vault_scope)
    target = SimpleNamespace(vault_url=lambda name: f"https://{name}.vault.localhost:{lb.public_port}", ca=lb.a.ca)
    stop = threading.Event()
    answered: list[list[Answered]] = [[] for _ in range(WRITERS)]
    threads = [threading.Thread(target=writer, args=(target, "kvha", token, i, stop, answered[i])) for i in range(WRITERS)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    lb.b.proc.send_signal(signal.SIGKILL)
    lb.b.proc.wait()
    time.sleep(1.0)  # writers whose connection went to A keep going
    stop.set()
    for t in threads:
        t.join(10)
    acked = [x for per in answered for x in per]
    assert len(acked) > 10
    with httpx.Client(verify=ssl.create_default_context(cafile=lb.a.ca), headers={"Authorization": f"Bearer {token}"},
                      params={"api-version": "7.4"}) as h:
        for x in acked:
            r = h.get(f"{lb.a.vault_url('kvha')}/secrets/{x.name}/{x.version}")
            assert r.status_code == 200 and r.json()["value"] == x.value
        time.sleep(1)  # HAProxy's health check (every 300 ms) has taken B out
        for _ in range(4):  # new connections through the public address all reach A
            with httpx.Client(verify=ssl.create_default_context(cafile=lb.a.ca), headers={"Authorization": f"Bearer {token}"},
                              params={"api-version": "7.4"}) as fresh:
                assert fresh.get(f"{public_vault(lb)}/secrets/{acked[-1].name}").status_code == 200
    lb.b.proc = None
