"""Control-plane escalation: who may change who gets data access, read vaults, recover them.

Each test attacks the real server over the wire as a low-privilege principal with
its own token (issue #10, section 1). Before the fix every attack here succeeded.
"""

from __future__ import annotations

import pytest

from tests.authz.attack import Actor, assert_authorization_failed, policy
from tests.authz.conftest import make_sp, unique_vault

GRANT = "Microsoft.Authorization/roleAssignments/write"


@pytest.fixture(scope="module")
def admin(server) -> Actor:
    return Actor(server)


@pytest.fixture(scope="module")
def tenant(server) -> str:
    return server.admin["tenantId"]


def _vault_with_secret(admin: Actor, rbac: bool = True) -> str:
    name = unique_vault("esc")
    assert admin.put_vault(name, enableRbacAuthorization=rbac).status_code in (200, 201)
    assert admin.data("PUT", name, "/secrets/crown-jewels", json={"value": "s3cret-value"}).status_code == 200
    return name


def test_key_vault_contributor_cannot_switch_to_access_policies_and_grant_itself_get(server, admin, tenant):
    vault = _vault_with_secret(admin)
    attacker = Actor(server, make_sp(server, "contrib"))
    assert admin.assign(admin.vault_path(vault), "Key Vault Contributor", attacker.object_id).status_code == 201

    r = attacker.put_vault(vault, enableRbacAuthorization=False,
                           accessPolicies=[policy(tenant, attacker.object_id, "get", "list")])
    assert_authorization_failed(r, GRANT)
    # The vault is unchanged and the secret stays out of reach.
    shown = admin.arm("GET", admin.vault_path(vault)).json()["properties"]
    assert shown["enableRbacAuthorization"] is True
    assert all(p["objectId"] != attacker.object_id for p in shown["accessPolicies"])
    assert attacker.data("GET", vault, "/secrets/crown-jewels").status_code == 403

    # Two steps instead of one: the model switch alone is refused too.
    assert_authorization_failed(attacker.put_vault(vault, enableRbacAuthorization=False), GRANT)


def test_contributor_cannot_write_access_policies_of_an_access_policy_vault(server, admin, tenant):
    vault = _vault_with_secret(admin, rbac=False)
    attacker = Actor(server, make_sp(server, "contrib-ap"))
    assert admin.assign(admin.vault_path(vault), "Key Vault Contributor", attacker.object_id).status_code == 201
    mine = [policy(tenant, attacker.object_id, "get")]

    assert_authorization_failed(attacker.put_vault(vault, enableRbacAuthorization=False, accessPolicies=mine), GRANT)
    for kind in ("add", "replace"):
        r = attacker.arm("PUT", admin.vault_path(vault) + f"/accessPolicies/{kind}", json={"properties": {"accessPolicies": mine}})
        assert_authorization_failed(r, GRANT)
    assert attacker.data("GET", vault, "/secrets/crown-jewels").status_code == 403


def test_creator_whose_assignment_was_removed_cannot_switch_the_model_back_to_itself(server, admin, tenant):
    creator = Actor(server, make_sp(server, "creator"))
    vault = unique_vault("own")
    assert creator.put_vault(vault).status_code == 201
    assert creator.data("PUT", vault, "/secrets/crown-jewels", json={"value": "s3cret-value"}).status_code == 200
    # The admin takes the creator's data access away.
    listed = admin.arm("GET", admin.vault_path(vault) + "/providers/Microsoft.Authorization/roleAssignments",
                       params={"api-version": "2022-04-01"}).json()["value"]
    for a in listed:
        if a["properties"]["principalId"] == creator.object_id:
            assert admin.arm("DELETE", a["id"], params={"api-version": "2022-04-01"}).status_code == 200
    assert creator.data("GET", vault, "/secrets/crown-jewels").status_code == 403

    r = creator.put_vault(vault, enableRbacAuthorization=False, accessPolicies=[policy(tenant, creator.object_id, "get")])
    assert_authorization_failed(r, GRANT)
    assert creator.data("GET", vault, "/secrets/crown-jewels").status_code == 403


def test_unchanged_policies_and_other_properties_still_update_without_grant_rights(server, admin, tenant):
    """`keyvault update --tags` PUTs the vault back with the same policies: that is plain vaults/write."""
    vault = _vault_with_secret(admin, rbac=False)
    contributor = Actor(server, make_sp(server, "contrib-ok"))
    assert admin.assign(admin.vault_path(vault), "Key Vault Contributor", contributor.object_id).status_code == 201
    current = contributor.arm("GET", admin.vault_path(vault)).json()
    r = contributor.arm("PUT", admin.vault_path(vault), json={
        "location": "local", "tags": {"team": "a"},
        "properties": {"accessPolicies": list(reversed(current["properties"]["accessPolicies"])), "enableRbacAuthorization": False},
    })
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == {"team": "a"}


