"""Valid request bodies for every JSON route, and the ways the bad-input tests spoil them.

Each case is one route with a body the server accepts; `mutations(body)` yields
that body with one field at a time replaced by a value of every other JSON type
(list, object, string, integer, float, boolean, null, a lone surrogate). The
tests send each over the wire and require an answer below 500 in the plane's
error shape. Kept apart from the tests so the fuzz suite can reuse the cases.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

SUB_RG = "/subscriptions/{sub}/resourceGroups/rg-bad-input"
KV = SUB_RG + "/providers/Microsoft.KeyVault/vaults"
MI = SUB_RG + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
ARM_VERSION = {"api-version": "2023-07-01"}
AUTHZ_VERSION = {"api-version": "2022-04-01"}
KV_VERSION = {"api-version": "7.5"}

# One value of each JSON type; a field gets every one that differs from its own type.
WRONG_VALUES: list[Any] = [["x"], {"x": "y"}, "x", 7, 1.5, True, None, "\ud800"]


@dataclass(frozen=True)
class Case:
    """One JSON route: `plane` is vault | arm | graph | kubernetes (which error shape a 400 has)."""

    label: str
    plane: str
    method: str
    path: str  # `{sub}`, `{tenant}` and `{vault}` are filled in by the test
    body: Any
    params: dict[str, str] | None = None
    baseline: int = 300  # the valid body's answer is below this (removePassword of an unknown key id is a 404)


ROLE_GUID = "3f0c1a2b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
ASSIGNMENT_GUID = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"

CASES: list[Case] = [
    # Key Vault data plane
    Case("secret set", "vault", "PUT", "/secrets/bad-input-s",
         {"value": "v", "contentType": "text/plain", "tags": {"a": "b"},
          "attributes": {"enabled": True, "nbf": 1700000000, "exp": 4102444800}}, KV_VERSION),
    Case("secret update", "vault", "PATCH", "/secrets/bad-input-s/",
         {"contentType": "text/plain", "tags": {"a": "b"}, "attributes": {"enabled": True, "exp": 4102444800}}, KV_VERSION),
    Case("key create", "vault", "POST", "/keys/bad-input-k/create",
         {"kty": "EC", "crv": "P-256", "key_ops": ["sign", "verify"], "tags": {"a": "b"},
          "attributes": {"enabled": True, "exp": 4102444800}}, KV_VERSION),
    Case("key update", "vault", "PATCH", "/keys/bad-input-k/",
         {"key_ops": ["sign"], "tags": {"a": "b"}, "attributes": {"enabled": True}}, KV_VERSION),
    Case("key sign", "vault", "POST", "/keys/bad-input-k//sign",
         {"alg": "ES256", "value": "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"}, KV_VERSION),
    Case("key rotation policy", "vault", "PUT", "/keys/bad-input-k/rotationpolicy",
         {"lifetimeActions": [{"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Rotate"}}],
          "attributes": {"expiryTime": "P90D"}}, KV_VERSION),
    Case("random bytes", "vault", "POST", "/rng", {"count": 8}, KV_VERSION),
    Case("certificate create", "vault", "POST", "/certificates/bad-input-c/create",
         {"policy": {"issuer": {"name": "Self"}, "x509_props": {"subject": "CN=bad", "validity_months": 12},
                     "key_props": {"kty": "EC", "crv": "P-256", "exportable": True}},
          "tags": {"a": "b"}, "attributes": {"enabled": True}}, KV_VERSION),
    Case("certificate update", "vault", "PATCH", "/certificates/bad-input-c/",
         {"tags": {"a": "b"}, "attributes": {"enabled": True}}, KV_VERSION),
    Case("certificate issuer", "vault", "PUT", "/certificates/issuers/bad-input-i",
         {"provider": "Test", "attributes": {"enabled": True}}, KV_VERSION),
    Case("certificate contacts", "vault", "PUT", "/certificates/contacts",
         {"contacts": [{"email": "a@example.com", "name": "a", "phone": "1"}]}, KV_VERSION),
    # ARM
    Case("vault put", "arm", "PUT", KV + "/srkv-bad-input",
         {"location": "local", "tags": {"a": "b"},
          "properties": {"tenantId": "{tenant}", "sku": {"family": "A", "name": "standard"},
                         "enableRbacAuthorization": True, "softDeleteRetentionInDays": 30,
                         "enablePurgeProtection": None}}, ARM_VERSION),
    Case("access policy", "arm", "PUT", KV + "/srkv-bad-input/accessPolicies/add",
         {"properties": {"accessPolicies": [{"tenantId": "{tenant}", "objectId": "{oid}",
                                             "permissions": {"secrets": ["get"], "keys": [], "certificates": []}}]}},
         ARM_VERSION),
    Case("identity put", "arm", "PUT", MI + "/bad-input-id", {"location": "local", "tags": {"a": "b"}}, ARM_VERSION),
    Case("fic put", "arm", "PUT", MI + "/bad-input-id/federatedIdentityCredentials/bad-input-fic",
         {"properties": {"issuer": "https://issuer.example.com", "subject": "system:serviceaccount:ns:sa",
                         "audiences": ["api://AzureADTokenExchange"]}}, ARM_VERSION),
    Case("role definition", "arm", "PUT", "/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/" + ROLE_GUID,
         {"properties": {"roleName": "bad input role", "description": "d", "assignableScopes": ["/subscriptions/{sub}"],
                         "permissions": [{"actions": [], "notActions": [],
                                          "dataActions": ["Microsoft.KeyVault/vaults/secrets/getSecret/action"],
                                          "notDataActions": []}]}}, AUTHZ_VERSION),
    Case("role assignment", "arm", "PUT",
         "/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments/" + ASSIGNMENT_GUID,
         {"properties": {"roleDefinitionId": "/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/"
                         "4633458b-17de-408a-b874-0445c86b69e6", "principalId": "{oid}",
                         "principalType": "ServicePrincipal", "description": "d"}}, AUTHZ_VERSION),
    # Graph
    Case("graph create application", "graph", "POST", "/v1.0/applications", {"displayName": "bad-input-app"}),
    Case("graph patch application", "graph", "PATCH", "/v1.0/applications/{app}",
         {"displayName": "bad-input-app2", "keyCredentials": []}),
    Case("graph add password", "graph", "POST", "/v1.0/applications/{app}/addPassword",
         {"passwordCredential": {"displayName": "p", "endDateTime": "2099-01-01T00:00:00Z"}}),
    Case("graph remove password", "graph", "POST", "/v1.0/applications/{app}/removePassword",
         {"keyId": "00000000-0000-4000-8000-000000000000"}, baseline=405),
    Case("graph fic", "graph", "POST", "/v1.0/applications/{app}/federatedIdentityCredentials",
         {"name": "bad-input-gfic", "issuer": "https://issuer.example.com", "subject": "s",
          "audiences": ["api://AzureADTokenExchange"], "description": "d"}),
    # Kubernetes-shaped local cluster
    Case("service account", "kubernetes", "POST", "/clusters/local/api/v1/namespaces/bad-input/serviceaccounts",
         {"apiVersion": "v1", "kind": "ServiceAccount",
          "metadata": {"name": "bad-input-sa", "annotations": {"a": "b"}}}),
    Case("service account token", "kubernetes", "POST",
         "/clusters/local/api/v1/namespaces/bad-input/serviceaccounts/bad-input-sa/token",
         {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
          "spec": {"audiences": ["api://AzureADTokenExchange"], "expirationSeconds": 3600}}),
]


def _leaves(value: Any, path: tuple) -> Iterator[tuple]:
    """Every position in a JSON document (objects' members and lists' items), parents before children."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield path + (k,)
            yield from _leaves(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield path + (i,)
            yield from _leaves(v, path + (i,))


def _set(doc: Any, path: tuple, value: Any) -> Any:
    out = copy.deepcopy(doc)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


def _same_type(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, str) and isinstance(b, str):
        return ("\ud800" in a) == ("\ud800" in b)
    return type(a) is type(b)


def mutations(body: Any) -> Iterator[tuple[str, Any]]:
    """(description, spoiled body): the whole body as another type, then each field as every other type."""
    for wrong in WRONG_VALUES:
        if not _same_type(body, wrong):
            yield f"body={wrong!r}", wrong
    for path in _leaves(body, ()):
        current = body
        for step in path:
            current = current[step]
        for wrong in WRONG_VALUES:
            if not _same_type(current, wrong):
                yield f"{'.'.join(map(str, path))}={wrong!r}", _set(body, path, wrong)
