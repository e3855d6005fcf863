"""The access review lists who can get a secret *indirectly*: by changing role assignments, the permission
model, access policies or role definitions -- marked `indirect` with the routes in `via`.

Before the fix the review had no such marking, missed role-definition writers entirely, and listed
principals (Key Vault Contributor, a vault's creator) by a route the server no longer allows.
"""

from __future__ import annotations

import uuid

import pytest

from tests.authz.attack import Actor
from tests.authz.conftest import AUTHZ_API, make_sp, unique_vault

S = "Microsoft.KeyVault/vaults/secrets"


def _custom_role(admin: Actor, name: str, scopes: list[str], actions: list[str], data_actions: list[str]) -> str:
    guid = str(uuid.uuid4())
    body = {"properties": {"roleName": f"{name} {guid[:8]}", "description": "", "assignableScopes": scopes,
                           "permissions": [{"actions": actions, "notActions": [], "dataActions": data_actions,
                                            "notDataActions": []}]}}
    r = admin.arm("PUT", f"/subscriptions/{admin.sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
                  json=body, params=AUTHZ_API)
    assert r.status_code == 201, r.text
    return guid


def _review(admin: Actor, vault: str, secret: str) -> dict[str, list[dict]]:
    r = admin.arm("GET", f"{admin.vault_path(vault)}/secrets/{secret}/providers/Strongroom.Authorization/accessReview",
                  params=AUTHZ_API)
    assert r.status_code == 200, r.text
    out: dict[str, list[dict]] = {}
    for row in r.json()["value"]:
        out.setdefault(row["principalId"], []).append(row)
    return out


@pytest.fixture(scope="module")
def admin(server) -> Actor:
    return Actor(server)


def test_rbac_vault_review_marks_every_indirect_route(server, admin):
    vault = unique_vault("ind")
    assert admin.put_vault(vault).status_code == 201
    scope = admin.vault_path(vault)
    sub = f"/subscriptions/{admin.sub}"
    delegate, access_admin, role_writer, reader = (make_sp(server, "ind") for _ in range(4))

    assert admin.assign(scope, "Key Vault Data Access Administrator", delegate.object_id).status_code == 201
    grant_role = _custom_role(admin, "Access admin", [sub], ["Microsoft.Authorization/roleAssignments/write"], [])
    assert admin.assign(scope, grant_role, access_admin.object_id).status_code == 201
    # Holds a metadata-only custom role on the secret and may rewrite that role: it can widen it to getSecret.
    meta_role = _custom_role(admin, "Metadata", [scope], [], [f"{S}/readMetadata/action"])
    writer_role = _custom_role(admin, "Role writer", [scope], ["Microsoft.Authorization/roleDefinitions/write"], [])
    assert admin.assign(f"{scope}/secrets/db", meta_role, role_writer.object_id).status_code == 201
    assert admin.assign(scope, writer_role, role_writer.object_id).status_code == 201
    assert admin.assign(scope, "Key Vault Secrets User", reader.object_id).status_code == 201

    who = _review(admin, vault, "db")
    (d,) = who[delegate.object_id]
    assert (d["canRead"], d["indirect"], d["via"]) == (False, True, ["RoleAssignmentWrite"])
    (a,) = who[access_admin.object_id]
    assert a["indirect"] and a["via"] == ["RoleAssignmentWrite", "PermissionModelSwitch"]
    rows = {r["roleDefinitionName"]: r for r in who[role_writer.object_id]}
    assert rows[f"Metadata {meta_role[:8]}"]["via"] == ["RoleDefinitionWrite"]
    assert rows[f"Metadata {meta_role[:8]}"]["indirect"] is True
    (u,) = who[reader.object_id]
    assert (u["canRead"], u["indirect"], u["via"]) == (True, False, [])

    table = server.cli("keyvault", "secret", "access-review", "--vault-name", vault, "--name", "db", "-o", "table").stdout
    assert "-> RoleDefinitionWrite" in table and "-> RoleAssignmentWrite, PermissionModelSwitch" in table


def test_access_policy_vault_review_lists_who_may_write_policies_and_nobody_who_may_not(server, admin):
    creator = Actor(server, make_sp(server, "apcreator"))
    vault = unique_vault("indap")
    assert creator.put_vault(vault, enableRbacAuthorization=False).status_code == 201
    scope = admin.vault_path(vault)
    contributor, access_admin = make_sp(server, "apc"), make_sp(server, "apa")
    assert admin.assign(scope, "Key Vault Contributor", contributor.object_id).status_code == 201
    grant_role = _custom_role(admin, "Policy admin", [scope], ["Microsoft.Authorization/roleAssignments/write"], [])
    assert admin.assign(scope, grant_role, access_admin.object_id).status_code == 201
    # The creator drops its own policy: it can no longer write one back (needs roleAssignments/write).
    r = admin.put_vault(vault, enableRbacAuthorization=False, accessPolicies=[])
    assert r.status_code == 200, r.text

    who = _review(admin, vault, "anything")
    (a,) = who[access_admin.object_id]
    assert (a["canRead"], a["indirect"], a["via"]) == (False, True, ["AccessPolicyWrite"])
    assert contributor.object_id not in who
    assert creator.object_id not in who
