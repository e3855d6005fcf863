"""`strongroom role assignment|definition` as a user types them: az's flags, JSON and errors;
ARM's answers to bad requests; delegation with Key Vault Data Access Administrator; custom roles."""

from __future__ import annotations

import json
import uuid

import pytest
from azure.core.exceptions import HttpResponseError

from tests.authz.conftest import (
    AUTHZ_API,
    MANAGEMENT_SCOPE,
    http,
    make_sp,
    secret_client,
    sp_token,
    unique_vault,
    vault_id,
)

ASSIGNMENTS = "providers/Microsoft.Authorization/roleAssignments"


@pytest.fixture(scope="module")
def kv(server) -> str:
    name = unique_vault("rc")
    server.cli("keyvault", "create", "--name", name)
    server.cli("keyvault", "secret", "set", "--vault-name", name, "--name", "s", "--value", "v", "-o", "none")
    return name


def fails(server, *args: str) -> str:
    proc = server.cli(*args, check=False)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


def test_role_can_be_named_by_name_guid_or_full_id(server, kv):
    scope = vault_id(server, kv)
    sub = server.admin["subscriptionId"]
    for role in ("key vault reader", "21090545-7ca7-4776-b22c-e363652d74d2",
                 f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/21090545-7ca7-4776-b22c-e363652d74d2"):
        sp = make_sp(server)
        a = server.cli_json("role", "assignment", "create", "--role", role, "--assignee", sp.object_id, "--scope", scope)
        assert a["roleDefinitionId"] == (
            f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/21090545-7ca7-4776-b22c-e363652d74d2"
        )
        assert a["principalId"] == sp.object_id and a["principalType"] == "ServicePrincipal"


def test_list_follows_az_scoping_rules(server, kv):
    sp = make_sp(server)
    scope = vault_id(server, kv)
    rg_scope = scope.split("/providers/")[0]
    server.cli("role", "assignment", "create", "--role", "Key Vault Reader", "--assignee", sp.app_id, "--scope", rg_scope)
    server.cli("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", sp.app_id, "--scope", f"{scope}/secrets/s")
    # Default: subscription scope only, as az.
    assert server.cli_json("role", "assignment", "list", "--assignee", sp.app_id) == []
    everywhere = server.cli_json("role", "assignment", "list", "--assignee", sp.app_id, "--all")
    assert sorted(a["roleDefinitionName"] for a in everywhere) == ["Key Vault Reader", "Key Vault Secrets User"]
    assert {a["principalName"] for a in everywhere} == {sp.name}
    at_secret = server.cli_json("role", "assignment", "list", "--scope", f"{scope}/secrets/s", "--assignee", sp.app_id)
    assert [a["roleDefinitionName"] for a in at_secret] == ["Key Vault Secrets User"]
    inherited = server.cli_json("role", "assignment", "list", "--scope", f"{scope}/secrets/s", "--assignee", sp.app_id,
                                "--include-inherited")
    assert len(inherited) == 2
    by_role = server.cli_json("role", "assignment", "list", "--all", "--assignee", sp.app_id, "--role", "Key Vault Reader")
    assert [a["scope"] for a in by_role] == [rg_scope]
    table = server.cli("role", "assignment", "list", "--all", "--assignee", sp.app_id, "-o", "table").stdout
    assert "Key Vault Secrets User" in table and sp.name in table
    server.cli("role", "assignment", "delete", "--assignee", sp.app_id, "--scope", rg_scope)
    assert [a["roleDefinitionName"] for a in server.cli_json("role", "assignment", "list", "--all", "--assignee", sp.app_id)] == [
        "Key Vault Secrets User"]


def test_cli_errors_in_azs_words(server, kv):
    scope = vault_id(server, kv)
    sp = make_sp(server)
    assert "Role 'Key Vault Janitor' doesn't exist." in fails(
        server, "role", "assignment", "create", "--role", "Key Vault Janitor", "--assignee", sp.app_id, "--scope", scope)
    assert "Cannot find user or service principal in graph database for 'nobody'" in fails(
        server, "role", "assignment", "create", "--role", "Key Vault Reader", "--assignee", "nobody", "--scope", scope)
    assert "--scope is required for role assignment creation." in fails(
        server, "role", "assignment", "create", "--role", "Key Vault Reader", "--assignee", sp.app_id)
    server.cli("role", "assignment", "create", "--role", "Key Vault Reader", "--assignee", sp.app_id, "--scope", scope)
    assert "(RoleAssignmentExists) The role assignment already exists." in fails(
        server, "role", "assignment", "create", "--role", "Key Vault Reader", "--assignee", sp.app_id, "--scope", scope)
    missing = scope.rsplit("/", 1)[0] + "/no-such-vault"
    assert "(ResourceNotFound)" in fails(
        server, "role", "assignment", "create", "--role", "Key Vault Reader", "--assignee", sp.app_id, "--scope", missing)
    assert "(InvalidScope)" in fails(
        server, "role", "assignment", "create", "--role", "Key Vault Reader", "--assignee", sp.app_id, "--scope", scope + "/keys/k")
    assert "No matched assignments were found to delete" in fails(
        server, "role", "assignment", "delete", "--assignee", sp.app_id, "--role", "Key Vault Administrator", "--scope", scope)


def arm(server, method: str, path: str, token: str, body=None):
    with http(server) as h:
        return h.request(method, f"{server.url}{path}", params=AUTHZ_API, json=body, headers={"Authorization": f"Bearer {token}"})


def test_arm_validation_answers(server, kv):
    from tests.authz.conftest import admin_token

    token = admin_token(server)
    scope = vault_id(server, kv)
    sub = server.admin["subscriptionId"]
    role_id = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6"
    sp = make_sp(server)
    cases = [
        ("not-a-guid", {"properties": {"roleDefinitionId": role_id, "principalId": sp.object_id}}, 400, "InvalidRoleAssignmentId"),
        (str(uuid.uuid4()), {"properties": {"roleDefinitionId": role_id.replace("4633458b", "00000000"), "principalId": sp.object_id}},
         400, "RoleDefinitionDoesNotExist"),
        (str(uuid.uuid4()), {"properties": {"roleDefinitionId": role_id, "principalId": str(uuid.uuid4())}}, 400, "PrincipalNotFound"),
        (str(uuid.uuid4()), {"properties": {"roleDefinitionId": role_id, "principalId": sp.object_id, "principalType": "User"}},
         400, "UnmatchedPrincipalType"),
        (str(uuid.uuid4()), {"properties": {"roleDefinitionId": role_id, "principalId": sp.object_id,
                                            "condition": "@Resource[x:y] StringEquals 'z'", "conditionVersion": "2.0"}},
         400, "InvalidCondition"),
        (str(uuid.uuid4()), {"nothing": 1}, 400, "InvalidRequestContent"),
    ]
    for name, body, status, code in cases:
        r = arm(server, "PUT", f"{scope}/{ASSIGNMENTS}/{name}", token, body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    other_sub = arm(server, "GET", f"/subscriptions/{uuid.uuid4()}/{ASSIGNMENTS}", token)
    assert (other_sub.status_code, other_sub.json()["error"]["code"]) == (404, "SubscriptionNotFound")
    name = str(uuid.uuid4())
    ok = arm(server, "PUT", f"{scope}/{ASSIGNMENTS}/{name}", token, {"properties": {"roleDefinitionId": role_id, "principalId": sp.app_id}})
    assert ok.status_code == 201 and ok.json()["properties"]["principalId"] == sp.object_id  # appId resolved to the object id
    moved = arm(server, "PUT", f"{scope}/{ASSIGNMENTS}/{name}", token,
                {"properties": {"roleDefinitionId": role_id.replace("4633458b-17de-408a-b874-0445c86b69e6",
                                                                    "21090545-7ca7-4776-b22c-e363652d74d2"),
                                "principalId": sp.object_id}})
    assert (moved.status_code, moved.json()["error"]["code"]) == (409, "RoleAssignmentUpdateNotPermitted")
    got = arm(server, "GET", f"{scope}/{ASSIGNMENTS}/{name}", token)
    assert got.status_code == 200 and got.json() == ok.json()
    assert arm(server, "DELETE", f"{scope}/{ASSIGNMENTS}/{name}", token).status_code == 200
    assert arm(server, "DELETE", f"{scope}/{ASSIGNMENTS}/{name}", token).status_code == 204
    gone = arm(server, "GET", f"{scope}/{ASSIGNMENTS}/{name}", token)
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "RoleAssignmentNotFound")


def test_data_access_administrator_may_grant_only_key_vault_data_roles(server, kv):
    delegate, grantee = make_sp(server, "daa"), make_sp(server)
    scope = vault_id(server, kv)
    sub = server.admin["subscriptionId"]
    server.cli("role", "assignment", "create", "--role", "Key Vault Data Access Administrator",
               "--assignee", delegate.app_id, "--scope", scope)
    token = sp_token(server, delegate, MANAGEMENT_SCOPE)

    def put(role_guid: str, at: str = scope):
        body = {"properties": {"roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}",
                               "principalId": grantee.object_id}}
        return arm(server, "PUT", f"{at}/{ASSIGNMENTS}/{uuid.uuid4()}", token, body)

    granted = put("4633458b-17de-408a-b874-0445c86b69e6")  # Secrets User: allowed by the condition
    assert granted.status_code == 201, granted.text
    assert secret_client(server, kv, grantee).get_secret("s").value == "v"
    for escalation in ("8b54135c-b56d-4d72-a534-26097cfdc8d8", "f25e0fa2-a7c8-4377-a976-54943a77a395"):
        r = put(escalation)  # another Data Access Administrator, or Key Vault Contributor: outside the condition
        assert (r.status_code, r.json()["error"]["code"]) == (403, "AuthorizationFailed")
        assert "Microsoft.Authorization/roleAssignments/write" in r.json()["error"]["message"]
    above = put("4633458b-17de-408a-b874-0445c86b69e6", f"/subscriptions/{sub}")  # outside its scope
    assert above.status_code == 403
    listed = arm(server, "GET", f"{scope}/{ASSIGNMENTS}", token)
    assert listed.status_code == 200 and granted.json()["id"] in [a["id"] for a in listed.json()["value"]]
    assert arm(server, "DELETE", granted.json()["id"], token).status_code == 200
    # A Secrets User has no right to read assignments at all.
    denied = arm(server, "GET", f"{scope}/{ASSIGNMENTS}", sp_token(server, grantee, MANAGEMENT_SCOPE))
    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "AuthorizationFailed")


