"""What the server does on its own is audited as the service's own principal, before it is committed.

A dev-mode server (`strongroom up --dev`) with its vault clock moved forward:
the scheduler rotates a key per its rotation policy and raises a secret's
near-expiry event. Before the fix neither left any audit record.
"""

from __future__ import annotations

import ssl
import time
from datetime import UTC, datetime

import httpx
import pytest
from azure.identity import ClientSecretCredential
from azure.keyvault.keys import KeyClient, KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction
from azure.keyvault.secrets import SecretClient

from tests.conftest import Server, start_server

DAY = 86400
MANAGEMENT = "https://management.azure.com/.default"
# The service principal's documented id (docs/audit.md): uuid5(NAMESPACE_URL, "https://strongroom.invalid/service-principal").
SERVICE_ID = "3692af9e-654f-5b3b-aa17-263cc5cd0129"


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> Server:
    srv = start_server(tmp_path_factory.mktemp("svc"), "--dev")
    srv.cli("keyvault", "create", "--name", "kv-svc")
    yield srv
    srv.stop()


def test_rotation_and_expiry_events_are_recorded_as_the_service(dev: Server):
    import uuid

    assert SERVICE_ID == str(uuid.uuid5(uuid.NAMESPACE_URL, "https://strongroom.invalid/service-principal"))
    a = dev.admin
    cred = ClientSecretCredential(a["tenantId"], a["clientId"], a["clientSecret"], authority=dev.url,
                                  disable_instance_discovery=True, connection_verify=dev.ca)
    url = dev.vault_url("kv-svc")
    keys, secrets = KeyClient(url, cred, connection_verify=dev.ca), SecretClient(url, cred, connection_verify=dev.ca)
    first = keys.create_rsa_key("rot")
    keys.update_key_rotation_policy("rot", KeyRotationPolicy(
        expires_in="P60D", lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P7D")]))
    mgmt = {"Authorization": f"Bearer {cred.get_token(MANAGEMENT).token}"}
    ctx = ssl.create_default_context(cafile=dev.ca)
    now = httpx.get(f"{dev.url}/strongroom/dev/time-shift", headers=mgmt, verify=ctx).json()["vaults"]["kv-svc"]["now"]
    secrets.set_secret("expiring", "v", expires_on=datetime.fromtimestamp(now + 20 * DAY, UTC))
    r = httpx.post(f"{dev.url}/strongroom/dev/time-shift", json={"seconds": 8 * DAY, "vault": "kv-svc"}, headers=mgmt, verify=ctx)
    assert r.status_code == 200, r.text

    deadline = time.monotonic() + 20
    while keys.get_key("rot").properties.version == first.properties.version:
        assert time.monotonic() < deadline, "the key did not rotate"
        time.sleep(0.1)

    def service_records() -> dict[str, dict]:
        return {r["operationName"]: r for r in dev.cli_json("audit", "list")
                if r["identity"]["claim"].get("oid") == SERVICE_ID}

    deadline = time.monotonic() + 20
    while "SecretNearExpiryEventGridNotification" not in (found := service_records()):
        assert time.monotonic() < deadline, f"no expiry record: {sorted(found)}"
        time.sleep(0.2)
    rotate = found["KeyRotate"]
    vault_id = dev.cli_json("keyvault", "show", "--name", "kv-svc")["id"]
    assert rotate["resourceId"] == vault_id.upper()
    assert rotate["properties"]["id"] == f"{url}/keys/rot"
    assert rotate["identity"]["claim"]["appid"] == SERVICE_ID and rotate["identity"]["claim"]["tid"] == a["tenantId"]
    assert rotate["properties"]["auditStage"] == "service"
    assert found["SecretNearExpiryEventGridNotification"]["properties"]["id"] == f"{url}/secrets/expiring"
    assert dev.cli("audit", "verify").returncode == 0
