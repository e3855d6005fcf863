"""Fixtures for the key tests: the official KeyClient against the session's real server."""

from __future__ import annotations

import uuid

import pytest


def unique(prefix: str = "k") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def key_client(server, vault, admin_credential):
    from azure.keyvault.keys import KeyClient

    return KeyClient(server.vault_url(vault), admin_credential, connection_verify=server.ca)


@pytest.fixture(scope="session")
def crypto_client_for(server, admin_credential):
    """CryptographyClient for a key (the SDK does public-key operations locally once it has the key)."""
    from azure.keyvault.keys.crypto import CryptographyClient

    def make(key, credential=None):
        return CryptographyClient(key, credential or admin_credential, connection_verify=server.ca)

    return make


@pytest.fixture(scope="session")
def remote_credential(server, vault, tmp_path_factory):
    """A principal allowed the six crypto operations but not to read keys.

    A CryptographyClient that cannot get its key does every operation on the
    server, even the public-key ones (encrypt, verify, wrap) it would otherwise
    do locally: that is how these tests reach the server's encrypt/verify/wrap.
    """
    import json

    from azure.identity import ClientSecretCredential

    scope = server.cli_json("keyvault", "show", "--name", vault)["id"]
    name = f"Crypto remote {uuid.uuid4().hex[:6]}"
    spec = tmp_path_factory.mktemp("role") / "role.json"
    ops = ("encrypt", "decrypt", "wrap", "unwrap", "sign", "verify")
    spec.write_text(json.dumps({
        "Name": name, "Actions": [], "AssignableScopes": [scope],
        "DataActions": [f"Microsoft.KeyVault/vaults/keys/{op}/action" for op in ops],
    }))
    server.cli("role", "definition", "create", "--role-definition", f"@{spec}")
    sp = server.cli_json("ad", "sp", "create-for-rbac", "--name", unique("crypto-remote"))
    server.cli("role", "assignment", "create", "--role", name, "--assignee", sp["appId"], "--scope", scope)
    return ClientSecretCredential(
        server.admin["tenantId"], sp["appId"], sp["password"], authority=server.url, disable_instance_discovery=True,
        connection_verify=server.ca,
    )