def test_custom_role_definition_lifecycle(server, kv, tmp_path):
    scope = vault_id(server, kv)
    name = f"Secrets Officer without purge {uuid.uuid4().hex[:6]}"
    spec = tmp_path / "role.json"
    spec.write_text(json.dumps({
        "Name": name, "IsCustom": True, "Description": "Everything on secrets except purge.",
        "Actions": [], "NotActions": [],
        "DataActions": ["Microsoft.KeyVault/vaults/secrets/*"],
        "NotDataActions": ["Microsoft.KeyVault/vaults/secrets/purge/action"],
        "AssignableScopes": [scope],
    }))
    created = server.cli_json("role", "definition", "create", "--role-definition", f"@{spec}")
    assert created["roleName"] == name and created["roleType"] == "CustomRole"
    assert created["assignableScopes"] == [scope]
    assert created["permissions"][0]["notDataActions"] == ["Microsoft.KeyVault/vaults/secrets/purge/action"]
    listed = server.cli_json("role", "definition", "list", "--custom-role-only")
    assert name in [r["roleName"] for r in listed]
    assert "Key Vault Secrets User" not in [r["roleName"] for r in listed]

    sp = make_sp(server)
    a = server.cli_json("role", "assignment", "create", "--role", name, "--assignee", sp.app_id, "--scope", scope)
    client = secret_client(server, kv, sp)
    client.set_secret("custom", "c1")
    client.begin_delete_secret("custom").wait()
    with pytest.raises(HttpResponseError) as exc:
        client.purge_deleted_secret("custom")
    assert "Action: 'Microsoft.KeyVault/vaults/secrets/purge/action'" in exc.value.response.json()["error"]["message"]

    assert "(RoleDefinitionWithSameNameExists)" in fails(server, "role", "definition", "create", "--role-definition", f"@{spec}")
    assert "(RoleDefinitionHasAssignments)" in fails(server, "role", "definition", "delete", "--name", name)
    assert "(InvalidRoleAssignmentScope)" in fails(
        server, "role", "assignment", "create", "--role", name, "--assignee", sp.app_id, "--scope", scope.split("/providers/")[0])
    server.cli("role", "assignment", "delete", "--ids", a["id"])
    server.cli("role", "definition", "delete", "--name", name)
    assert server.cli_json("role", "definition", "list", "--name", name) == []


