"""The seed's walkthrough typed with the real, unmodified `az` (azure-cli, pinned) against Strongroom.

Set up exactly as docs/clients.md tells a user: the commands `strongroom cloud show`
prints (`az cloud register --endpoint-resource-manager`, `az cloud set`,
`az config set core.instance_discovery=false`, `az login --service-principal`) and
REQUESTS_CA_BUNDLE. Outputs are read with the `--query` expressions of Microsoft's
docs (`properties.vaultUri`, `clientId`, `id`, `principalId`, ...). See conftest.py for
how `az` is kept on loopback. The tests run in order and build on each other.
"""

from __future__ import annotations

import json
import shlex

import pytest

from tests.azcli.conftest import EXPECTED_EGRESS, Az, instance_metadata, make_az

RG, VAULT, IDENTITY, SA = "rg1", "kv1", "app-id", "workload-sa"
FIC_NAME = "kubernetes-federated-credential"


# The first run installs the client (tests/azcli/tools.py: azure-cli takes 3-4 minutes) inside a fixture.
pytestmark = pytest.mark.timeout(1800)

@pytest.fixture(scope="module")
def az(az_python, az_server, tmp_path_factory) -> Az:
    return make_az(az_python, tmp_path_factory.mktemp("az-home"), az_server)


@pytest.fixture(scope="module")
def state() -> dict:
    """Values later steps read from earlier ones (ids, client ids), as a user's shell variables."""
    return {}


def test_cloud_register_with_the_printed_commands_discovers_every_endpoint(az: Az, az_server):
    commands = az_server.cli("cloud", "show").stdout.strip().splitlines()
    register = next(c for c in commands if c.startswith("az cloud register"))
    az.run(*shlex.split(register)[1:])
    az.run("cloud", "set", "--name", "Strongroom")
    az.run("config", "set", "core.instance_discovery=false", "core.collect_telemetry=false")
    cloud = az.json("cloud", "show")
    port = az_server.port
    assert cloud["endpoints"]["activeDirectory"] == f"https://localhost:{port}"
    assert cloud["endpoints"]["resourceManager"] == f"https://localhost:{port}/"
    assert cloud["endpoints"]["microsoftGraphResourceId"] == f"https://localhost:{port}/"
    assert cloud["endpoints"]["activeDirectoryResourceId"] == "https://management.core.windows.net/"
    assert cloud["suffixes"]["keyvaultDns"] == f".vault.localhost:{port}"


def test_cloud_config_json_registers_the_same_cloud_without_discovery(az: Az, az_server):
    config = az.home / "cloud.json"
    config.write_text(az_server.cli("cloud", "show", "--cloud-config").stdout)
    az.run("cloud", "register", "--name", "StrongroomFromFile", "--cloud-config", f"@{config}", "--skip-endpoint-discovery")
    by_file = az.json("cloud", "show", "--name", "StrongroomFromFile")
    discovered = az.json("cloud", "show", "--name", "Strongroom")
    for key in ("activeDirectory", "activeDirectoryResourceId", "resourceManager", "microsoftGraphResourceId"):
        assert by_file["endpoints"][key] == discovered["endpoints"][key], key
    assert by_file["suffixes"]["keyvaultDns"] == discovered["suffixes"]["keyvaultDns"]
    az.run("cloud", "unregister", "--name", "StrongroomFromFile")


def test_login_as_service_principal_finds_the_subscription(az: Az, az_server):
    a = az_server.admin
    accounts = az.json("login", "--service-principal", "--username", a["clientId"], f"--password={a['clientSecret']}",
                       "--tenant", a["tenantId"])
    meta = instance_metadata(az_server)
    assert [s["id"] for s in accounts] == [meta["subscriptionId"]]
    assert az.tsv("account", "show", "--query", "tenantId") == a["tenantId"]
    assert az.tsv("account", "show", "--query", "user.type") == "servicePrincipal"


