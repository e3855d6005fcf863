"""Two replicas on one PostgreSQL database behind one public address, as docs/operations.md runs them.

Each replica is a real `strongroom up` with its own state dir (a copy of the
first one's keys and certificates), the same `--storage` and `--public-url`; a
TCP forwarder (tests/tcpforward.py) plays the load balancer, passing TLS through
and spreading connections over both. Tests also talk to one replica directly
(its listen port) to pin down which replica does what.
"""

from __future__ import annotations

import json
import shutil
import signal
import ssl
import threading
import time

import httpx
import psycopg
import pytest
from azure.identity import ClientSecretCredential
from azure.keyvault.keys import KeyClient, KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction
from azure.keyvault.secrets import SecretClient

from tests.conftest import Server, free_port
from tests.e2e.test_durability import WRITERS, Answered, writer
from tests.pgcluster import PgCluster
from tests.tcpforward import TCPForwarder

REPLICA_FILES = ("master.key", "ca.pem", "ca.key", "server.pem", "server.key", "admin.json", "identity-header")
DAY = 86400


class Replica(Server):
    """A replica: `url` is its own listen address; `public` the load balancer's."""

    public: str = ""

    def vault_url(self, name: str) -> str:
        return f"https://{name}.vault.localhost:{self.port}"


class Cluster:
    def __init__(self, a: Replica, b: Replica, fwd: TCPForwarder, public: str, storage: str) -> None:
        self.a, self.b, self.fwd, self.public, self.storage = a, b, fwd, public, storage
        self.public_port = int(public.rsplit(":", 1)[1])

    def credential(self, via: str | None = None) -> ClientSecretCredential:
        a = self.a.admin
        return ClientSecretCredential(a["tenantId"], a["clientId"], a["clientSecret"], authority=via or self.public,
                                      disable_instance_discovery=True, connection_verify=self.a.ca)

    def token(self, via: str, scope: str) -> str:
        a = self.a.admin
        with httpx.Client(verify=ssl.create_default_context(cafile=self.a.ca)) as h:
            r = h.post(f"{via}/{a['tenantId']}/oauth2/v2.0/token", data={
                "grant_type": "client_credentials", "client_id": a["clientId"], "client_secret": a["clientSecret"], "scope": scope})
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    @property
    def vault_scope(self) -> str:
        return f"https://vault.localhost:{self.public_port}/.default"


def replica(root, storage: str, public: str, listen: int, copy_from: Server | None = None) -> Replica:
    state = root / "state"
    if copy_from is not None:
        state.mkdir(parents=True, mode=0o700)
        for name in REPLICA_FILES:
            shutil.copy2(copy_from.state_dir / name, state / name)
    srv = Replica(state, listen, extra_args=["--storage", storage, "--public-url", public, "--dev"])
    srv.public = public
    return srv.start()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pg_cluster: PgCluster):
    url = pg_cluster.create_database()
    la, lb = free_port(), free_port()
    fwd = TCPForwarder([la, lb])
    public = f"https://localhost:{fwd.port}"
    a = replica(tmp_path_factory.mktemp("replica-a"), url, public, la)
    b = replica(tmp_path_factory.mktemp("replica-b"), url, public, lb, copy_from=a)
    a.cli("keyvault", "create", "--name", "kvrep")
    c = Cluster(a, b, fwd, public, url)
    yield c
    for srv in (a, b):
        srv.stop()
    fwd.close()


