"""Managed identities and federated identity credentials: az's output, ARM's errors, Entra's rules."""

from __future__ import annotations

import uuid

import pytest

from strongroom.barrier import Barrier, Keyring, MasterKey, SealedStore
from strongroom.identity.directory import Directory, DirectoryError, new_client_secret
from strongroom.identity.fic import FederatedCredentials, validate
from strongroom.storage.sqlite import SQLiteStorage
from tests.identity.conftest import EXCHANGE, token_request, unique

ISSUER = "https://oidc.example.com/tenant/cluster"


# -- Entra's rules, on the domain objects -------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    storage = SQLiteStorage.from_url(f"sqlite:///{tmp_path / 'db'}")
    yield SealedStore(storage, Barrier(Keyring([MasterKey.generate()])))
    storage.close()


@pytest.mark.parametrize("name", ["abc", "a" * 120, "A-1_b", "9lives"])
def test_valid_names(name):
    assert validate(name, ISSUER, "sub", [EXCHANGE]).name == name


@pytest.mark.parametrize("name", ["ab", "a" * 121, "-abc", "_abc", "a.bc", "a bc", "a/bc", "ab€"])
def test_invalid_names(name):
    with pytest.raises(DirectoryError) as info:
        validate(name, ISSUER, "sub", [EXCHANGE])
    assert info.value.status == 400 and "name" in info.value.message


def test_field_lengths_are_at_most_600():
    long_issuer = "https://x.example.com/" + "a" * (600 - len("https://x.example.com/"))
    validate("abc", long_issuer, "s" * 600, ["a" * 600])
    for issuer, subject, audience in ((long_issuer + "a", "s", "a"), (ISSUER, "s" * 601, "a"), (ISSUER, "s", "a" * 601)):
        with pytest.raises(DirectoryError) as info:
            validate("abc", issuer, subject, [audience])
        assert "600" in info.value.message


@pytest.mark.parametrize("audiences", [[], [EXCHANGE, "api://other"], None, "api://AzureADTokenExchange", [""]])
def test_exactly_one_audience(audiences):
    with pytest.raises(DirectoryError) as info:
        validate("abc", ISSUER, "sub", audiences)
    assert info.value.status == 400


@pytest.mark.parametrize("issuer", ["http://insecure.example.com", " https://x.example.com", "https://x.example.com ",
                                    "not a url", "https://x.example.com/?q=1", ""])
def test_issuer_must_be_a_clean_https_url(issuer):
    with pytest.raises(DirectoryError):
        validate("abc", issuer, "sub", [EXCHANGE])


def test_at_most_20_per_identity_and_issuer_subject_unique(store):
    directory, fics = Directory(store), FederatedCredentials(store)
    identity, _ = directory.put_managed_identity(str(uuid.uuid4()), "rg", "id-one", "local", None)
    for i in range(20):
        fics.put(identity, validate(f"fic-{i:02d}", ISSUER, f"system:serviceaccount:ns:sa{i}", [EXCHANGE]))
    with pytest.raises(DirectoryError) as info:
        fics.put(identity, validate("fic-20", ISSUER, "system:serviceaccount:ns:sa20", [EXCHANGE]))
    assert info.value.status == 400 and "20" in info.value.message
    # Replacing an existing credential is not a 21st one.
    fics.put(identity, validate("FIC-00", ISSUER, "system:serviceaccount:ns:other", ["api://x"]))
    replaced = fics.get(identity, "fic-00")
    assert replaced.name == "fic-00" and replaced.subject == "system:serviceaccount:ns:other"
    with pytest.raises(DirectoryError) as info:
        fics.put(identity, validate("fic-01", ISSUER, "system:serviceaccount:ns:sa2", [EXCHANGE]))
    assert info.value.status == 409
    assert len(fics.list(identity)) == 20


def test_directory_finds_identities_by_every_id(store):
    directory = Directory(store)
    identity, created = directory.put_managed_identity("sub-1", "My-RG", "app-id", "local", {"a": "b"})
    again, created_again = directory.put_managed_identity("sub-1", "my-rg", "APP-ID", "local", None)
    assert created and not created_again and again.client_id == identity.client_id
    assert identity.resource_id == (
        "/subscriptions/sub-1/resourceGroups/My-RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-id"
    )
    for key in (identity.client_id, identity.object_id):
        assert directory.find(key).client_id == identity.client_id
    assert directory.managed_identity_by_resource_id(identity.resource_id.lower()).client_id == identity.client_id
    assert directory.resource_group("MY-RG")["name"] == "My-RG"


# -- over the CLI and ARM ------------------------------------------------------------------------


