"""The seed's walkthrough through the provider: a federated service account mounts db-password with
workload identity; a service account without a federated credential, and an identity without a role,
fail with messages that say why.

Everything is set up with the CLI as the walkthrough does it (identity, role assignment, service
account, federated credential); the service-account token comes from the local cluster issuer
(`strongroom cluster token`, as `kubectl create token`) and reaches the provider exactly as the
driver passes it: `csi.storage.k8s.io/serviceAccount.tokens`.
"""

from __future__ import annotations

import grpc
import pytest

from tests.csi.csi_support import driver_attributes, driver_request, objects_yaml, unique

AUDIENCE = "api://AzureADTokenExchange"


@pytest.fixture(scope="module")
def walkthrough(server):
    """Vault + db-password, an identity allowed to read it, a federated service account, and an unfederated one."""
    vault = unique("kvwi")[:20]
    server.cli("keyvault", "create", "--name", vault)
    vault_id = server.cli_json("keyvault", "show", "--name", vault)["id"]
    server.cli("keyvault", "secret", "set", "--vault-name", vault, "--name", "db-password", "--value", "wi-s3cret")
    identity = server.cli_json("identity", "create", "--name", unique("app-id"))
    server.cli(
        "role", "assignment", "create", "--role", "Key Vault Secrets User",
        "--assignee", identity["clientId"], "--scope", vault_id,
    )
    namespace = "app"
    for sa in ("wi-sa", "other-sa"):
        server.cli("cluster", "serviceaccount", "create", "--namespace", namespace, "--name", sa)
    issuer = server.cli("cluster", "oidc-issuer").stdout.strip()
    server.cli(
        "identity", "federated-credential", "create", "--name", "app-fic", "--identity-name", identity["name"],
        "--issuer", issuer, "--subject", f"system:serviceaccount:{namespace}:wi-sa", "--audiences", AUDIENCE,
    )
    return {"vault": vault, "vault_id": vault_id, "identity": identity, "namespace": namespace, "issuer": issuer}


def _token(server, namespace: str, sa: str) -> str:
    return server.cli("cluster", "token", "--namespace", namespace, "--service-account", sa, "--audience", AUDIENCE).stdout.strip()


def _seed_spc(server, walkthrough, client_id: str) -> dict[str, str]:
    """The seed's SecretProviderClass parameters, as written for AKS (deprecated tenantId spelling included)."""
    return {
        "usePodIdentity": "false",
        "clientID": client_id,
        "keyvaultName": walkthrough["vault"],
        "cloudName": "",
        "objects": objects_yaml({"objectName": "db-password", "objectType": "secret", "objectVersion": '""'}),
        "tenantId": server.admin["tenantId"],
    }


def test_federated_service_account_mounts_db_password(server, provider, walkthrough):
    ns = walkthrough["namespace"]
    attributes = driver_attributes(
        _seed_spc(server, walkthrough, walkthrough["identity"]["clientId"]),
        namespace=ns, service_account="wi-sa", tokens={AUDIENCE: _token(server, ns, "wi-sa")},
    )
    response = provider.mount(driver_request(attributes))  # no nodePublishSecretRef: workload identity only
    assert [(f.path, f.contents) for f in response.files] == [("db-password", b"wi-s3cret")]
    assert response.object_version[0].id == "secret/db-password"


def test_unfederated_service_account_fails_with_the_subject_it_presented(server, provider, walkthrough):
    ns = walkthrough["namespace"]
    attributes = driver_attributes(
        _seed_spc(server, walkthrough, walkthrough["identity"]["clientId"]),
        namespace=ns, service_account="other-sa", tokens={AUDIENCE: _token(server, ns, "other-sa")},
    )
    err = provider.mount_error(driver_request(attributes))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "AADSTS7002" in err.details()  # 70021 or its granular 700213 (subject mismatch)
    assert f"subject 'system:serviceaccount:{ns}:other-sa'" in err.details()
    assert walkthrough["issuer"] in err.details()


def test_identity_without_a_role_fails_naming_the_missing_role(server, provider, walkthrough):
    ns = walkthrough["namespace"]
    roleless = server.cli_json("identity", "create", "--name", unique("no-role"))
    server.cli(
        "identity", "federated-credential", "create", "--name", "app-fic", "--identity-name", roleless["name"],
        "--issuer", walkthrough["issuer"], "--subject", f"system:serviceaccount:{ns}:other-sa", "--audiences", AUDIENCE,
    )
    attributes = driver_attributes(
        _seed_spc(server, walkthrough, roleless["clientId"]),
        namespace=ns, service_account="other-sa", tokens={AUDIENCE: _token(server, ns, "other-sa")},
    )
    err = provider.mount_error(driver_request(attributes))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "objectName:db-password" in err.details()
    assert "'Key Vault Secrets User'" in err.details()
    assert f"scope {walkthrough['vault_id'].lower()}" in err.details().lower()


def test_client_id_without_driver_tokens_says_to_configure_token_requests(server, provider, walkthrough):
    attributes = driver_attributes(_seed_spc(server, walkthrough, walkthrough["identity"]["clientId"]))
    err = provider.mount_error(driver_request(attributes))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "tokenRequests" in err.details()


def _msi_env(server, monkeypatch) -> None:
    """The provider's environment on a node with a managed identity endpoint (App Service protocol)."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{server.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", (server.state_dir / "identity-header").read_text().strip())


def test_vm_managed_identity_mounts_through_the_identity_endpoint(server, walkthrough, monkeypatch):
    from strongroom.csi.provider import mount
    from tests.csi.csi_support import provider_config

    _msi_env(server, monkeypatch)
    params = {
        "keyvaultName": walkthrough["vault"],
        "tenantID": server.admin["tenantId"],
        "useVMManagedIdentity": "true",
        "userAssignedIdentityID": walkthrough["identity"]["clientId"],
        "objects": objects_yaml({"objectName": "db-password", "objectType": "secret"}),
    }
    result = mount(driver_attributes(params), {}, 0o644, config=provider_config(server))
    assert [(f.path, f.contents) for f in result.files] == [("db-password", b"wi-s3cret")]


def test_vm_managed_identity_with_a_wrong_header_is_refused_with_a_hint(server, walkthrough, monkeypatch):
    from strongroom.csi.errors import ProviderError
    from strongroom.csi.provider import mount
    from tests.csi.csi_support import provider_config

    _msi_env(server, monkeypatch)
    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    params = {
        "keyvaultName": walkthrough["vault"],
        "tenantID": server.admin["tenantId"],
        "useVMManagedIdentity": "true",
        "userAssignedIdentityID": walkthrough["identity"]["clientId"],
        "objects": objects_yaml({"objectName": "db-password", "objectType": "secret"}),
    }
    with pytest.raises(ProviderError) as info:
        mount(driver_attributes(params), {}, 0o644, config=provider_config(server))
    assert info.value.status == "UNAUTHENTICATED"
    assert "X-IDENTITY-HEADER" in info.value.message and "user-assigned managed identity" in info.value.message