def test_group_create_show_exists_list_delete(az: Az):
    created = az.json("group", "create", "--name", RG, "--location", "westeurope")
    assert created["properties"]["provisioningState"] == "Succeeded"
    assert az.tsv("group", "show", "--name", RG, "--query", "location") == "westeurope"
    assert az.tsv("group", "exists", "--name", RG) == "true"
    assert az.tsv("group", "exists", "--name", "no-such-group") == "false"
    az.run("group", "create", "--name", "rg-empty", "--location", "westeurope", "--tags", "team=payments")
    assert az.tsv("group", "list", "--query", "[?tags.team=='payments'].name") == "rg-empty"
    az.run("group", "delete", "--name", "rg-empty", "--yes")
    assert az.tsv("group", "exists", "--name", "rg-empty") == "false"
    missing = az.run("group", "show", "--name", "rg-empty", check=False)
    assert missing.returncode != 0 and "ResourceGroupNotFound" in missing.stderr


def test_keyvault_create_show_list(az: Az, az_server, state):
    vault = az.json("keyvault", "create", "--name", VAULT, "--resource-group", RG)
    assert vault["location"] == "westeurope"  # from the group, as az reads it
    assert vault["properties"]["enableRbacAuthorization"] is True
    uri = az.tsv("keyvault", "show", "--name", VAULT, "--query", "properties.vaultUri")  # no -g: generic resource listing
    assert uri == f"https://{VAULT}.vault.localhost:{az_server.port}/"
    state["vault_id"] = az.tsv("keyvault", "show", "--name", VAULT, "--resource-group", RG, "--query", "id")
    assert state["vault_id"].endswith(f"/resourceGroups/{RG}/providers/Microsoft.KeyVault/vaults/{VAULT}")
    assert az.tsv("keyvault", "list", "--query", "[].name") == VAULT
    assert az.tsv("keyvault", "list", "--resource-group", RG, "--query", "[].name") == VAULT
    assert az.json("keyvault", "list-deleted") == []  # vaults and managed HSMs (none here)
    busy = az.run("group", "delete", "--name", RG, "--yes", check=False)  # a group with a vault in it stays
    assert busy.returncode != 0 and "ResourceGroupNotEmpty" in busy.stderr


def test_secret_set_show_list(az: Az):
    secret_id = az.tsv("keyvault", "secret", "set", "--vault-name", VAULT, "--name", "db-password",
                       "--value", "s3cr3t!", "--query", "id")
    assert f"{VAULT}.vault.localhost" in secret_id and "/secrets/db-password/" in secret_id
    assert az.tsv("keyvault", "secret", "show", "--vault-name", VAULT, "--name", "db-password", "--query", "value") == "s3cr3t!"
    assert az.tsv("keyvault", "secret", "list", "--vault-name", VAULT, "--query", "[].name") == "db-password"


def test_identity_create_show_and_role_assignment(az: Az, state):
    created = az.json("identity", "create", "--name", IDENTITY, "--resource-group", RG)
    assert created["location"] == "westeurope"
    state["client_id"] = az.tsv("identity", "show", "--name", IDENTITY, "--resource-group", RG, "--query", "clientId")
    state["principal_id"] = az.tsv("identity", "show", "--name", IDENTITY, "--resource-group", RG, "--query", "principalId")
    assert state["client_id"] == created["clientId"]
    # --assignee <clientId> is resolved through Microsoft Graph (servicePrincipalNames/any(...)).
    assignment = az.json("role", "assignment", "create", "--role", "Key Vault Secrets User",
                         "--assignee", state["client_id"], "--scope", state["vault_id"])
    assert assignment["principalId"] == state["principal_id"]
    assert assignment["principalType"] == "ServicePrincipal"
    # list resolves names through POST /v1.0/directoryObjects/getByIds.
    rows = az.json("role", "assignment", "list", "--scope", state["vault_id"])
    mine = [r for r in rows if r["principalId"] == state["principal_id"]]
    assert [r["roleDefinitionName"] for r in mine] == ["Key Vault Secrets User"]
    assert mine[0]["principalName"] == state["client_id"]
    by_assignee = az.tsv("role", "assignment", "list", "--assignee", state["client_id"], "--scope", state["vault_id"],
                         "--query", "[].roleDefinitionName")
    assert by_assignee == "Key Vault Secrets User"


