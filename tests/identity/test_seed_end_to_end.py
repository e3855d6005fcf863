"""The seed's identity steps, typed as a user types them, then the unmodified SDK in a "pod" reads the secret —
and nothing else."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import WorkloadIdentityCredential
from azure.keyvault.secrets import SecretClient

from tests.identity.conftest import unique


def test_workload_identity_reads_the_granted_secret_and_nothing_else(server, tmp_path, monkeypatch):
    vault, rg, identity_name = unique("kv"), unique("rg"), unique("app-id")
    ns, sa = "workload", unique("sa")

    # The walkthrough, with strongroom in place of az / kubectl.
    server.cli("keyvault", "create", "--name", vault, "-g", rg)
    server.cli("keyvault", "secret", "set", "--vault-name", vault, "--name", "db-password", "--value", "s3cret-value")
    server.cli("keyvault", "secret", "set", "--vault-name", vault, "--name", "admin-password", "--value", "not-yours")
    client_id = server.cli("identity", "create", "--name", identity_name, "-g", rg,
                           "--query", "clientId", "-o", "tsv").stdout.strip()
    secret_id = server.cli("keyvault", "show", "--name", vault, "--query", "id", "-o", "tsv").stdout.strip() + "/secrets/db-password"
    server.cli("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", client_id, "--scope", secret_id)
    server.cli("cluster", "serviceaccount", "create", "--namespace", ns, "--name", sa,
               "--annotations", f"azure.workload.identity/client-id={client_id}")
    issuer = server.cli("cluster", "oidc-issuer").stdout.strip()
    server.cli("identity", "federated-credential", "create", "--name", "kubernetes-federated-credential",
               "--identity-name", identity_name, "-g", rg, "--issuer", issuer,
               "--subject", f"system:serviceaccount:{ns}:{sa}", "--audiences", "api://AzureADTokenExchange")
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(server.cli("cluster", "token", "--namespace", ns, "--service-account", sa,
                                     "--audience", "api://AzureADTokenExchange").stdout)

    # Inside the "pod": only what the workload identity webhook injects, plus the CA to trust.
    monkeypatch.setenv("AZURE_CLIENT_ID", client_id)
    monkeypatch.setenv("AZURE_TENANT_ID", server.admin["tenantId"])
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", server.url)
    with WorkloadIdentityCredential(connection_verify=server.ca) as credential:
        client = SecretClient(server.vault_url(vault), credential, connection_verify=server.ca)
        assert client.get_secret("db-password").value == "s3cret-value"
        with pytest.raises(HttpResponseError) as denied:
            client.get_secret("admin-password")
        assert denied.value.status_code == 403
        assert "not-yours" not in str(denied.value)