def test_instance_admin_still_switches_models_and_writes_policies(server, admin, tenant):
    vault = _vault_with_secret(admin)
    reader = make_sp(server, "granted")
    r = admin.put_vault(vault, enableRbacAuthorization=False, accessPolicies=[policy(tenant, reader.object_id, "get")])
    assert r.status_code == 200, r.text
    assert Actor(server, reader).data("GET", vault, "/secrets/crown-jewels").json()["value"] == "s3cret-value"


def test_a_non_boolean_permission_model_flag_is_refused(server, admin):
    vault = _vault_with_secret(admin)
    r = admin.put_vault(vault, enableRbacAuthorization=0)
    # ARM's code for a body property of the wrong type (server/bodies.py reads every vault property strictly)
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidRequestContent"
    assert "enableRbacAuthorization" in r.json()["error"]["message"]
    assert admin.arm("GET", admin.vault_path(vault)).json()["properties"]["enableRbacAuthorization"] is True


# -- reading, listing, recovering vaults ------------------------------------------------------------


def test_vault_get_and_list_need_vaults_read(server, admin, tenant):
    vault = _vault_with_secret(admin)
    admin.arm("PUT", admin.vault_path(vault), json={"location": "local", "tags": {"owner": "payments"}, "properties": {}})
    outsider = Actor(server, make_sp(server, "outsider"))

    r = outsider.arm("GET", admin.vault_path(vault))
    assert_authorization_failed(r, "Microsoft.KeyVault/vaults/read")
    # The same answer for a vault that does not exist: a 403 does not reveal which names are taken.
    assert_authorization_failed(outsider.arm("GET", admin.vault_path(unique_vault("none"))), "Microsoft.KeyVault/vaults/read")
    for path in (f"/subscriptions/{admin.sub}/providers/Microsoft.KeyVault/vaults",
                 f"/subscriptions/{admin.sub}/resourceGroups/strongroom/providers/Microsoft.KeyVault/vaults"):
        r = outsider.arm("GET", path)
        assert r.status_code == 200
        assert vault not in {v["name"] for v in r.json()["value"]}

    contributor = Actor(server, make_sp(server, "reader"))
    assert admin.assign(admin.vault_path(vault), "Key Vault Contributor", contributor.object_id).status_code == 201
    assert contributor.arm("GET", admin.vault_path(vault)).json()["tags"] == {"owner": "payments"}
    listed = contributor.arm("GET", f"/subscriptions/{admin.sub}/providers/Microsoft.KeyVault/vaults").json()["value"]
    assert [v["name"] for v in listed] == [vault]


def test_deleted_vaults_are_listed_only_to_who_may_read_them(server, admin):
    vault = _vault_with_secret(admin)
    assert admin.arm("DELETE", admin.vault_path(vault)).status_code == 200
    outsider = Actor(server, make_sp(server, "outsider-del"))
    listed = outsider.arm("GET", f"/subscriptions/{admin.sub}/providers/Microsoft.KeyVault/deletedVaults").json()["value"]
    assert vault not in {v["name"] for v in listed}
    r = outsider.arm("GET", f"/subscriptions/{admin.sub}/providers/Microsoft.KeyVault/locations/local/deletedVaults/{vault}")
    assert r.status_code == 403
    admin_listed = admin.arm("GET", f"/subscriptions/{admin.sub}/providers/Microsoft.KeyVault/deletedVaults").json()["value"]
    assert vault in {v["name"] for v in admin_listed}


def test_recover_needs_vaults_write_and_the_vaults_own_resource_group(server, admin):
    vault = _vault_with_secret(admin)
    assert admin.arm("DELETE", admin.vault_path(vault)).status_code == 200
    outsider = Actor(server, make_sp(server, "recoverer"))

    r = outsider.put_vault(vault, createMode="recover")
    assert_authorization_failed(r, "Microsoft.KeyVault/vaults/write")
    # Another group path (where the attacker might hold rights) finds nothing to recover.
    r = admin.put_vault(vault, rg="elsewhere", createMode="recover")
    assert r.status_code == 404, r.text
    assert admin.arm("GET", admin.vault_path(vault)).status_code == 404
    assert admin.put_vault(vault, createMode="recover").status_code == 200
    assert admin.data("GET", vault, "/secrets/crown-jewels").json()["value"] == "s3cret-value"


@pytest.mark.parametrize("role", ["Key Vault Data Access Administrator", "Key Vault Administrator", "Key Vault Reader"])
def test_no_built_in_key_vault_role_switches_the_model(server, admin, tenant, role):
    """Data Access Administrator holds roleAssignments/write, but only to assign its eight data roles."""
    vault = _vault_with_secret(admin)
    attacker = Actor(server, make_sp(server, "kvrole"))
    assert admin.assign(admin.vault_path(vault), role, attacker.object_id).status_code == 201
    r = attacker.put_vault(vault, enableRbacAuthorization=False, accessPolicies=[policy(tenant, attacker.object_id, "get")])
    assert r.status_code == 403 and r.json()["error"]["code"] == "AuthorizationFailed", r.text
    assert admin.arm("GET", admin.vault_path(vault)).json()["properties"]["enableRbacAuthorization"] is True
