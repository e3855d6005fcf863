"""Bad input is a 400 in the plane's shape, never a 500 (issue #10, section 4).

Over the wire against the real server: every JSON route gets its valid body with
one field at a time replaced by a value of each other JSON type, and whole bodies
that are not JSON a strict reader accepts (a lone surrogate, deep nesting, NaN,
bytes that are not UTF-8). Every answer must be below 500 and, when 400, carry
the plane's error shape: Key Vault and ARM `{"error": {"code", "message"}}`,
Graph the same, the local cluster a Kubernetes Status, the token endpoint OAuth's
`{"error": "invalid_request"}`.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.server.bad_input_cases import ARM_VERSION, CASES, KV, KV_VERSION, Case, mutations

VAULT = "srkv-bad-input"
SCOPES = {
    "vault": "https://vault.azure.net/.default",
    "arm": "https://management.azure.com/.default",
    "graph": "https://graph.microsoft.com/.default",
    "kubernetes": "https://management.azure.com/.default",
}


def token(server: Server, scope: str) -> str:
    a = server.admin
    r = httpx.post(f"{server.url}/{a['tenantId']}/oauth2/v2.0/token", verify=server.ssl_context, data={
        "grant_type": "client_credentials", "client_id": a["clientId"], "client_secret": a["clientSecret"], "scope": scope,
    })
    r.raise_for_status()
    return r.json()["access_token"]


class Target:
    """Sends a case's body (with its placeholders filled) to the right host with the right token."""

    def __init__(self, server: Server) -> None:
        self.server = server
        meta = httpx.get(f"{server.url}/strongroom/metadata", verify=server.ssl_context).json()
        self.fill = {"{sub}": meta["subscriptionId"], "{tenant}": meta["tenantId"]}
        self.tokens = {plane: token(server, scope.replace("https://vault.azure.net", meta["vaultResource"]))
                       for plane, scope in SCOPES.items()}
        self.client = httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=30)
        who = self.client.get(f"{server.url}/v1.0/servicePrincipals", headers=self.auth("graph"),
                              params={"$filter": f"appId eq '{server.admin['clientId']}'"})
        who.raise_for_status()
        self.fill["{oid}"] = who.json()["value"][0]["id"]
        app = self.client.post(f"{server.url}/v1.0/applications", headers=self.auth("graph"),
                               json={"displayName": "bad-input-target"})
        app.raise_for_status()
        self.fill["{app}"] = app.json()["id"]

    def auth(self, plane: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[plane]}"}

    def url(self, case: Case) -> str:
        base = self.server.vault_url(VAULT) if case.plane == "vault" else self.server.url
        path = case.path
        for k, v in self.fill.items():
            path = path.replace(k, v)
        return base + path

    def send(self, case: Case, raw: bytes) -> httpx.Response:
        for k, v in self.fill.items():
            raw = raw.replace(k.encode(), v.encode())
        return self.client.request(case.method, self.url(case), content=raw, params=case.params,
                                   headers={**self.auth(case.plane), "Content-Type": "application/json"})


@pytest.fixture(scope="module")
def target(server: Server) -> Target:
    t = Target(server)
    vault_put = next(c for c in CASES if c.label == "vault put")
    r = t.send(vault_put, json.dumps(vault_put.body).encode())
    assert r.status_code in (200, 201), r.text
    return t


def error_shape_problem(plane: str, r: httpx.Response) -> str | None:
    """None when a 4xx answer has the plane's error shape, else what is wrong with it."""
    try:
        doc = r.json()
    except ValueError:
        return f"not JSON: {r.text[:80]!r}"
    if plane == "kubernetes":
        ok = isinstance(doc, dict) and doc.get("kind") == "Status" and doc.get("code") == r.status_code
    else:
        err = doc.get("error") if isinstance(doc, dict) else None
        ok = isinstance(err, dict) and isinstance(err.get("code"), str) and isinstance(err.get("message"), str)
    return None if ok else f"shape: {r.text[:120]!r}"


# Bodies no strict JSON reader accepts, whatever the route.
RAW_BODIES: dict[str, bytes] = {
    "lone surrogate value": b'{"value": "\\ud800", "tags": {"a": "\\udfff"}}',
    "lone surrogate key": b'{"tags": {"\\ud800": "x"}, "value": "v"}',
    "deep nesting": b'{"value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "deep objects": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "NaN": b'{"value": NaN}',
    "Infinity": b'{"count": Infinity}',
    "not UTF-8": b'{"value": "\xff\xfe"}',
    "huge integer": b'{"count": 1' + b"0" * 4000 + b"}",
}


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_every_field_of_every_body_with_a_wrong_type_is_a_4xx_in_the_planes_shape(target: Target, case: Case) -> None:
    valid = target.send(case, json.dumps(case.body).encode())
    assert valid.status_code < case.baseline, f"the valid body of {case.label} is refused: {valid.status_code} {valid.text}"
    problems = []
    for label, raw in [*((k, v) for k, v in RAW_BODIES.items()),
                       *((d, json.dumps(b).encode()) for d, b in mutations(case.body))]:
        r = target.send(case, raw)
        if r.status_code >= 500:
            problems.append(f"{label}: {r.status_code} {r.text[:120]}")
        elif r.status_code >= 400 and (p := error_shape_problem(case.plane, r)):
            problems.append(f"{label}: {r.status_code} {p}")
    assert not problems, f"{case.label}:\n" + "\n".join(problems)