def test_ad_sp_create_for_rbac_with_a_role_on_the_vault(az: Az, state):
    sp = az.json("ad", "sp", "create-for-rbac", "--name", "azcli-sp", "--role", "Key Vault Secrets Officer",
                 "--scopes", state["vault_id"])
    assert sp["displayName"] == "azcli-sp" and sp["password"]
    roles = az.tsv("role", "assignment", "list", "--assignee", sp["appId"], "--scope", state["vault_id"],
                   "--query", "[].roleDefinitionName")
    assert roles == "Key Vault Secrets Officer"


def test_federated_credential_and_workload_identity_login(az: Az, az_server, az_python, tmp_path, state):
    issuer = az_server.cli("cluster", "oidc-issuer").stdout.strip()
    fic = az.json("identity", "federated-credential", "create", "--name", FIC_NAME, "--identity-name", IDENTITY,
                  "--resource-group", RG, "--issuer", issuer, "--subject", f"system:serviceaccount:default:{SA}",
                  "--audiences", "api://AzureADTokenExchange")
    assert fic["issuer"] == issuer and fic["subject"] == f"system:serviceaccount:default:{SA}"
    assert az.tsv("identity", "federated-credential", "list", "--identity-name", IDENTITY, "--resource-group", RG,
                  "--query", "[].name") == FIC_NAME
    az_server.cli("cluster", "serviceaccount", "create", "--name", SA)
    token = az_server.cli("cluster", "token", "--service-account", SA, "--audience", "api://AzureADTokenExchange").stdout.strip()

    # The workload, in its own az profile, signs in with the service-account token (az login --federated-token).
    pod = make_az(az_python, tmp_path / "pod", az_server)
    register = next(c for c in az_server.cli("cloud", "show").stdout.splitlines() if c.startswith("az cloud register"))
    pod.run(*shlex.split(register)[1:])
    pod.run("cloud", "set", "--name", "Strongroom")
    pod.run("config", "set", "core.instance_discovery=false", "core.collect_telemetry=false")
    pod.run("login", "--service-principal", "--username", state["client_id"], "--tenant", az_server.admin["tenantId"],
            "--federated-token", token)
    assert pod.tsv("keyvault", "secret", "show", "--vault-name", VAULT, "--name", "db-password", "--query", "value") == "s3cr3t!"
    denied = pod.run("keyvault", "secret", "set", "--vault-name", VAULT, "--name", "other", "--value", "x", check=False)
    assert denied.returncode != 0 and "ForbiddenByRbac" in denied.stderr  # Secrets User reads, never writes
    assert pod.egress() <= EXPECTED_EGRESS, pod.egress()


def test_key_create_show(az: Az):
    kid = az.tsv("keyvault", "key", "create", "--vault-name", VAULT, "--name", "key1", "--kty", "RSA", "--size", "2048",
                 "--query", "key.kid")  # az sends api-version=7.6-preview.2 for every key command
    assert f"{VAULT}.vault.localhost" in kid and "/keys/key1/" in kid
    shown = az.json("keyvault", "key", "show", "--vault-name", VAULT, "--name", "key1")
    assert shown["key"]["kid"] == kid and shown["key"]["kty"] == "RSA"
    assert az.tsv("keyvault", "key", "list", "--vault-name", VAULT, "--query", "[].name") == "key1"


def test_certificate_create_show(az: Az):
    policy = az.run("keyvault", "certificate", "get-default-policy").stdout
    status = az.tsv("keyvault", "certificate", "create", "--vault-name", VAULT, "--name", "cert1", "--policy", policy,
                    "--query", "status")
    assert status == "completed"
    cert = az.json("keyvault", "certificate", "show", "--vault-name", VAULT, "--name", "cert1")
    assert cert["policy"]["x509CertificateProperties"]["subject"] == json.loads(policy)["x509CertificateProperties"]["subject"]
    assert cert["sid"].endswith("/secrets/cert1/" + cert["id"].rsplit("/", 1)[1])
    assert az.tsv("keyvault", "certificate", "list", "--vault-name", VAULT, "--query", "[].name") == "cert1"


def test_az_never_left_loopback(az: Az, az_server):
    """Every outbound attempt was refused by the guard; the only one az makes on its own is its version check."""
    assert az.egress() <= EXPECTED_EGRESS, az.egress()
    # Instance discovery really is off: MSAL never asked login.microsoftonline.com.
    assert not any("login.microsoftonline.com" in line for line in az.egress())
