"""Access-policy vaults (--enable-rbac-authorization false), end to end with the SecretClient."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from tests.authz.conftest import make_sp, secret_client, unique_vault

HELP = "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287"


@pytest.fixture(scope="module")
def legacy(server) -> str:
    name = unique_vault("ap")
    created = server.cli_json("keyvault", "create", "--name", name, "--enable-rbac-authorization", "false")
    assert created["properties"]["enableRbacAuthorization"] is False
    server.cli("keyvault", "secret", "set", "--vault-name", name, "--name", "db-password", "--value", "pw-1", "-o", "none")
    return name


def test_the_creator_gets_an_all_permissions_policy_as_az_shows_it(server, legacy):
    vault = server.cli_json("keyvault", "show", "--name", legacy)
    (policy,) = vault["properties"]["accessPolicies"]
    assert set(policy) == {"tenantId", "objectId", "applicationId", "permissions"}
    admin_oid = server.cli_json("ad", "sp", "show", "--id", server.admin["clientId"])["id"]
    assert policy["objectId"] == admin_oid and policy["tenantId"] == server.admin["tenantId"]
    assert policy["permissions"]["secrets"] == ["get", "list", "set", "delete", "backup", "restore", "recover", "purge"]
    assert set(policy["permissions"]) == {"keys", "secrets", "certificates", "storage"}
    assert "wrapKey" in policy["permissions"]["keys"]


def test_get_permission_allows_get_and_list_is_denied_in_azures_words(server, legacy):
    sp = make_sp(server)
    shown = server.cli_json("keyvault", "set-policy", "--name", legacy, "--spn", sp.app_id, "--secret-permissions", "get")
    mine = [p for p in shown["properties"]["accessPolicies"] if p["objectId"] == sp.object_id]
    assert mine == [{"tenantId": server.admin["tenantId"], "objectId": sp.object_id, "applicationId": None,
                     "permissions": {"keys": [], "secrets": ["get"], "certificates": [], "storage": []}}]
    client = secret_client(server, legacy, sp)
    assert client.get_secret("db-password").value == "pw-1"
    with pytest.raises(HttpResponseError) as exc:
        list(client.list_properties_of_secrets())
    err = exc.value.response.json()["error"]
    assert exc.value.status_code == 403 and err["code"] == "Forbidden"
    assert err["innererror"] == {"code": "AccessDenied"}
    assert err["message"] == (
        f"The user, group or application 'appid={sp.app_id};oid={sp.object_id};iss={server.url}/{server.admin['tenantId']}/v2.0' "
        f"does not have secrets list permission on key vault '{legacy};location=local'. {HELP}"
    )
    with pytest.raises(HttpResponseError) as exc:
        client.set_secret("db-password", "nope")
    assert "does not have secrets set permission" in exc.value.response.json()["error"]["message"]


def test_set_policy_merges_all_expands_and_delete_policy_revokes(server, legacy):
    sp = make_sp(server)
    server.cli("keyvault", "set-policy", "--name", legacy, "--object-id", sp.object_id, "--secret-permissions", "get", "list")
    shown = server.cli_json("keyvault", "set-policy", "--name", legacy, "--object-id", sp.object_id, "--key-permissions", "all")
    (mine,) = [p for p in shown["properties"]["accessPolicies"] if p["objectId"] == sp.object_id]
    assert mine["permissions"]["secrets"] == ["get", "list"]  # not given this time: kept, as az does
    assert len(mine["permissions"]["keys"]) == 20 and "all" not in mine["permissions"]["keys"]
    client = secret_client(server, legacy, sp)
    assert [p.name for p in client.list_properties_of_secrets()] == ["db-password"]
    shown = server.cli_json("keyvault", "delete-policy", "--name", legacy, "--object-id", sp.object_id)
    assert all(p["objectId"] != sp.object_id for p in shown["properties"]["accessPolicies"])
    with pytest.raises(HttpResponseError) as exc:
        client.get_secret("db-password")
    assert exc.value.response.json()["error"]["innererror"]["code"] == "AccessDenied"


def test_bad_permissions_and_rbac_vaults_are_refused_by_the_cli(server, legacy, vault):
    bad = server.cli("keyvault", "set-policy", "--name", legacy, "--object-id", "00000000-0000-0000-0000-000000000001",
                     "--secret-permissions", "read", check=False)
    assert bad.returncode != 0 and "Invalid secrets permission 'read'" in bad.stderr
    rbac = server.cli("keyvault", "set-policy", "--name", vault, "--object-id", "00000000-0000-0000-0000-000000000001",
                      "--secret-permissions", "get", check=False)
    assert rbac.returncode != 0 and "Cannot set policies to a vault with '--enable-rbac-authorization' specified" in rbac.stderr
    both = server.cli("keyvault", "set-policy", "--name", legacy, "--object-id", "x", "--spn", "y", check=False)
    assert both.returncode != 0 and "only one of --object-id, --upn, --spn" in both.stderr


def test_switching_models_makes_the_other_one_count(server):
    """RBAC ignores access policies and vice versa; switching the vault switches which one decides."""
    name = unique_vault("sw")
    server.cli("keyvault", "create", "--name", name, "--enable-rbac-authorization", "false")
    server.cli("keyvault", "secret", "set", "--vault-name", name, "--name", "s", "--value", "v", "-o", "none")
    by_policy, by_role = make_sp(server), make_sp(server)
    server.cli("keyvault", "set-policy", "--name", name, "--spn", by_policy.app_id, "--secret-permissions", "get")
    scope = server.cli_json("keyvault", "show", "--name", name)["id"]
    server.cli("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", by_role.app_id, "--scope", scope)
    policy_client, role_client = secret_client(server, name, by_policy), secret_client(server, name, by_role)

    assert policy_client.get_secret("s").value == "v"
    with pytest.raises(HttpResponseError) as exc:
        role_client.get_secret("s")
    assert exc.value.response.json()["error"]["innererror"]["code"] == "AccessDenied"

    switched = server.cli_json("keyvault", "update", "--name", name, "--enable-rbac-authorization", "true")
    assert switched["properties"]["enableRbacAuthorization"] is True
    assert switched["properties"]["accessPolicies"]  # kept, but no longer consulted
    assert role_client.get_secret("s").value == "v"
    with pytest.raises(HttpResponseError) as exc:
        policy_client.get_secret("s")
    assert exc.value.response.json()["error"]["innererror"]["code"] == "ForbiddenByRbac"


def test_arm_access_policy_add_replace_remove(server, legacy):
    """vaults/{name}/accessPolicies/{add|replace|remove}, as azure-mgmt-keyvault's update_access_policy sends it."""
    from tests.authz.conftest import admin_token, http

    sp = make_sp(server)
    vault = server.cli_json("keyvault", "show", "--name", legacy)
    tenant = server.admin["tenantId"]

    def send(kind: str, secrets: list[str], keys: list[str] | None = None):
        body = {"properties": {"accessPolicies": [
            {"tenantId": tenant, "objectId": sp.object_id, "permissions": {"secrets": secrets, "keys": keys or []}}]}}
        with http(server) as h:
            return h.put(f"{server.url}{vault['id']}/accessPolicies/{kind}", params={"api-version": "2023-07-01"},
                         headers={"Authorization": f"Bearer {admin_token(server)}"}, json=body)

    def mine() -> list[dict]:
        shown = server.cli_json("keyvault", "show", "--name", legacy)
        return [p["permissions"] for p in shown["properties"]["accessPolicies"] if p["objectId"] == sp.object_id]

    r = send("add", ["get"])
    assert r.status_code == 200 and r.json()["id"] == f"{vault['id']}/accessPolicies/add"
    send("add", ["List", "get"], ["wrapkey"])
    assert mine() == [{"keys": ["wrapKey"], "secrets": ["get", "list"], "certificates": [], "storage": []}]
    send("replace", ["set"])
    assert mine() == [{"keys": [], "secrets": ["set"], "certificates": [], "storage": []}]
    send("remove", ["set"])
    assert mine() == []
    bad = send("add", ["read"])
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "BadRequest")
    other = send("merge", ["get"])
    assert other.status_code == 400
