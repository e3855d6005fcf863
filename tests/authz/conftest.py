"""Helpers for authorization tests against the real server: second principals, tokens, clients.

Principals are made as a user would make them (`strongroom ad sp create-for-rbac`);
their tokens come from the server's token endpoint.
"""

from __future__ import annotations

import ssl
import uuid
from dataclasses import dataclass

import httpx
import pytest

AUTHZ_API = {"api-version": "2022-04-01"}
MANAGEMENT_SCOPE = "https://management.azure.com/.default"


@dataclass
class SP:
    name: str
    app_id: str
    password: str
    object_id: str


def make_sp(server, prefix: str = "authz") -> SP:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    created = server.cli_json("ad", "sp", "create-for-rbac", "--name", name)
    return SP(name, created["appId"], created["password"], principal(server, created["appId"])["objectId"])


def principal(server, ident: str) -> dict:
    """The directory lookup the CLI uses for --assignee/--spn (cheaper than another CLI process)."""
    with http(server) as h:
        r = h.get(f"{server.url}/strongroom/directory/principals/{ident}", headers={"Authorization": f"Bearer {admin_token(server)}"})
    assert r.status_code == 200, r.text
    return r.json()


def unique_vault(prefix: str = "az") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def http(server) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=15)


def token(server, client_id: str, secret: str, scope: str) -> str:
    with http(server) as h:
        r = h.post(
            f"{server.url}/{server.admin['tenantId']}/oauth2/v2.0/token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": scope},
        )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def sp_token(server, sp: SP, scope: str) -> str:
    return token(server, sp.app_id, sp.password, scope)


_admin_tokens: dict[tuple[str, str], str] = {}


def admin_token(server, scope: str = MANAGEMENT_SCOPE) -> str:
    """The admin's token for `scope` (valid an hour; cached per server for the session)."""
    key = (str(server.state_dir), scope)
    if key not in _admin_tokens:
        a = server.admin
        _admin_tokens[key] = token(server, a["clientId"], a["clientSecret"], scope)
    return _admin_tokens[key]


def vault_scope(server) -> str:
    return f"{server.url.replace('https://localhost', 'https://vault.localhost')}/.default"


def credential(server, sp: SP):
    from azure.identity import ClientSecretCredential

    return ClientSecretCredential(
        server.admin["tenantId"], sp.app_id, sp.password, authority=server.url, disable_instance_discovery=True,
        connection_verify=server.ca,
    )


def secret_client(server, vault: str, sp: SP):
    from azure.keyvault.secrets import SecretClient

    return SecretClient(server.vault_url(vault), credential(server, sp), connection_verify=server.ca)


def vault_id(server, vault: str) -> str:
    return server.cli_json("keyvault", "show", "--name", vault)["id"]


@pytest.fixture(scope="module")
def sp(server) -> SP:
    return make_sp(server)