def http(c: Cluster, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(verify=ssl.create_default_context(cafile=c.a.ca), timeout=15, headers=headers,
                        params={"api-version": "7.4"})


def test_a_write_through_one_replica_is_read_at_once_through_the_other(cluster: Cluster):
    cred = cluster.credential()
    # Straight to each replica's own port: the challenge names the public port, which the SDK
    # would (rightly) refuse for another port, hence verify_challenge_resource=False here only.
    ca = SecretClient(cluster.a.vault_url("kvrep"), cred, connection_verify=cluster.a.ca, verify_challenge_resource=False)
    cb = SecretClient(cluster.b.vault_url("kvrep"), cred, connection_verify=cluster.a.ca, verify_challenge_resource=False)
    for i in range(5):
        ca.set_secret("shared", f"from-a-{i}")
        assert cb.get_secret("shared").value == f"from-a-{i}"
        cb.set_secret("shared", f"from-b-{i}")
        assert ca.get_secret("shared").value == f"from-b-{i}"
    assert len(list(ca.list_properties_of_secret_versions("shared"))) == 10


def test_the_sdk_through_the_load_balancer_uses_both_replicas(cluster: Cluster):
    before = len(cluster.fwd.connections)
    cred = cluster.credential()

    def client() -> SecretClient:  # a new connection (and so, in turn, the other replica) each time
        return SecretClient(f"https://kvrep.vault.localhost:{cluster.public_port}", cred, connection_verify=cluster.a.ca)

    for i in range(6):
        with client() as c:
            c.set_secret(f"lb-{i}", str(i))
    for i in range(6):
        with client() as c:
            assert c.get_secret(f"lb-{i}").value == str(i)
    assert {cluster.a.port, cluster.b.port} <= set(cluster.fwd.connections[before:])


def test_a_token_issued_by_one_replica_is_accepted_by_the_other(cluster: Cluster):
    from_a = cluster.token(cluster.a.url, cluster.vault_scope)
    from_b = cluster.token(cluster.b.url, cluster.vault_scope)
    for token in (from_a, from_b):
        for srv in (cluster.a, cluster.b):
            with http(cluster, token) as h:
                assert h.put(f"{srv.vault_url('kvrep')}/secrets/tok", json={"value": "v"}).status_code == 200


def test_a_revoked_role_assignment_denies_on_every_replica_at_the_next_request(cluster: Cluster):
    a = cluster.a
    created = a.cli_json("ad", "sp", "create-for-rbac", "--name", "rep-sp")
    with httpx.Client(verify=ssl.create_default_context(cafile=a.ca)) as h:
        r = h.post(f"{a.url}/{a.admin['tenantId']}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": created["appId"], "client_secret": created["password"],
            "scope": cluster.vault_scope})
    token = r.json()["access_token"]

    def statuses() -> set[int]:
        out = set()
        for srv in (cluster.a, cluster.b):
            with http(cluster, token) as h:
                out.add(h.get(f"{srv.vault_url('kvrep')}/secrets/tok").status_code)
        return out

    assert statuses() == {403}
    scope = a.cli_json("keyvault", "show", "--name", "kvrep")["id"]
    assignment = a.cli_json("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee",
                            created["appId"], "--scope", scope)
    assert statuses() == {200}
    a.cli("role", "assignment", "delete", "--ids", assignment["id"])
    assert statuses() == {403}


def test_an_event_written_through_one_replica_reaches_a_subscriber_of_the_other_within_a_second(cluster: Cluster):
    token = cluster.token(cluster.public, cluster.vault_scope)
    with http(cluster, token) as h:
        h.put(f"{cluster.a.vault_url('kvrep')}/secrets/pushed", json={"value": "0"})
    got: list[tuple[float, dict]] = []
    ready = threading.Event()

    def subscribe() -> None:
        with httpx.stream("GET", f"{cluster.b.vault_url('kvrep')}/strongroom/events",
                          headers={"Authorization": f"Bearer {token}"}, verify=ssl.create_default_context(cafile=cluster.a.ca),
                          timeout=httpx.Timeout(15)) as r:
            assert r.status_code == 200
            ready.set()
            for line in r.iter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    if event["subject"] == "pushed":
                        got.append((time.monotonic(), event))
                        if len(got) == 5:
                            return

    t = threading.Thread(target=subscribe, daemon=True)
    t.start()
    assert ready.wait(10)
    time.sleep(0.3)  # the subscriber is past its catch-up read
    sent: list[float] = []
    with http(cluster, token) as h:
        for i in range(1, 6):
            sent.append(time.monotonic())
            assert h.put(f"{cluster.a.vault_url('kvrep')}/secrets/pushed", json={"value": str(i)}).status_code == 200
            time.sleep(0.2)
    t.join(10)
    assert len(got) == 5, got
    latencies = [g - s for (g, _), s in zip(got, sent, strict=True)]
    print("cross-replica event latency (s):", [round(x, 3) for x in latencies])
    assert max(latencies) < 1.0, latencies