def test_vault_properties_of_the_wrong_type_change_nothing(target: Target) -> None:
    """A list of tags, or "false" as a string, is refused and leaves the vault as it was and serving."""
    url = target.url(Case("", "arm", "PUT", KV + "/srkv-typed", None))
    good = {"location": "local", "tags": {"a": "b"}, "properties": {"softDeleteRetentionInDays": 30}}
    r = target.client.put(url, params=ARM_VERSION, headers=target.auth("arm"), json=good)
    assert r.status_code in (200, 201), r.text
    for bad in ({"tags": ["a", "b"]}, {"tags": {"a": 1}}, {"tags": "a"},
                {"properties": {"enablePurgeProtection": "false"}},
                {"properties": {"enablePurgeProtection": 0}},
                {"properties": {"enableRbacAuthorization": "false"}},
                {"properties": {"softDeleteRetentionInDays": "x"}},
                {"properties": {"softDeleteRetentionInDays": True}},
                {"properties": {"softDeleteRetentionInDays": 30.5}},
                {"properties": {"createMode": ["recover"]}},
                {"properties": []},
                {"location": ["x"]}):
        r = target.client.put(url, params=ARM_VERSION, headers=target.auth("arm"), json={"location": "local", **bad})
        assert r.status_code == 400, (bad, r.status_code, r.text)
        assert r.json()["error"]["code"] == "InvalidRequestContent", r.text
    doc = target.client.get(url, params=ARM_VERSION, headers=target.auth("arm")).json()
    assert doc["tags"] == {"a": "b"}
    assert doc["properties"]["enablePurgeProtection"] is None  # not switched on for good by the string "false"
    assert doc["properties"]["softDeleteRetentionInDays"] == 30
    data = target.client.get(target.server.vault_url("srkv-typed") + "/secrets", params=KV_VERSION,
                             headers=target.auth("vault"))
    assert data.status_code == 200, data.text


def test_token_endpoint_form_that_is_not_utf8_is_invalid_request(target: Target) -> None:
    """The token endpoint reads a form: bytes or escapes that are not UTF-8 are OAuth's invalid_request, not a 500."""
    url = f"{target.server.url}/{target.fill['{tenant}']}/oauth2/v2.0/token"
    scope = b"&client_secret=x&scope=https%3A%2F%2Fvault.azure.net%2F.default"
    for raw in (b"grant_type=client_credentials&client_id=\xff\xfe" + scope,
                b"grant_type=client_credentials&client_id=%ED%A0%80" + scope,
                b"grant_type=client_credentials&client_id=%FF" + scope):
        r = target.client.post(url, content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 400, (raw[:60], r.status_code, r.text)
        assert r.json()["error"] == "invalid_request", r.text
    for raw in (b"grant_type=client_credentials&client_id=a%00b" + scope, b"a&" * 5000 + b"=" * 100, b"%"):
        r = target.client.post(url, content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 400 and isinstance(r.json()["error"], str), (raw[:60], r.status_code, r.text)


def test_a_vault_stored_with_wrong_types_before_the_fix_reads_as_its_safe_meaning() -> None:
    """Records written by releases without strict bodies (tags as a list, "false" as a string) still load."""
    from strongroom.keyvault.vaults import Vault

    base = {"name": "kv-old", "subscription_id": "s", "resource_group": "rg", "tenant_id": "t"}
    old = Vault.from_record({**base, "tags": ["a", "b"], "purge_protection": "false", "rbac_authorization": "false",
                             "retention_days": "x", "location": ["x"], "access_policies": {"a": 1}})
    assert (old.tags, old.purge_protection, old.rbac_authorization, old.retention_days) == ({}, False, True, 90)
    assert (old.location, old.access_policies, old.recovery_level) == ("local", [], "Recoverable+Purgeable")
    assert Vault.from_record({**base, "purge_protection": "true"}).purge_protection is True
    good = Vault.from_record({**base, "tags": {"a": "b"}, "purge_protection": True, "retention_days": 30})
    assert (good.tags, good.purge_protection, good.retention_days) == ({"a": "b"}, True, 30)


@pytest.mark.parametrize("plane,method,path,body", [
    ("vault", "PUT", "/secrets/s1%0A", {"value": "v"}),
    ("vault", "POST", "/keys/k1%0A/create", {"kty": "EC"}),
    ("vault", "POST", "/certificates/c1%0A/create",
     {"policy": {"issuer": {"name": "Self"}, "x509_props": {"subject": "CN=x"}, "key_props": {"kty": "EC"}}}),
    ("arm", "PUT", "/subscriptions/{sub}/resourceGroups/rg-names/providers/Microsoft.KeyVault/vaults/srkv1%0A",
     {"location": "local", "properties": {}}),
    ("arm", "PUT", "/subscriptions/{sub}/resourceGroups/rg-names%0A/providers/Microsoft.KeyVault/vaults/srkv-names",
     {"location": "local", "properties": {}}),
    ("arm", "PUT", "/subscriptions/{sub}/resourceGroups/rg-names%0A/providers/Microsoft.ManagedIdentity/"
     "userAssignedIdentities/id-names", {"location": "local"}),
    ("arm", "PUT", "/subscriptions/{sub}/resourceGroups/rg-names/providers/Microsoft.ManagedIdentity/"
     "userAssignedIdentities/id-names%0A", {"location": "local"}),
    ("arm", "PUT", "/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments/"
     "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3e%0A", {"properties": {"roleDefinitionId": "x", "principalId": "y"}}),
])
def test_a_name_with_a_trailing_newline_is_refused(target: Target, plane: str, method: str, path: str, body: Any) -> None:
    """Names are matched whole: Python's `$` also matches before a final newline, which let `s1\\n` be stored."""
    case = Case("name", plane, method, path, body, KV_VERSION if plane == "vault" else ARM_VERSION)
    r = target.send(case, json.dumps(body).encode())
    assert r.status_code == 400, (path, r.status_code, r.text)
    assert error_shape_problem(plane, r) is None
