"""Two replicas on one PostgreSQL database, as docs/operations.md starts them.

Each replica is a real `strongroom up` with its own state dir (a copy of the
first one's keys and certificates), the same `--storage`; they share nothing else.
"""

from __future__ import annotations

import json
import shutil
import ssl
import threading
import time

import httpx
import pytest

from tests.conftest import Server, free_port, start_server
from tests.e2e.test_durability import vault_token
from tests.e2e.test_postgresql_server import sdk_client
from tests.pgcluster import PgCluster

REPLICA_FILES = ("master.key", "ca.pem", "ca.key", "server.pem", "server.key", "admin.json", "identity-header")


def start_replica(first: Server, root, storage: str, *extra: str) -> Server:
    state = root / "state"
    state.mkdir(parents=True, mode=0o700)
    for name in REPLICA_FILES:
        shutil.copy2(first.state_dir / name, state / name)
    return Server(state, free_port(), extra_args=["--storage", storage, *extra]).start()


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, pg_cluster: PgCluster):
    url = pg_cluster.create_database()
    a = start_server(tmp_path_factory.mktemp("replica-a"), "--storage", url, "--dev")
    b = start_replica(a, tmp_path_factory.mktemp("replica-b"), url, "--dev")
    a.cli("keyvault", "create", "--name", "kvrep")
    yield a, b
    for srv in (a, b):
        srv.stop()


def test_a_write_through_one_replica_is_read_at_once_through_the_other(replicas):
    a, b = replicas
    ca, cb = sdk_client(a, "kvrep"), sdk_client(b, "kvrep")
    for i in range(5):
        ca.set_secret("shared", f"from-a-{i}")
        assert cb.get_secret("shared").value == f"from-a-{i}"
        cb.set_secret("shared", f"from-b-{i}")
        assert ca.get_secret("shared").value == f"from-b-{i}"
    assert len(list(ca.list_properties_of_secret_versions("shared"))) == 10