def test_background_work_runs_on_one_replica_only(cluster: Cluster):
    def leaders() -> int:
        with psycopg.connect(cluster.storage) as conn:
            return conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())").fetchone()[0]

    deadline = time.monotonic() + 10
    while leaders() != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leaders() == 1  # one scheduler lease for two replicas

    keys = KeyClient(f"https://kvrep.vault.localhost:{cluster.public_port}", cluster.credential(), connection_verify=cluster.a.ca)
    first = keys.create_rsa_key("rotating")
    keys.update_key_rotation_policy("rotating", KeyRotationPolicy(
        expires_in="P60D", lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P7D")]))
    mgmt = cluster.token(cluster.public, "https://management.azure.com/.default")
    with httpx.Client(verify=ssl.create_default_context(cafile=cluster.a.ca), headers={"Authorization": f"Bearer {mgmt}"}) as h:
        r = h.post(f"{cluster.public}/strongroom/dev/time-shift", json={"seconds": 8 * DAY, "vault": "kvrep"})
        assert r.status_code == 200, r.text
    deadline = time.monotonic() + 15
    while keys.get_key("rotating").properties.version == first.properties.version:
        assert time.monotonic() < deadline, "the key did not rotate"
        time.sleep(0.2)
    time.sleep(3)  # several more lifecycle passes (1 s apart in dev mode) on both replicas
    assert len(list(keys.list_properties_of_key_versions("rotating"))) == 2  # rotated once, not once per replica
    keys.close()


def test_kill_9_of_one_replica_mid_burst_loses_no_acknowledged_write(cluster: Cluster):
    """Writers go to replica B; B is killed mid-burst; every answered write is then read through A."""
    b = cluster.b
    token = cluster.token(cluster.public, cluster.vault_scope)
    stop = threading.Event()
    answered: list[list[Answered]] = [[] for _ in range(WRITERS)]
    threads = [threading.Thread(target=writer, args=(b, "kvrep", token, i, stop, answered[i])) for i in range(WRITERS)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait()
    stop.set()
    for t in threads:
        t.join(10)
    acked = [x for per in answered for x in per]
    print("acknowledged writes before kill -9:", len(acked))
    assert len(acked) > 10
    with http(cluster, token) as h:
        for x in acked:
            r = h.get(f"{cluster.a.vault_url('kvrep')}/secrets/{x.name}/{x.version}")
            assert r.status_code == 200 and r.json()["value"] == x.value
        # the load balancer skips the dead replica: the public address keeps answering
        for _ in range(4):
            assert h.get(f"https://kvrep.vault.localhost:{cluster.public_port}/secrets/{acked[-1].name}").status_code == 200
    b.proc = None
    b.start()  # back for whoever runs after


def test_each_replica_verifies_its_own_audit_chain_and_list_merges_both(cluster: Cluster):
    if cluster.b.proc is None:  # the kill test ran first (-k / random order): bring B back
        cluster.b.start()
    counts = []
    for srv in (cluster.a, cluster.b):
        report = srv.cli_json("audit", "verify", "--storage", cluster.storage)
        assert report["ok"], report
        assert [c["stream"].startswith("audit@") for c in report["chains"]] == [True] * len(report["chains"])
        counts.append(report["records"])
    merged = cluster.a.cli_json("audit", "list", "--storage", cluster.storage)
    assert len(merged) >= sum(counts) and sum(counts) > 0  # both replicas' records, by time
