"""`strongroom keyvault secret access-review`: who can read or change one secret, and through what."""

from __future__ import annotations

import pytest

from tests.authz.conftest import make_sp, unique_vault, vault_id


def by_principal(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["principalId"], []).append(r)
    return out


@pytest.fixture(scope="module")
def admin_oid(server) -> str:
    return server.cli_json("ad", "sp", "show", "--id", server.admin["clientId"])["id"]


def test_rbac_vault_review_names_every_grant(server, admin_oid):
    name = unique_vault("rv")
    server.cli("keyvault", "create", "--name", name)
    server.cli("keyvault", "secret", "set", "--vault-name", name, "--name", "db", "--value", "x", "-o", "none")
    scope = vault_id(server, name)
    reader, user, officer_elsewhere, delegate, metadata_only = (make_sp(server) for _ in range(5))
    grants = {
        user.object_id: ("Key Vault Secrets User", f"{scope}/secrets/db"),
        reader.object_id: ("Key Vault Secrets Officer", scope.split("/providers/")[0]),  # resource group
        officer_elsewhere.object_id: ("Key Vault Secrets Officer", f"{scope}/secrets/other"),  # another secret
        delegate.object_id: ("Key Vault Data Access Administrator", scope),
        metadata_only.object_id: ("Key Vault Reader", scope),
    }
    ids = {}
    for oid, (role, at) in grants.items():
        ids[oid] = server.cli_json("role", "assignment", "create", "--role", role, "--assignee-object-id", oid, "--scope", at)["id"]

    rows = server.cli_json("keyvault", "secret", "access-review", "--vault-name", name, "--name", "db")
    who = by_principal(rows)
    # The instance admin (break-glass, always) and the vault's creator (here also the admin).
    admin_rows = {r["grantType"]: r for r in who[admin_oid]}
    assert admin_rows["InstanceAdministrator"]["canRead"] and admin_rows["InstanceAdministrator"]["canChange"]
    assert admin_rows["RoleAssignment"]["roleDefinitionName"] == "Key Vault Administrator"
    assert admin_rows["RoleAssignment"]["scopeLevel"] == "vault"
    (u,) = who[user.object_id]
    assert (u["canRead"], u["canChange"], u["grant"], u["scopeLevel"], u["principalName"]) == (
        True, False, ids[user.object_id], "secret", user.name)
    assert u["permissions"] == ["Microsoft.KeyVault/vaults/secrets/readMetadata/action",
                                "Microsoft.KeyVault/vaults/secrets/getSecret/action"]
    (o,) = who[reader.object_id]
    assert o["canRead"] and o["canChange"] and o["scopeLevel"] == "resourceGroup"
    (d,) = who[delegate.object_id]
    assert (d["canRead"], d["canChange"], d["canGrantAccess"]) == (False, False, True)
    assert officer_elsewhere.object_id not in who  # its grant is on another secret
    assert metadata_only.object_id not in who  # metadata only: cannot read or change the value

    table = server.cli("keyvault", "secret", "access-review", "--vault-name", name, "--name", "db", "-o", "table").stdout
    header = table.splitlines()[0].split()
    assert header == ["Principal", "PrincipalId", "Read", "Change", "GrantAccess", "Via"]
    assert "Key Vault Secrets User @ secret" in table and user.name in table and "InstanceAdministrator" in table


def test_access_policy_vault_review_lists_policies_and_who_can_add_one(server, admin_oid):
    name = unique_vault("rp")
    server.cli("keyvault", "create", "--name", name, "--enable-rbac-authorization", "false")
    getter, lister, contributor = make_sp(server), make_sp(server), make_sp(server)
    server.cli("keyvault", "set-policy", "--name", name, "--spn", getter.app_id, "--secret-permissions", "get")
    server.cli("keyvault", "set-policy", "--name", name, "--spn", lister.app_id, "--secret-permissions", "list")
    scope = vault_id(server, name)
    server.cli("role", "assignment", "create", "--role", "Key Vault Contributor", "--assignee", contributor.app_id, "--scope", scope)
    who = by_principal(server.cli_json("keyvault", "secret", "access-review", "--vault-name", name, "--name", "anything"))
    (g,) = who[getter.object_id]
    assert (g["grantType"], g["canRead"], g["canChange"], g["permissions"]) == ("AccessPolicy", True, False, ["secrets/get"])
    assert lister.object_id not in who
    # Writing access policies needs roleAssignments/write now, which Key Vault Contributor lacks
    # (tests/authz/test_control_plane_escalation.py): it cannot get at the secret, so it is not listed.
    assert contributor.object_id not in who
    assert {r["grantType"] for r in who[admin_oid]} == {"InstanceAdministrator", "AccessPolicy"}


def test_review_of_a_missing_vault_or_by_an_outsider_is_refused(server, vault):
    missing = server.cli("keyvault", "secret", "access-review", "--vault-name", "no-such-vault-x", "--name", "s", check=False)
    assert missing.returncode != 0
    from tests.authz.conftest import AUTHZ_API, MANAGEMENT_SCOPE, http, sp_token

    outsider = make_sp(server)
    with http(server) as h:
        r = h.get(f"{server.url}{vault_id(server, vault)}/secrets/s/providers/Strongroom.Authorization/accessReview",
                  params=AUTHZ_API, headers={"Authorization": f"Bearer {sp_token(server, outsider, MANAGEMENT_SCOPE)}"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "AuthorizationFailed")
