"""A real server on PostgreSQL: the SDK's secrets survive a restart; an outage is 503s, then it heals."""

from __future__ import annotations

import ssl
import time

import httpx
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

from tests.conftest import Server, start_server
from tests.e2e.test_durability import vault_token
from tests.pgcluster import PgCluster


def sdk_client(srv: Server, vault: str) -> SecretClient:
    a = srv.admin
    cred = ClientSecretCredential(a["tenantId"], a["clientId"], a["clientSecret"], authority=srv.url,
                                  disable_instance_discovery=True, connection_verify=srv.ca)
    return SecretClient(srv.vault_url(vault), cred, connection_verify=srv.ca)


def test_secrets_written_through_the_sdk_survive_a_restart_on_postgresql(tmp_path, pg_url: str):
    srv = start_server(tmp_path, "--storage", pg_url)
    try:
        srv.cli("keyvault", "create", "--name", "kvpg")
        client = sdk_client(srv, "kvpg")
        v1 = client.set_secret("db-password", "first").properties.version
        client.set_secret("db-password", "second")
        client.close()
        assert not (srv.state_dir / "strongroom.db").exists()  # nothing went to SQLite
        srv.stop()
        srv.start()
        client = sdk_client(srv, "kvpg")
        assert client.get_secret("db-password").value == "second"
        assert client.get_secret("db-password", v1).value == "first"
        client.close()
    finally:
        srv.stop()


def test_a_postgresql_outage_answers_503_with_retry_after_then_heals(tmp_path, pg_cluster: PgCluster, pg_url: str):
    srv = start_server(tmp_path, "--storage", pg_url)
    try:
        srv.cli("keyvault", "create", "--name", "kvout")
        token = vault_token(srv)
        url = f"{srv.vault_url('kvout')}/secrets/s"
        with httpx.Client(verify=ssl.create_default_context(cafile=srv.ca), timeout=30,
                          headers={"Authorization": f"Bearer {token}"}, params={"api-version": "7.4"}) as http:
            assert http.put(url, json={"value": "before"}).status_code == 200
            pg_cluster.stop("immediate")
            try:
                for r in (http.get(url), http.put(url, json={"value": "during"})):
                    assert r.status_code == 503, r.text
                    assert r.headers["Retry-After"] == "1"
                    assert r.json()["error"]["code"] == "ServiceUnavailable"
                    assert "postgresql://" not in r.text
                a = srv.admin
                r = httpx.post(f"{srv.url}/{a['tenantId']}/oauth2/v2.0/token", verify=ssl.create_default_context(cafile=srv.ca),
                               timeout=30, data={"grant_type": "client_credentials", "client_id": a["clientId"],
                                                 "client_secret": a["clientSecret"], "scope": "https://management.azure.com/.default"})
                assert r.status_code == 503 and r.headers["Retry-After"] == "1"
                assert r.json()["error"] == "temporarily_unavailable"  # the token endpoint keeps Entra's error shape
            finally:
                pg_cluster.start()
            deadline = time.monotonic() + 30
            while (r := http.get(url)).status_code == 503 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert r.status_code == 200 and r.json()["value"] == "before"  # the refused write left nothing
            versions = http.get(f"{url}/versions").json()["value"]
            assert len(versions) == 1
            assert http.put(url, json={"value": "after"}).json()["value"] == "after"
    finally:
        srv.stop()
    assert "Traceback" not in srv.log_path.read_text()


def test_up_against_an_unreachable_postgresql_says_so_without_the_password(tmp_path):
    import subprocess

    from tests.conftest import STRONGROOM, free_port

    url = f"postgresql://strongroom:Hunter2-pw@127.0.0.1:{free_port()}/db?connect_timeout=2"
    proc = subprocess.run([*STRONGROOM, "up", "--state-dir", str(tmp_path / "s"), "--port", str(free_port()), "--storage", url],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "cannot use PostgreSQL at postgresql://strongroom:***@127.0.0.1" in " ".join(proc.stderr.split())
    assert "Hunter2" not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