def test_identity_create_prints_azs_json_and_creates_the_resource_group(server):
    rg, name = unique("RG"), unique("app-id")
    out = server.cli_json("identity", "create", "--name", name, "-g", rg)
    assert list(out) == sorted(out)
    assert set(out) == {"clientId", "id", "location", "name", "principalId", "resourceGroup", "systemData", "tags",
                        "tenantId", "type"}
    sub = server.admin["subscriptionId"]
    assert out["id"] == f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    assert out["name"] == name and out["resourceGroup"] == rg and out["tenantId"] == server.admin["tenantId"]
    assert out["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities"
    uuid.UUID(out["clientId"])
    uuid.UUID(out["principalId"])
    assert server.cli_json("identity", "show", "--name", name, "-g", rg) == out
    assert [i["name"] for i in server.cli_json("identity", "list", "-g", rg)] == [name]
    assert name in [i["name"] for i in server.cli_json("identity", "list")]


def test_identity_delete_removes_it_and_its_federated_credentials(server, admin):
    fed = admin.federate()
    token = admin.cluster_token(fed.namespace, fed.service_account)
    server.cli("identity", "delete", "--name", fed.name, "-g", fed.resource_group)
    missing = server.cli("identity", "show", "--name", fed.name, "-g", fed.resource_group, check=False)
    assert missing.returncode == 1 and "(ResourceNotFound)" in missing.stderr
    # A new identity of the same name is a new principal: the old credential and token do not carry over.
    recreated = admin.create_identity(fed.resource_group, fed.name)
    assert recreated["properties"]["clientId"] != fed.client_id
    assert admin.call("GET", admin.identity_path(fed.resource_group, fed.name) + "/federatedIdentityCredentials").json()["value"] == []
    r = token_request(server, {"grant_type": "client_credentials", "client_id": fed.client_id,
                               "client_assertion": token, "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                               "scope": f"https://vault.localhost:{server.port}/.default"})
    assert r.status_code == 400 and r.json()["error_codes"] == [700016]


def test_federated_credential_cli_prints_azs_json(server, admin):
    rg, name = unique("rg"), unique("id")
    admin.create_identity(rg, name)
    out = server.cli_json("identity", "federated-credential", "create", "--name", "kubernetes-fic", "--identity-name", name,
                          "-g", rg, "--issuer", ISSUER, "--subject", "system:serviceaccount:ns:sa")
    assert list(out) == sorted(out)
    assert out["audiences"] == [EXCHANGE] and out["issuer"] == ISSUER and out["subject"] == "system:serviceaccount:ns:sa"
    assert out["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
    assert out["id"].endswith(f"/userAssignedIdentities/{name}/federatedIdentityCredentials/kubernetes-fic")
    assert out["resourceGroup"] == rg
    assert server.cli_json("identity", "federated-credential", "show", "--name", "kubernetes-fic", "--identity-name", name, "-g", rg) == out
    assert server.cli_json("identity", "federated-credential", "list", "--identity-name", name, "-g", rg) == [out]
    server.cli("identity", "federated-credential", "delete", "--name", "kubernetes-fic", "--identity-name", name, "-g", rg, "--yes")
    assert server.cli_json("identity", "federated-credential", "list", "--identity-name", name, "-g", rg) == []


def test_federated_credential_rules_over_http(server, admin):
    rg, name = unique("rg"), unique("id")
    admin.create_identity(rg, name)
    two = server.cli("identity", "federated-credential", "create", "--name", "two-auds", "--identity-name", name, "-g", rg,
                     "--issuer", ISSUER, "--subject", "s", "--audiences", "api://a", "api://b", check=False)
    assert two.returncode == 1 and "exactly one audience" in two.stderr
    assert admin.put_fic(rg, name, "first", ISSUER, "system:serviceaccount:a:b", [EXCHANGE]).status_code == 201
    assert admin.put_fic(rg, name, "first", ISSUER, "system:serviceaccount:a:b", [EXCHANGE]).status_code == 200
    dup = admin.put_fic(rg, name, "second", ISSUER, "system:serviceaccount:a:b", [EXCHANGE])
    assert dup.status_code == 409
    assert dup.json()["error"]["message"] == "Issuer and subject combination already exists for this Managed Identity."
    short = admin.put_fic(rg, name, "xy", ISSUER, "other", [EXCHANGE])
    assert short.status_code == 400 and short.json()["error"]["code"] == "BadRequest"
    missing = admin.put_fic(rg, unique("nobody"), "abc", ISSUER, "s", [EXCHANGE])
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFound"


def test_arm_errors(server, admin):
    bad = admin.call("PUT", admin.identity_path(unique("rg"), "x"), json={"location": "local"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidResourceName"
    no_rg = admin.call("GET", admin.identity_path(unique("never"), "app"))
    assert no_rg.status_code == 404 and no_rg.json()["error"]["code"] == "ResourceGroupNotFound"
    gone = admin.call("DELETE", admin.identity_path(unique("rg"), "never-was"))
    assert gone.status_code == 204


def test_only_the_administrator_manages_identities(server, admin):
    app = server.cli_json("ad", "sp", "create-for-rbac", "--name", unique("intruder"))
    r = token_request(server, {"grant_type": "client_credentials", "client_id": app["appId"], "client_secret": app["password"],
                               "scope": "https://management.azure.com/.default"})
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    path = admin.identity_path(unique("rg"), "sneaky-id")
    refused = admin.http.put(f"{server.url}{path}", json={"location": "local"}, headers=headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "AuthorizationFailed"
    assert admin.http.put(f"{server.url}{path}", json={"location": "local"}).status_code == 401


def test_a_client_secret_never_starts_with_a_dash():
    """`az login --service-principal --password -abc…` reads a leading dash as an option (1 secret in 64 did)."""
    made = [new_client_secret() for _ in range(3000)]
    assert not [s for s in made if s.startswith("-")]
    assert all(len(s) == 43 and s.endswith("~SR") for s in made)
