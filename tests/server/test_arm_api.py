"""The ARM and Graph routes the real `az` needs, attacked over the wire on a real server.

Who may call them (no token, a token for another audience, a principal without
roles), the largest and worst bodies they take, bad filters, and that changes are
audited. The real `az` drives the same routes in tests/azcli.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.authz.conftest import admin_token, http, make_sp, sp_token, vault_scope
from tests.conftest import Server

ARM = {"api-version": "2022-12-01"}
RG_API = {"api-version": "2021-04-01"}
MGMT = "https://management.core.windows.net//.default"


def instance_graph_scope(server: Server) -> str:
    return f"{server.url}//.default"  # az asks {microsoftGraphResourceId}/.default


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture(scope="module")
def h(server) -> httpx.Client:
    with http(server) as client:
        yield client


@pytest.fixture(scope="module")
def sub(server, h) -> str:
    return h.get(f"{server.url}/strongroom/metadata").json()["subscriptionId"]


@pytest.fixture(scope="module")
def admin(server) -> dict[str, str]:
    return bearer(admin_token(server, MGMT))


@pytest.fixture(scope="module")
def outsider(server):
    """A principal of the tenant with no role anywhere."""
    return make_sp(server, "arm-outsider")


def rg_url(server: Server, sub: str, name: str, segment: str = "resourcegroups") -> str:
    return f"{server.url}/subscriptions/{sub}/{segment}/{name}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- who may call ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/subscriptions", "/tenants", "/subscriptions/{sub}", "/subscriptions/{sub}/resourcegroups",
                                  "/subscriptions/{sub}/resources", "/subscriptions/{sub}/resourcegroups/rg-x"])
def test_no_token_is_401_in_arm_shape(server, h, sub, path):
    r = h.get(server.url + path.format(sub=sub), params=ARM)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "AuthenticationFailed"
    tenant = server.admin["tenantId"]
    assert r.headers["www-authenticate"].startswith(f'Bearer authorization_uri="{server.url}/{tenant}", error="invalid_token"')


def test_a_vault_or_graph_token_opens_no_arm_route(server, h, sub):
    vault_tok = admin_token(server, vault_scope(server))
    graph_tok = admin_token(server, instance_graph_scope(server))
    for tok in (vault_tok, graph_tok, "not-a-jwt"):
        r = h.get(f"{server.url}/subscriptions", params=ARM, headers=bearer(tok))
        assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_instance_url_is_a_graph_audience_and_nothing_else(server, h):
    """az asks Graph tokens for the cloud's microsoftGraphResourceId, which is this instance's own URL."""
    graph_tok = admin_token(server, instance_graph_scope(server))
    r = h.get(f"{server.url}/v1.0/servicePrincipals", headers=bearer(graph_tok))
    assert r.status_code == 200
    mgmt = admin_token(server, MGMT)
    assert h.get(f"{server.url}/v1.0/servicePrincipals", headers=bearer(mgmt)).status_code == 401


def test_a_principal_without_roles_sees_no_subscription_and_cannot_make_groups(server, h, sub, outsider):
    tok = bearer(sp_token(server, outsider, MGMT))
    assert h.get(f"{server.url}/subscriptions", params=ARM, headers=tok).json()["value"] == []
    r = h.get(f"{server.url}/subscriptions/{sub}", params=ARM, headers=tok)
    assert r.status_code == 404 and r.json()["error"]["code"] == "SubscriptionNotFound"
    # The tenant is its own (its token says so); the listing does not depend on roles.
    assert h.get(f"{server.url}/tenants", params=ARM, headers=tok).json()["value"][0]["tenantId"] == server.admin["tenantId"]


def test_a_role_anywhere_in_the_subscription_makes_it_visible_but_not_writable(server, h, sub, vault):
    sp = make_sp(server, "arm-reader")
    vault_id = server.cli_json("keyvault", "show", "--name", vault)["id"]
    server.cli("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", sp.app_id, "--scope", vault_id)
    tok = bearer(sp_token(server, sp, MGMT))
    (s,) = h.get(f"{server.url}/subscriptions", params=ARM, headers=tok).json()["value"]
    assert s["subscriptionId"] == sub and s["state"] == "Enabled" and s["tenantId"] == server.admin["tenantId"]
    r = h.put(rg_url(server, sub, unique("rg-denied")), params=RG_API, headers=tok, json={"location": "westeurope"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "AuthorizationFailed"
    assert h.get(f"{server.url}/subscriptions/{sub}/resourcegroups", params=RG_API, headers=tok).json()["value"] == []


def test_graph_lookups_are_for_the_administrator_only(server, h, outsider):
    tok = bearer(sp_token(server, outsider, instance_graph_scope(server)))
    r = h.post(f"{server.url}/v1.0/directoryObjects/getByIds", headers=tok, json={"ids": [outsider.object_id]})
    assert r.status_code == 403
    assert h.post(f"{server.url}/v1.0/directoryObjects/getByIds", json={"ids": [outsider.object_id]}).status_code == 401


# -- resource groups ---------------------------------------------------------------------


def test_group_lifecycle_with_both_spellings_and_head(server, h, sub, admin):
    name = unique("rg-life")
    r = h.put(rg_url(server, sub, name), params=RG_API, headers=admin, json={"location": "West Europe", "tags": {"a": "1"}})
    assert r.status_code == 201
    assert r.json() == {
        "id": f"/subscriptions/{sub}/resourceGroups/{name}", "name": name, "type": "Microsoft.Resources/resourceGroups",
        "location": "westeurope", "tags": {"a": "1"}, "properties": {"provisioningState": "Succeeded"},
    }
    again = h.put(rg_url(server, sub, name.upper(), "resourceGroups"), params=RG_API, headers=admin,
                  json={"location": "westeurope", "tags": {"b": "2"}})
    assert again.status_code == 200 and again.json()["name"] == name and again.json()["tags"] == {"b": "2"}
    moved = h.put(rg_url(server, sub, name), params=RG_API, headers=admin, json={"location": "eastus"})
    assert moved.status_code == 409 and moved.json()["error"]["code"] == "InvalidResourceGroupLocation"
    assert h.head(rg_url(server, sub, name), params=RG_API, headers=admin).status_code == 204
    assert h.delete(rg_url(server, sub, name), params=RG_API, headers=admin).status_code == 200
    assert h.head(rg_url(server, sub, name), params=RG_API, headers=admin).status_code == 404
    assert h.delete(rg_url(server, sub, name), params=RG_API, headers=admin).status_code == 204
    gone = h.get(rg_url(server, sub, name), params=RG_API, headers=admin)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ResourceGroupNotFound"


def test_a_group_holding_a_vault_or_identity_is_not_deleted(server, h, sub, admin):
    name = unique("rg-busy")
    server.cli("keyvault", "create", "--name", f"kv{uuid.uuid4().hex[:10]}", "--resource-group", name)
    r = h.get(rg_url(server, sub, name), params=RG_API, headers=admin)
    assert r.status_code == 200 and r.json()["location"] == "local"  # the vault's -g made the group
    refused = h.delete(rg_url(server, sub, name), params=RG_API, headers=admin)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "ResourceGroupNotEmpty"
    assert h.head(rg_url(server, sub, name), params=RG_API, headers=admin).status_code == 204


@pytest.mark.parametrize(
    "body, status, code",
    [
        (b"{not json", 400, "InvalidRequestContent"),
        (b"[]", 400, "InvalidRequestContent"),
        (b"[" * 100000 + b"]" * 100000, 413, "RequestEntityTooLarge"),
        (b"[" * 30000 + b"]" * 30000, 400, "InvalidRequestContent"),  # under the cap, too deep for the parser
        (b'{"tags": {}}', 400, "LocationRequired"),
        (b'{"location": "<script>"}', 400, "InvalidLocation"),
        (b'{"location": "westeurope", "tags": {"a": 1}}', 400, "InvalidTag"),
        (b'{"location": "westeurope", "tags": {' + b",".join(b'"t%d": "v"' % i for i in range(51)) + b"}}", 400, "InvalidTagCount"),
        (b'{"location": "westeurope", "tags": {"a/b": "v"}}', 400, "InvalidTagNameCharacters"),
    ],
)
def test_bad_group_bodies_are_refused_in_arm_shape(server, h, sub, admin, body, status, code):
    name = unique("rg-bad")
    r = h.put(rg_url(server, sub, name), params=RG_API, headers={**admin, "Content-Type": "application/json"}, content=body)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    assert h.head(rg_url(server, sub, name), params=RG_API, headers=admin).status_code == 404  # nothing half-made


def test_bad_group_names_and_missing_api_version(server, h, sub, admin):
    r = h.put(rg_url(server, sub, "bad.name."), params=RG_API, headers=admin, json={"location": "westeurope"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidResourceGroupName"
    r = h.put(rg_url(server, sub, "x" * 91), params=RG_API, headers=admin, json={"location": "westeurope"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidResourceGroupName"
    r = h.get(rg_url(server, sub, "anything"), headers=admin)
    assert r.status_code == 400 and r.json()["error"]["code"] == "MissingApiVersionParameter"
    other = h.get(rg_url(server, str(uuid.uuid4()), "anything"), params=RG_API, headers=admin)
    assert other.status_code == 404 and other.json()["error"]["code"] == "SubscriptionNotFound"


def test_group_changes_are_audited(server, h, sub, admin):
    name = unique("rg-audit")
    h.put(rg_url(server, sub, name), params=RG_API, headers=admin, json={"location": "westeurope"})
    h.delete(rg_url(server, sub, name), params=RG_API, headers=admin)
    ops = [(r["operationName"], r["resultSignature"]) for r in server.cli_json("audit", "list", "--last", "50")
           if (r.get("resourceId") or "").lower().endswith(f"/resourcegroups/{name}")]
    assert ("ResourceGroupWrite", "Created") in ops or ("ResourceGroupWrite", "OK") in ops, ops
    assert any(op == "ResourceGroupDelete" for op, _ in ops), ops


# -- generic resources -------------------------------------------------------------------


def test_resource_listing_filters_by_type_and_name(server, h, sub, admin, vault):
    url = f"{server.url}/subscriptions/{sub}/resources"
    wanted = f"resourceType eq 'Microsoft.KeyVault/vaults' and name eq '{vault.upper()}'"
    r = h.get(url, params={"api-version": "2015-11-01", "$filter": wanted}, headers=admin)
    (found,) = r.json()["value"]
    assert found["name"] == vault and found["type"] == "Microsoft.KeyVault/vaults" and found["id"].endswith(f"/vaults/{vault}")
    types = {x["type"] for x in h.get(url, params=ARM, headers=admin).json()["value"]}
    assert "Microsoft.KeyVault/vaults" in types
    assert h.get(url, params={**ARM, "$top": "1"}, headers=admin).json()["value"].__len__() == 1


@pytest.mark.parametrize("params, code", [
    ({"$filter": "substringof('kv', name)"}, "InvalidFilterInQueryString"),
    ({"$filter": "name eq 'a' or name eq 'b'"}, "InvalidFilterInQueryString"),
    ({"$filter": "name eq '" + "a" * 2000 + "'"}, "InvalidFilterInQueryString"),
    ({"$top": "0"}, "InvalidTopInQueryString"),
    ({"$top": "-1"}, "InvalidTopInQueryString"),
])
def test_bad_resource_filters_are_400(server, h, sub, admin, params, code):
    r = h.get(f"{server.url}/subscriptions/{sub}/resources", params={**ARM, **params}, headers=admin)
    assert r.status_code == 400 and r.json()["error"]["code"] == code


def test_resource_listing_shows_only_what_the_caller_may_read(server, h, sub, outsider):
    # The outsider has no role: Azure would not even show it the subscription.
    r = h.get(f"{server.url}/subscriptions/{sub}/resources", params=ARM, headers=bearer(sp_token(server, outsider, MGMT)))
    assert r.status_code == 404


# -- cloud metadata ------------------------------------------------------------------------


def test_cloud_metadata_is_public_and_names_this_instance(server, h):
    for path in ("/metadata/endpoints", "//metadata/endpoints"):
        doc = h.get(server.url + path, params={"api-version": "2022-09-01"}).json()
        assert doc["name"] == "Strongroom"
        assert doc["authentication"]["loginEndpoint"] == server.url
        assert doc["resourceManager"] == server.url + "/" and doc["microsoftGraphResourceId"] == server.url + "/"
        assert doc["suffixes"]["keyVaultDns"] == f"vault.localhost:{server.port}"
    (listed,) = h.get(server.url + "/metadata/endpoints", params={"api-version": "2020-06-01"}).json()
    assert listed["name"] == "Strongroom"
    for params in ({}, {"api-version": "1999-01-01"}):
        r = h.get(server.url + "/metadata/endpoints", params=params)
        assert r.status_code == 400 and r.json()["error"]["code"] in ("MissingApiVersionParameter", "InvalidApiVersionParameter")


# -- Graph lookups az makes --------------------------------------------------------------


def test_service_principal_by_name_and_objects_by_ids(server, h, outsider):
    tok = bearer(admin_token(server, instance_graph_scope(server)))
    flt = f"servicePrincipalNames/any(c:c eq '{outsider.app_id}')"
    (sp,) = h.get(f"{server.url}/v1.0/servicePrincipals", params={"$filter": flt}, headers=tok).json()["value"]
    assert sp["id"] == outsider.object_id and sp["appId"] == outsider.app_id
    body = {"ids": [outsider.object_id, str(uuid.uuid4()), outsider.app_id], "types": ["user", "group", "servicePrincipal"]}
    (obj,) = h.post(f"{server.url}/v1.0/directoryObjects/getByIds", headers=tok, json=body).json()["value"]
    assert obj["@odata.type"] == "#microsoft.graph.servicePrincipal" and obj["id"] == outsider.object_id
    users_only = h.post(f"{server.url}/v1.0/directoryObjects/getByIds", headers=tok, json={"ids": [outsider.object_id], "types": ["user"]})
    assert users_only.json()["value"] == []


@pytest.mark.parametrize("body, status", [
    (b"{", 400), (b'{"ids": "x"}', 400), (b'{"ids": []}', 400), (b'{"ids": [1]}', 400),
    (b'{"ids": [' + b",".join(b'"%d"' % i for i in range(1001)) + b"]}", 400),
    (b'{"ids": ["' + b"a" * 70000 + b'"]}', 413),
])
def test_bad_get_by_ids_bodies(server, h, body, status):
    tok = bearer(admin_token(server, instance_graph_scope(server)))
    r = h.post(f"{server.url}/v1.0/directoryObjects/getByIds", headers={**tok, "Content-Type": "application/json"}, content=body)
    assert r.status_code == status and "error" in r.json()


# -- api-versions of current clients ------------------------------------------------------


def test_preview_api_versions_clients_send_are_accepted_and_unknown_ones_refused(server, h, vault):
    tok = bearer(admin_token(server, vault_scope(server)))
    base = server.vault_url(vault)
    for version in ("7.6-preview.2", "7.5-preview.1", "2026-01-01-preview", "2025-07-01"):
        assert h.get(f"{base}/keys", params={"api-version": version}, headers=tok).status_code == 200, version
    bad = h.get(f"{base}/keys", params={"api-version": "7.6-preview.3"}, headers=tok)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadParameter"


def test_creating_the_service_principal_of_an_application_returns_the_one_made_with_it(server, h, outsider):
    tok = bearer(admin_token(server, instance_graph_scope(server)))
    r = h.post(f"{server.url}/v1.0/servicePrincipals", headers=tok, json={"appId": outsider.app_id})
    assert r.status_code == 201 and r.json()["id"] == outsider.object_id
    for body in ({"appId": str(uuid.uuid4())}, {"appId": outsider.object_id}):
        assert h.post(f"{server.url}/v1.0/servicePrincipals", headers=tok, json=body).status_code == 404
    assert h.post(f"{server.url}/v1.0/servicePrincipals", headers=tok, json={}).status_code == 400
    mine = bearer(sp_token(server, outsider, instance_graph_scope(server)))
    assert h.post(f"{server.url}/v1.0/servicePrincipals", headers=mine, json={"appId": outsider.app_id}).status_code == 403


def test_managed_hsm_listings_are_empty_not_missing(server, h, sub, admin, outsider):
    for kind in ("managedHSMs", "deletedManagedHSMs"):
        r = h.get(f"{server.url}/subscriptions/{sub}/providers/Microsoft.KeyVault/{kind}", params=ARM, headers=admin)
        assert r.status_code == 200 and r.json() == {"value": []}
    r = h.get(f"{server.url}/subscriptions/{sub}/providers/Microsoft.KeyVault/managedHSMs", params=ARM)
    assert r.status_code == 401
