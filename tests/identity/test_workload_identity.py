"""The unmodified azure-identity WorkloadIdentityCredential against the instance, with tokens of its local cluster.

Configured only as a user would configure it in a pod: client id, tenant id,
the projected token file and the authority host (constructor arguments or the
AZURE_* environment variables the webhook injects), plus the CA to trust.
"""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import WorkloadIdentityCredential

from tests.identity.conftest import EXCHANGE, claims_of, local_cluster, unique, vault_scope


def credential(server, client_id: str, token_file, **kwargs) -> WorkloadIdentityCredential:
    return WorkloadIdentityCredential(
        tenant_id=server.admin["tenantId"], client_id=client_id, token_file_path=str(token_file),
        authority=server.url, connection_verify=server.ca, **kwargs,
    )


def test_seed_identity_steps_as_typed_then_sdk_gets_a_vault_token(server, tmp_path):
    """identity create, serviceaccount create, oidc-issuer, federated-credential create, cluster token -> SDK token."""
    rg, name, ns, sa = unique("rg"), unique("app-id"), "workload", unique("sa")
    identity = server.cli_json("identity", "create", "--name", name, "-g", rg)
    assert identity["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities"
    server.cli("cluster", "serviceaccount", "create", "--namespace", ns, "--name", sa,
               "--annotations", f"azure.workload.identity/client-id={identity['clientId']}")
    issuer = server.cli("cluster", "oidc-issuer").stdout.strip()
    assert issuer == f"https://localhost:{server.port}/clusters/local"
    fic = server.cli_json("identity", "federated-credential", "create", "--name", "kubernetes-federated-credential",
                          "--identity-name", name, "-g", rg, "--issuer", issuer,
                          "--subject", f"system:serviceaccount:{ns}:{sa}")
    assert fic["audiences"] == [EXCHANGE]
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(server.cli("cluster", "token", "--namespace", ns, "--service-account", sa,
                                     "--audience", EXCHANGE, "--pod-name", "app-0").stdout)

    token = credential(server, identity["clientId"], token_file).get_token(vault_scope(server))
    claims = claims_of(token.token)
    assert claims["oid"] == identity["principalId"]
    assert claims["appid"] == identity["clientId"]
    assert claims["xms_mirid"] == identity["id"]
    assert token.expires_on > time.time() + 3000


def test_environment_configuration_as_the_webhook_injects_it(server, admin, tmp_path, monkeypatch):
    fed = admin.federate()
    token_file = tmp_path / "token"
    token_file.write_text(admin.cluster_token(fed.namespace, fed.service_account))
    monkeypatch.setenv("AZURE_CLIENT_ID", fed.client_id)
    monkeypatch.setenv("AZURE_TENANT_ID", server.admin["tenantId"])
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", server.url)
    token = WorkloadIdentityCredential(connection_verify=server.ca).get_token(vault_scope(server))
    assert claims_of(token.token)["oid"] == fed.principal_id


def _error_of(server, client_id: str, token_file) -> str:
    with pytest.raises(ClientAuthenticationError) as info:
        credential(server, client_id, token_file).get_token(vault_scope(server))
    return str(info.value)


def test_service_account_without_federated_credential_is_refused(server, admin, tmp_path):
    fed = admin.federate()
    stranger = unique("sa")
    admin.service_account(fed.namespace, stranger)
    token_file = tmp_path / "token"
    token_file.write_text(admin.cluster_token(fed.namespace, stranger))
    assert "AADSTS700213" in _error_of(server, fed.client_id, token_file)


def test_wrong_audience_reaches_the_sdk(server, admin, tmp_path):
    fed = admin.federate()
    token_file = tmp_path / "token"
    token_file.write_text(admin.cluster_token(fed.namespace, fed.service_account, "api://NotTheExchange"))
    assert "AADSTS700212" in _error_of(server, fed.client_id, token_file)


def test_wrong_issuer_reaches_the_sdk(server, admin, tmp_path):
    fed = admin.federate(issuer="https://oidc.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/")
    token_file = tmp_path / "token"
    token_file.write_text(admin.cluster_token(fed.namespace, fed.service_account))
    assert "AADSTS700211" in _error_of(server, fed.client_id, token_file)


def test_expired_assertion_reaches_the_sdk(server, admin, tmp_path):
    fed = admin.federate()
    with local_cluster(server) as cluster:
        expired, _ = cluster.token(fed.namespace, fed.service_account, [EXCHANGE], duration=600,
                                   issued_at=int(time.time()) - 7200)
    token_file = tmp_path / "token"
    token_file.write_text(expired)
    assert "AADSTS700024" in _error_of(server, fed.client_id, token_file)
