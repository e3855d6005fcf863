"""Errors over the wire: each plane answers in its own shape, with its own headers (issue #11, one error tree).

Against the real session server, for each plane a representative 400/401/403/404/409/429
(where the plane has it): Key Vault and ARM `{"error": {"code", "message"}}` (Key Vault's
401 with its `authorization`/`resource` challenge, ARM's and Graph's with `authorization_uri`),
Graph's `innerError` (date, request-id), a Kubernetes `Status` for the local cluster, OAuth's
body at the token endpoint; Retry-After on 429. Never a 500, never a traceback.
The 500 and 503 answers need a fault inside a handler: tests/server/test_error_faults.py.
"""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest

from tests.authz.conftest import SP, admin_token, http, make_sp, sp_token, vault_scope
from tests.conftest import Server

KV = {"api-version": "7.5"}
ARM = {"api-version": "2023-07-01"}
AUTHZ = {"api-version": "2022-04-01"}
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
CLUSTER = "/clusters/local/api/v1"


def no_leak(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    assert "Traceback" not in r.text and 'File "' not in r.text


def azure_shape(r: httpx.Response, status: int, code: str | None = None) -> dict:
    """Key Vault's and ARM's envelope: exactly `error` with a code and a message (and Key Vault's innererror)."""
    assert r.status_code == status, r.text
    no_leak(r)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["error"]
    assert set(body["error"]) <= {"code", "message", "innererror"}
    assert isinstance(body["error"]["code"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def graph_shape(r: httpx.Response, status: int, code: str | None = None) -> dict:
    """Graph's: code, message and innerError with the date and this response's request id."""
    assert r.status_code == status, r.text
    no_leak(r)
    error = r.json()["error"]
    assert set(error) == {"code", "message", "innerError"}
    inner = error["innerError"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", inner["date"])
    assert inner["request-id"] == r.headers["x-ms-request-id"]
    if code is not None:
        assert error["code"] == code, error
    return error


def kubernetes_status(r: httpx.Response, status: int, reason: str) -> dict:
    assert r.status_code == status, r.text
    no_leak(r)
    body = r.json()
    assert {k: body[k] for k in ("kind", "apiVersion", "status", "code", "reason")} == {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status, "reason": reason}
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.fixture(scope="module")
def outsider(server: Server) -> SP:
    """A principal with no role anywhere: every protected call is refused."""
    return make_sp(server, "errors")


@pytest.fixture(scope="module")
def client(server: Server):
    with http(server) as h:
        yield h


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- Key Vault's data plane ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def kv(server: Server, vault: str, client: httpx.Client):
    token = admin_token(server, vault_scope(server))
    base = server.vault_url(vault)
    return lambda method, path, params=KV, headers=None, **kw: client.request(
        method, base + path, params=params, headers=headers if headers is not None else bearer(token), **kw)


def test_keyvault_400_is_bad_parameter(kv):
    error = azure_shape(kv("GET", "/secrets", params={"api-version": "0.1"}), 400, "BadParameter")
    assert "0.1" in error["message"]
    azure_shape(kv("PUT", "/secrets/errors-bad-body", content=b"{not json", headers=None), 400, "BadParameter")


def test_keyvault_401_carries_its_challenge(kv, server: Server):
    r = kv("GET", "/secrets/anything", headers={})
    azure_shape(r, 401, "Unauthorized")
    tenant = server.admin["tenantId"]
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith(f'Bearer authorization="{server.url}/{tenant}", resource="')


def test_keyvault_403_names_the_model_that_refused(server: Server, vault: str, outsider: SP, client: httpx.Client):
    r = client.get(server.vault_url(vault) + "/secrets/anything", params=KV,
                   headers=bearer(sp_token(server, outsider, vault_scope(server))))
    error = azure_shape(r, 403, "Forbidden")
    assert error["innererror"]["code"] in ("ForbiddenByRbac", "AccessDenied")


def test_keyvault_404_and_409(kv):
    azure_shape(kv("GET", "/secrets/errors-missing"), 404, "SecretNotFound")
    assert kv("PUT", "/secrets/errors-deleted", json={"value": "v"}).status_code == 200
    assert kv("DELETE", "/secrets/errors-deleted").status_code == 200
    error = azure_shape(kv("PUT", "/secrets/errors-deleted", json={"value": "v"}), 409, "Conflict")
    assert error["innererror"]["code"] == "ObjectIsDeletedButRecoverable"


def test_keyvault_unknown_path_and_method(kv):
    azure_shape(kv("GET", "/secrets/a/b/c/d"), 404, "NotFound")
    azure_shape(kv("DELETE", "/secrets"), 405, "MethodNotAllowed")


def test_keyvault_429_says_when_to_come_back(server: Server, client: httpx.Client):
    name = f"errthrottle{uuid.uuid4().hex[:8]}"
    server.cli("keyvault", "create", "--name", name, "--tags", "strongroom-reads-per-10s=2")
    token = admin_token(server, vault_scope(server))
    answers = [client.get(server.vault_url(name) + "/secrets", params=KV, headers=bearer(token)) for _ in range(4)]
    assert [r.status_code for r in answers[:2]] == [200, 200]
    r = answers[-1]
    azure_shape(r, 429, "Throttled")
    assert r.headers["retry-after"].isdigit() and 1 <= int(r.headers["retry-after"]) <= 10


# -- Azure Resource Manager ---------------------------------------------------------------------


def _rg(server: Server, name: str) -> str:
    return f"{server.url}/subscriptions/{server.admin['subscriptionId']}/resourceGroups/{name}"


def test_arm_400_401_403_404(server: Server, client: httpx.Client, outsider: SP):
    admin = bearer(admin_token(server))
    vault = _rg(server, "strongroom") + "/providers/Microsoft.KeyVault/vaults/errors-arm"
    azure_shape(client.put(vault, params=ARM, headers=admin, json={"location": 5}), 400, "InvalidRequestContent")
    r = client.get(_rg(server, "strongroom"), params=ARM)
    azure_shape(r, 401, "AuthenticationFailed")
    assert r.headers["www-authenticate"].startswith(f'Bearer authorization_uri="{server.url}/{server.admin["tenantId"]}"')
    identity = _rg(server, "strongroom") + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/errors-mi"
    r = client.put(identity, params=ARM, json={"location": "local"},
                   headers=bearer(sp_token(server, outsider, "https://management.azure.com/.default")))
    azure_shape(r, 403, "AuthorizationFailed")
    azure_shape(client.get(_rg(server, "errors-no-such-group"), params=ARM, headers=admin), 404, "ResourceGroupNotFound")


def test_arm_409_for_a_second_identical_role_assignment(server: Server, client: httpx.Client, outsider: SP):
    sub = server.admin["subscriptionId"]
    scope = f"/subscriptions/{sub}/resourceGroups/strongroom"
    body = {"properties": {"roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/"
                           "21090545-7ca7-4776-b22c-e363652d74d2", "principalId": outsider.object_id}}
    admin = bearer(admin_token(server))
    url = f"{server.url}{scope}/providers/Microsoft.Authorization/roleAssignments/"
    assert client.put(url + str(uuid.uuid4()), params=AUTHZ, headers=admin, json=body).status_code == 201
    try:
        azure_shape(client.put(url + str(uuid.uuid4()), params=AUTHZ, headers=admin, json=body), 409, "RoleAssignmentExists")
    finally:
        listed = client.get(url.rstrip("/"), params={**AUTHZ, "$filter": f"principalId eq '{outsider.object_id}'"},
                            headers=admin).json()["value"]
        for a in listed:
            client.delete(server.url + a["id"], params=AUTHZ, headers=admin)


# -- Microsoft Graph ----------------------------------------------------------------------------


def test_graph_errors_carry_inner_error(server: Server, client: httpx.Client, outsider: SP):
    admin = bearer(admin_token(server, GRAPH_SCOPE))
    graph_shape(client.post(f"{server.url}/v1.0/applications", headers=admin, json={"displayName": 5}), 400,
                "Request_BadRequest")
    graph_shape(client.post(f"{server.url}/v1.0/applications", headers={**admin, "content-type": "application/json"},
                            content=b"{"), 400, "BadRequest")  # the body reader's refusal, in Graph's word
    r = client.get(f"{server.url}/v1.0/applications", headers={"client-request-id": "errors-test-1"})
    error = graph_shape(r, 401)
    assert error["innerError"]["client-request-id"] == "errors-test-1"
    assert r.headers["www-authenticate"].startswith("Bearer authorization_uri=")
    graph_shape(client.get(f"{server.url}/v1.0/applications",
                           headers=bearer(sp_token(server, outsider, GRAPH_SCOPE))), 403)
    graph_shape(client.get(f"{server.url}/v1.0/applications/{uuid.uuid4()}", headers=admin), 404, "Request_ResourceNotFound")
    graph_shape(client.get(f"{server.url}/v1.0/noSuchCollection", headers=admin), 404)  # no route: the path's plane


# -- Kubernetes (the local cluster) -------------------------------------------------------------


def test_kubernetes_answers_with_status_objects(server: Server, client: httpx.Client, outsider: SP):
    admin = bearer(admin_token(server))
    ns = f"{server.url}{CLUSTER}/namespaces/errors"
    kubernetes_status(client.post(ns + "/serviceaccounts", headers=admin, json={"metadata": {}}), 400, "BadRequest")
    r = client.get(f"{server.url}{CLUSTER}/serviceaccounts")
    kubernetes_status(r, 401, "Unauthorized")
    kubernetes_status(client.get(f"{server.url}{CLUSTER}/serviceaccounts",
                                 headers=bearer(sp_token(server, outsider, "https://management.azure.com/.default"))),
                      403, "Forbidden")
    kubernetes_status(client.get(ns + "/serviceaccounts/errors-missing", headers=admin), 404, "NotFound")
    kubernetes_status(client.get(f"{server.url}/clusters/no-such-cluster/openid/v1/jwks"), 404, "NotFound")
    name = f"errors-{uuid.uuid4().hex[:8]}"
    assert client.post(ns + "/serviceaccounts", headers=admin, json={"metadata": {"name": name}}).status_code == 201
    kubernetes_status(client.post(ns + "/serviceaccounts", headers=admin, json={"metadata": {"name": name}}),
                      409, "AlreadyExists")
    kubernetes_status(client.post(f"{server.url}{CLUSTER}/namespaces/Not_A_Label/serviceaccounts", headers=admin,
                                  json={"metadata": {"name": "x"}}), 422, "Invalid")
    kubernetes_status(client.get(f"{server.url}{CLUSTER}/nothing/here", headers=admin), 404, "NotFound")


def test_the_audit_record_of_a_kubernetes_refusal_says_why(server: Server, client: httpx.Client):
    r = client.get(f"{server.url}{CLUSTER}/namespaces/errors/serviceaccounts/errors-audited",
                   headers=bearer(admin_token(server)))
    status = kubernetes_status(r, 404, "NotFound")
    request_id = r.headers["x-ms-request-id"]
    records = []
    for path in server.state_dir.glob("audit*.jsonl"):
        records += [json.loads(line) for line in path.read_bytes().split(b"\n")[:-1]]
    (record,) = [rec for rec in records if rec["properties"].get("requestId") == request_id]
    assert record["resultDescription"] == status["message"]


# -- the Entra token endpoint -------------------------------------------------------------------


def test_token_endpoint_answers_in_oauth_shape(server: Server, client: httpx.Client):
    tenant = server.admin["tenantId"]
    form = {"grant_type": "client_credentials", "client_id": server.admin["clientId"],
            "client_secret": "wrong", "scope": "https://management.azure.com/.default"}
    r = client.post(f"{server.url}/{tenant}/oauth2/v2.0/token", data=form, headers={"client-request-id": "corr-1"})
    assert r.status_code == 401
    no_leak(r)
    body = r.json()
    assert body["error"] == "invalid_client" and body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215: ") and body["correlation_id"] == "corr-1"
    assert {"timestamp", "trace_id", "error_uri"} <= set(body)
    r = client.post(f"{server.url}/not-a-tenant/oauth2/v2.0/token", data=form)
    assert r.status_code == 400 and r.json()["error"] == "invalid_tenant" and r.json()["error_codes"] == [90002]