@pytest.mark.parametrize("bad,code", [
    ({"DataActions": ["Microsoft.KeyVault/vaults/secrets/stealEverything/action"]}, "InvalidDataActionOrNotDataAction"),
    ({"AssignableScopes": ["/"]}, "InvalidAssignableScope"),
    ({"AssignableScopes": ["/subscriptions/00000000-0000-0000-0000-000000000000"]}, "SubscriptionNotFound"),
])
def test_custom_roles_are_validated(server, bad, code):
    spec = {"Name": f"bad-{uuid.uuid4().hex[:6]}", "DataActions": ["Microsoft.KeyVault/vaults/secrets/getSecret/action"],
            "AssignableScopes": [f"/subscriptions/{server.admin['subscriptionId']}"], **bad}
    assert f"({code})" in fails(server, "role", "definition", "create", "--role-definition", json.dumps(spec))


def test_built_in_roles_cannot_be_changed(server):
    from tests.authz.conftest import admin_token

    sub = server.admin["subscriptionId"]
    r = arm(server, "DELETE",
            f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6",
            admin_token(server))
    assert (r.status_code, r.json()["error"]["code"]) == (400, "RoleDefinitionIsBuiltIn")


def test_a_purged_vault_takes_its_assignments_and_a_namesake_inherits_nothing(server):
    name = unique_vault("pg")
    server.cli("keyvault", "create", "--name", name)
    scope = vault_id(server, name)
    sp = make_sp(server)
    server.cli("role", "assignment", "create", "--role", "Key Vault Secrets Officer", "--assignee", sp.app_id, "--scope", scope)
    server.cli("keyvault", "delete", "--name", name)
    server.cli("keyvault", "purge", "--name", name)
    assert server.cli_json("role", "assignment", "list", "--all", "--assignee", sp.app_id) == []
    server.cli("keyvault", "create", "--name", name)
    (only,) = server.cli_json("role", "assignment", "list", "--scope", scope)
    assert only["roleDefinitionName"] == "Key Vault Administrator" and only["principalId"] != sp.object_id
