"""The RBAC matrix: every built-in role x every secret operation, over the wire.

The expected allow/deny of each cell is derived in this file from the role
definitions the server publishes (dataActions/notDataActions, matched with
fnmatch, not with the server's matcher) and from the data action Azure
documents for each operation. Each cell is one real request with the
principal's own token; a denial must be Azure's ForbiddenByRbac naming that action.
"""

from __future__ import annotations

import fnmatch
import uuid

import pytest

from tests.authz.conftest import AUTHZ_API, admin_token, http, make_sp, sp_token, unique_vault, vault_scope

S = "Microsoft.KeyVault/vaults/secrets"
# operation -> (data action per Azure's permission reference, method, path, body)
OPERATIONS = {
    "SecretSet": (f"{S}/setSecret/action", "PUT", "/secrets/{n}", {"value": "matrix"}),
    "SecretGet": (f"{S}/getSecret/action", "GET", "/secrets/{n}", None),
    "SecretUpdate": (f"{S}/update/action", "PATCH", "/secrets/{n}/", {"contentType": "text/plain"}),
    "SecretDelete": (f"{S}/delete", "DELETE", "/secrets/{n}", None),
    "SecretList": (f"{S}/readMetadata/action", "GET", "/secrets", None),
    "SecretListVersions": (f"{S}/readMetadata/action", "GET", "/secrets/{n}/versions", None),
    "SecretListDeleted": (f"{S}/readMetadata/action", "GET", "/deletedsecrets", None),
    "SecretGetDeleted": (f"{S}/readMetadata/action", "GET", "/deletedsecrets/{n}", None),
    "SecretRecover": (f"{S}/recover/action", "POST", "/deletedsecrets/{n}/recover", None),
    "SecretPurge": (f"{S}/purge/action", "DELETE", "/deletedsecrets/{n}", None),
    "SecretBackup": (f"{S}/backup/action", "POST", "/secrets/{n}/backup", None),
    "SecretRestore": (f"{S}/restore/action", "POST", "/secrets/restore", {"value": "bm90LWEtYmFja3Vw"}),
}
BUILT_IN_KEY_VAULT_ROLES = {
    "Key Vault Administrator", "Key Vault Certificate User", "Key Vault Certificates Officer", "Key Vault Contributor",
    "Key Vault Crypto Officer", "Key Vault Crypto Service Encryption User", "Key Vault Crypto Service Release User",
    "Key Vault Crypto User", "Key Vault Data Access Administrator", "Key Vault Reader", "Key Vault Secrets Officer",
    "Key Vault Secrets User",
}


def implied(permissions: list[dict], action: str) -> bool:
    def hit(patterns: list[str]) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)

    return any(hit(p["dataActions"]) and not hit(p["notDataActions"]) for p in permissions)


@pytest.fixture(scope="module")
def setup(server):
    name = unique_vault("mx")
    server.cli("keyvault", "create", "--name", name)
    sp = make_sp(server, "matrix")
    with http(server) as h:
        r = h.get(f"{server.url}/subscriptions/{server.admin['subscriptionId']}/providers/Microsoft.Authorization/roleDefinitions",
                  params=AUTHZ_API, headers={"Authorization": f"Bearer {admin_token(server)}"})
    assert r.status_code == 200
    roles = {d["properties"]["roleName"]: d for d in r.json()["value"] if d["properties"]["type"] == "BuiltInRole"}
    # Strongroom's own built-in role (no data actions) is checked in test_agent_least_privilege.py.
    assert roles.pop("Strongroom Node Agent")["properties"]["permissions"][0]["dataActions"] == []
    vault_token = sp_token(server, sp, vault_scope(server))
    return name, sp, roles, vault_token, admin_token(server, vault_scope(server))


def test_every_built_in_key_vault_role_is_published_with_its_azure_id(setup):
    roles = setup[2]
    assert set(roles) == BUILT_IN_KEY_VAULT_ROLES
    assert roles["Key Vault Secrets User"]["name"] == "4633458b-17de-408a-b874-0445c86b69e6"
    assert roles["Key Vault Reader"]["properties"]["permissions"][0]["dataActions"] == [
        "Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"]
    daa = roles["Key Vault Data Access Administrator"]["properties"]["permissions"][0]
    assert daa["conditionVersion"] == "2.0" and "ForAnyOfAnyValues:GuidEquals" in daa["condition"]


@pytest.mark.parametrize("role_name", sorted(BUILT_IN_KEY_VAULT_ROLES))
def test_role_x_operation_matrix(server, setup, role_name):
    vault, sp, roles, vault_token, admin_vault_token = setup
    role = roles[role_name]
    scope = server.cli_json("keyvault", "show", "--name", vault)["id"]
    admin = {"Authorization": f"Bearer {admin_token(server)}"}
    assignment = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
    secret = f"m-{uuid.uuid4().hex[:10]}"
    base = server.vault_url(vault)
    with http(server) as h:
        r = h.put(f"{server.url}{assignment}", params=AUTHZ_API, headers=admin,
                  json={"properties": {"roleDefinitionId": role["id"], "principalId": sp.object_id}})
        assert r.status_code == 201, r.text
        h.put(f"{base}/secrets/{secret}", params={"api-version": "7.4"}, headers={"Authorization": f"Bearer {admin_vault_token}"},
              json={"value": "seed"}).raise_for_status()
        try:
            outcomes = {}
            for op, (_action, method, path, body) in OPERATIONS.items():
                resp = h.request(method, base + path.format(n=secret), params={"api-version": "7.4"}, json=body,
                                 headers={"Authorization": f"Bearer {vault_token}"})
                outcomes[op] = resp
            for op, resp in outcomes.items():
                action = OPERATIONS[op][0]
                expected = implied(role["properties"]["permissions"], action)
                assert (resp.status_code != 403) == expected, f"{role_name} / {op}: {resp.status_code} {resp.text[:200]}"
                if not expected:
                    err = resp.json()["error"]
                    assert err["innererror"]["code"] == "ForbiddenByRbac"
                    assert f"Action: '{action}'\r\n" in err["message"]
        finally:
            assert h.delete(f"{server.url}{assignment}", params=AUTHZ_API, headers=admin).status_code == 200

