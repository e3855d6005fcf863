"""The whole SecretClient method set again, against a server whose storage is PostgreSQL.

The tests are those of test_secret_client.py (imported, so pytest collects them
here too); only the server underneath differs. Nothing above the storage
interface knows which backend it talks to, and this checks it through the SDK.
"""

from __future__ import annotations

import pytest

from tests.conftest import start_server
from tests.e2e.test_secret_client import *  # noqa: F401,F403 - the tests and their module fixtures
from tests.e2e.test_secret_client import _client


@pytest.fixture(scope="module")
def server(tmp_path_factory, pg_cluster):
    srv = start_server(tmp_path_factory.mktemp("pgserver"), "--storage", pg_cluster.create_database())
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def vault(server) -> str:
    server.cli("keyvault", "create", "--name", "kv-shared")
    return "kv-shared"


@pytest.fixture(scope="module")
def admin_credential(server):
    from azure.identity import ClientSecretCredential

    a = server.admin
    return ClientSecretCredential(a["tenantId"], a["clientId"], a["clientSecret"], authority=server.url,
                                  disable_instance_discovery=True, connection_verify=server.ca)


@pytest.fixture(scope="module")
def secret_client(server, vault, admin_credential):
    return _client(server, server.vault_url(vault), admin_credential)
