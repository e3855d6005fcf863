"""The managed-identity endpoint: azure-identity's ManagedIdentityCredential with IDENTITY_ENDPOINT + IDENTITY_HEADER."""

from __future__ import annotations

import os

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError, ManagedIdentityCredential

from tests.identity.conftest import claims_of, http, unique, vault_scope


@pytest.fixture(scope="module")
def identity(admin):
    return admin.create_identity(unique("rg"), unique("vm-id"))


@pytest.fixture
def msi_env(server, monkeypatch):
    header = (server.state_dir / "identity-header").read_text().strip()
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{server.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", header)
    for name in ("IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    return header


def test_header_secret_is_private_to_the_owner(server):
    assert os.stat(server.state_dir / "identity-header").st_mode & 0o777 == 0o600


@pytest.mark.parametrize("selector", ["client_id", "object_id", "resource_id"])
def test_managed_identity_credential_gets_a_token_for_the_chosen_identity(server, identity, msi_env, selector):
    props = identity["properties"]
    if selector == "client_id":
        cred = ManagedIdentityCredential(client_id=props["clientId"], connection_verify=server.ca)
    else:
        value = props["principalId"] if selector == "object_id" else identity["id"]
        cred = ManagedIdentityCredential(identity_config={selector: value}, connection_verify=server.ca)
    token = cred.get_token(vault_scope(server))
    claims = claims_of(token.token)
    assert claims["oid"] == props["principalId"]
    assert claims["appid"] == props["clientId"]
    assert claims["xms_mirid"] == identity["id"]


def test_raw_response_is_app_services_shape(server, identity, msi_env):
    with http(server) as c:
        r = c.get(f"{server.url}/msi/token", headers={"X-IDENTITY-HEADER": msi_env},
                  params={"api-version": "2019-08-01", "resource": vault_scope(server).removesuffix("/.default"),
                          "client_id": identity["properties"]["clientId"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert sorted(body) == ["access_token", "client_id", "expires_on", "resource", "token_type"]
    assert isinstance(body["expires_on"], str) and body["expires_on"].isdigit()
    assert body["client_id"] == identity["properties"]["clientId"] and body["token_type"] == "Bearer"


def test_wrong_header_is_refused(server, identity, msi_env):
    with http(server) as c:
        r = c.get(f"{server.url}/msi/token", headers={"X-IDENTITY-HEADER": "guess"},
                  params={"api-version": "2019-08-01", "resource": vault_scope(server).removesuffix("/.default"),
                          "client_id": identity["properties"]["clientId"]})
    assert r.status_code == 401
    assert set(r.json()) >= {"statusCode", "message"}
    assert "access_token" not in r.text


def test_service_principals_are_not_served(server, msi_env):
    """Only managed identities come out of this endpoint, never the admin or an app registration."""
    with pytest.raises((ClientAuthenticationError, CredentialUnavailableError)):
        ManagedIdentityCredential(client_id=server.admin["clientId"], connection_verify=server.ca).get_token(vault_scope(server))


def test_unknown_resource_is_refused(server, identity, msi_env):
    cred = ManagedIdentityCredential(client_id=identity["properties"]["clientId"], connection_verify=server.ca)
    with pytest.raises((ClientAuthenticationError, CredentialUnavailableError)) as info:
        cred.get_token("https://storage.azure.com/.default")
    assert "AADSTS500011" in str(info.value)
