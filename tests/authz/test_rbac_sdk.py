"""Azure RBAC end to end: the official SecretClient as a second principal, roles granted with the CLI."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from tests.authz.conftest import SP, make_sp, secret_client, unique_vault, vault_id

SET_ACTION = "Microsoft.KeyVault/vaults/secrets/setSecret/action"
GET_ACTION = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
LIST_ACTION = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"


@pytest.fixture(scope="module")
def kv(server) -> str:
    name = unique_vault("rb")
    server.cli("keyvault", "create", "--name", name)
    for secret in ("db-password", "api-key"):
        server.cli("keyvault", "secret", "set", "--vault-name", name, "--name", secret, "--value", f"value-of-{secret}", "-o", "none")
    return name


def grant(server, role: str, sp: SP, scope: str) -> dict:
    return server.cli_json("role", "assignment", "create", "--role", role, "--assignee", sp.app_id, "--scope", scope)


def assert_forbidden_by_rbac(exc: HttpResponseError, action: str, resource: str, vault: str) -> None:
    assert exc.status_code == 403
    body = exc.response.json()["error"]
    assert body["code"] == "Forbidden"
    assert body["innererror"] == {"code": "ForbiddenByRbac"}
    lines = body["message"].split("\r\n")
    assert lines[0] == "Caller is not authorized to perform action on resource."
    assert f"Action: '{action}'" in lines
    assert f"Resource: '{resource.lower()}'" in lines
    assert "Assignment: (not found)" in lines
    assert "DecisionReason: 'DeniedWithNoValidRBAC' " in lines
    assert f"Vault: {vault};location=local" in lines
    assert any(line.startswith("Caller: appid=") for line in lines)


def test_secrets_user_can_get_and_list_but_setting_is_forbidden(server, kv):
    sp = make_sp(server)
    scope = vault_id(server, kv)
    created = grant(server, "Key Vault Secrets User", sp, scope)
    assert created["roleDefinitionId"].endswith("/4633458b-17de-408a-b874-0445c86b69e6")
    assert created["principalId"] == sp.object_id and created["scope"] == scope
    assert created["id"] == f"{scope}/providers/Microsoft.Authorization/roleAssignments/{created['name']}"

    client = secret_client(server, kv, sp)
    assert client.get_secret("db-password").value == "value-of-db-password"
    assert {p.name for p in client.list_properties_of_secrets()} >= {"db-password", "api-key"}
    with pytest.raises(HttpResponseError) as exc:
        client.set_secret("db-password", "overwritten")
    assert_forbidden_by_rbac(exc.value, SET_ACTION, f"{scope}/secrets/db-password", kv)
    assert f"oid={sp.object_id}" in exc.value.response.json()["error"]["message"]
    assert client.get_secret("db-password").value == "value-of-db-password"


def test_a_secret_scope_assignment_reaches_only_that_secret(server, kv):
    sp = make_sp(server)
    scope = vault_id(server, kv)
    grant(server, "Key Vault Secrets User", sp, f"{scope}/secrets/api-key")
    client = secret_client(server, kv, sp)
    assert client.get_secret("api-key").value == "value-of-api-key"
    with pytest.raises(HttpResponseError) as exc:
        client.get_secret("db-password")
    assert_forbidden_by_rbac(exc.value, GET_ACTION, f"{scope}/secrets/db-password", kv)
    with pytest.raises(HttpResponseError) as exc:  # listing is a vault-level action
        list(client.list_properties_of_secrets())
    assert_forbidden_by_rbac(exc.value, LIST_ACTION, scope, kv)


def test_deleting_the_assignment_denies_the_next_request(server, kv):
    sp = make_sp(server)
    scope = vault_id(server, kv)
    assignment = grant(server, "Key Vault Secrets User", sp, scope)
    client = secret_client(server, kv, sp)
    assert client.get_secret("db-password").value == "value-of-db-password"
    server.cli("role", "assignment", "delete", "--ids", assignment["id"])
    with pytest.raises(HttpResponseError) as exc:  # same client, same still-valid token
        client.get_secret("db-password")
    assert_forbidden_by_rbac(exc.value, GET_ACTION, f"{scope}/secrets/db-password", kv)
    listed = server.cli_json("role", "assignment", "list", "--scope", scope, "--assignee", sp.app_id)
    assert listed == []


def test_the_granting_assignment_is_recorded_in_the_audit_log(server, kv):
    sp = make_sp(server)
    scope = vault_id(server, kv)
    assignment = grant(server, "Key Vault Secrets User", sp, scope)
    secret_client(server, kv, sp).get_secret("api-key")
    records = server.cli_json("audit", "list", "--vault", kv, "--operation", "SecretGet")
    mine = [r for r in records if r["identity"]["claim"].get("oid") == sp.object_id]
    assert mine, "the Secrets User's read is audited"
    assert mine[-1]["properties"]["appliedAssignmentId"] == assignment["id"]
    assert mine[-1]["properties"]["isRbacAuthorized"] is True
    created = server.cli_json("audit", "list", "--operation", "RoleAssignmentCreate")
    assert any(r["resourceId"].lower() == assignment["id"].lower() for r in created)


def test_the_creator_gets_a_real_key_vault_administrator_assignment(server):
    """A non-admin principal creates a vault: it can use it, and the grant shows up (and can be removed)."""
    creator = make_sp(server, "creator")
    from tests.authz.conftest import MANAGEMENT_SCOPE, http, sp_token

    name = unique_vault("cr")
    token = sp_token(server, creator, MANAGEMENT_SCOPE)
    sub = server.admin["subscriptionId"]
    path = f"/subscriptions/{sub}/resourceGroups/team-a/providers/Microsoft.KeyVault/vaults/{name}"
    with http(server) as h:
        r = h.put(f"{server.url}{path}", params={"api-version": "2023-07-01"}, headers={"Authorization": f"Bearer {token}"},
                  json={"location": "local",
                        "properties": {"tenantId": server.admin["tenantId"], "sku": {"family": "A", "name": "standard"}}})
    assert r.status_code == 201, r.text
    client = secret_client(server, name, creator)
    client.set_secret("mine", "creator-value")
    assert client.get_secret("mine").value == "creator-value"
    (a,) = server.cli_json("role", "assignment", "list", "--scope", path)
    assert (a["principalId"], a["roleDefinitionName"], a["principalName"]) == (creator.object_id, "Key Vault Administrator", creator.name)
    server.cli("role", "assignment", "delete", "--ids", a["id"])
    with pytest.raises(HttpResponseError) as exc:
        client.get_secret("mine")
    assert exc.value.status_code == 403
