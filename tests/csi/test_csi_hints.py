"""Error messages built from Key Vault's and Entra's documented error answers name the cause and the fix."""

from __future__ import annotations

import base64
import json

import httpx

from strongroom.csi import hints
from strongroom.csi.credentials import ClientAssertionCredential, ClientSecretCredential
from strongroom.csi.errors import NOT_FOUND, PERMISSION_DENIED, UNAUTHENTICATED

VAULT_ID = "/subscriptions/0000/resourcegroups/rg/providers/microsoft.keyvault/vaults/kv1"

# The 403 Key Vault sends under Azure RBAC (recorded shape; \r\n line breaks).
RBAC_403 = {
    "error": {
        "code": "Forbidden",
        "message": (
            "Caller is not authorized to perform action on resource.\r\n"
            "If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n"
            "Caller: appid=11111111-2222-3333-4444-555555555555;oid=aaaa;iss=https://sts.windows.net/tid/\r\n"
            "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\n"
            f"Resource: '{VAULT_ID}/secrets/db-password'\r\n"
            "Assignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: 'DeniedWithNoValidRBAC' \r\n"
            "Vault: kv1;location=eastus\r\n"
        ),
        "innererror": {"code": "ForbiddenByRbac"},
    }
}


def test_rbac_forbidden_names_the_missing_role_and_scope():
    err = hints.vault_error("secret", "objectType:secret, objectName:db-password", "https://kv1.vault.azure.net", 403, RBAC_403, "sp")
    assert err.status == PERMISSION_DENIED
    assert "ForbiddenByRbac" in err.message
    assert "'Key Vault Secrets User' at scope " + VAULT_ID in err.message
    assert "Microsoft.KeyVault/vaults/secrets/getSecret/action" in err.message
    assert "--assignee 11111111-2222-3333-4444-555555555555" in err.message


def test_certificate_read_maps_to_certificate_user():
    body = json.loads(json.dumps(RBAC_403).replace("secrets/getSecret/action", "certificates/read"))
    err = hints.vault_error("cert", "objectType:cert, objectName:web", "https://kv1.vault.azure.net", 403, body, "sp")
    assert "'Key Vault Certificate User'" in err.message


def test_access_policy_forbidden_says_which_permission():
    body = {
        "error": {
            "code": "Forbidden",
            "message": "The user, group or application 'appid=x;oid=y;iss=z' does not have secrets get permission on key "
            "vault 'kv1;location=eastus'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
            "innererror": {"code": "AccessDenied"},
        }
    }
    err = hints.vault_error("secret", "objectType:secret, objectName:s", "https://kv1.vault.azure.net", 403, body, "sp")
    assert err.status == PERMISSION_DENIED
    assert "access policy with secret permission get" in err.message


def test_not_found_is_not_found():
    body = {"error": {"code": "KeyNotFound", "message": "A key with (name/id) k was not found in this key vault."}}
    err = hints.vault_error("key", "objectType:key, objectName:k", "https://kv1.vault.azure.net", 404, body, "sp")
    assert err.status == NOT_FOUND and "KeyNotFound" in err.message and "key exists" in err.message


def _jwt(claims: dict) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'kid': 'k'})}.{part(claims)}.c2ln"


def test_federation_mismatch_names_the_code_and_the_subject_presented():
    token = _jwt({"iss": "https://oidc.example/cluster", "sub": "system:serviceaccount:app:wrong-sa", "aud": ["api://AzureADTokenExchange"]})
    with httpx.Client() as http:
        cred = ClientAssertionCredential(http, "https://login.microsoftonline.com", "tid", "cid", token)
    body = {
        "error": "invalid_client",
        "error_description": "AADSTS70021: No matching federated identity record found for presented assertion. "
        "Trace ID: 1 Correlation ID: 2 Timestamp: 2026-01-01 00:00:00Z",
        "error_codes": [70021],
    }
    err = hints.token_endpoint_error(cred, 400, body)
    assert err.status == UNAUTHENTICATED
    assert "AADSTS70021" in err.message and "Trace ID" not in err.message
    assert "subject 'system:serviceaccount:app:wrong-sa'" in err.message
    assert "issuer 'https://oidc.example/cluster'" in err.message
    assert token not in err.message


def test_bad_client_secret_hint_points_at_node_publish_secret_ref():
    with httpx.Client() as http:
        cred = ClientSecretCredential(http, "https://login.microsoftonline.com", "tid", "cid", "CANARY-SECRET")
    body = {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": [7000215]}
    err = hints.token_endpoint_error(cred, 401, body)
    assert "nodePublishSecretRef" in err.message and "CANARY-SECRET" not in err.message
