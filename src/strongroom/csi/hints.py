"""Turning what the vault and the authority answered into a message a person can act on.

Each function returns a ProviderError whose message says which object failed,
why (the service's own code: SecretNotFound, ForbiddenByRbac, AADSTS70021, ...),
and what to change. They read the services' documented error shapes:
- Key Vault: `{"error": {"code", "message", "innererror": {"code"}}}`; an RBAC 403
  message carries `Caller:`, `Action:` and `Resource:` lines, an access-policy 403
  says "does not have secrets get permission on key vault";
- Entra: `{"error", "error_description": "AADSTS<n>: ...", "error_codes": [n]}`.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from strongroom.csi.errors import (
    FAILED_PRECONDITION,
    NOT_FOUND,
    PERMISSION_DENIED,
    RESOURCE_EXHAUSTED,
    UNAUTHENTICATED,
    UNAVAILABLE,
    ProviderError,
)

if TYPE_CHECKING:  # pragma: no cover
    from strongroom.csi.credentials import ManagedIdentityCredential, _TokenEndpointCredential

# The least-privileged built-in role that grants each data action a mount needs.
ROLE_FOR_ACTION = {
    "microsoft.keyvault/vaults/secrets/getsecret/action": "Key Vault Secrets User",
    "microsoft.keyvault/vaults/secrets/readmetadata/action": "Key Vault Secrets User",
    "microsoft.keyvault/vaults/keys/read": "Key Vault Crypto User",
    "microsoft.keyvault/vaults/certificates/read": "Key Vault Certificate User",
}
ROLE_FOR_TYPE = {"secret": "Key Vault Secrets User", "key": "Key Vault Crypto User", "cert": "Key Vault Certificate User"}
PERMISSION_FOR_TYPE = {"secret": "secret permission get", "key": "key permission get", "cert": "certificate permission get"}

# AADSTS codes that mean "the presented service-account token matches no federated credential".
FEDERATION_MISMATCH = {70021, 700211, 700212, 700213, 7002131, 70025}


def transport_cause(exc: Exception) -> str:
    """A short cause for a failed connection, without a stack trace."""
    text = str(exc)
    inner: BaseException | None = exc
    while inner is not None:
        if isinstance(inner, ssl.SSLCertVerificationError):
            return (
                f"the server's TLS certificate is not trusted ({inner.verify_message}); "
                "pass the CA that signed it with --ca-file"
            )
        inner = inner.__cause__ or inner.__context__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "the server's TLS certificate is not trusted; pass the CA that signed it with --ca-file"
    if isinstance(exc, httpx.TimeoutException):
        return "the connection timed out"
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text.lower():
        return "the host name does not resolve"
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    return text or type(exc).__name__


def _aadsts(body: Mapping[str, Any]) -> tuple[int | None, str]:
    """(AADSTS number, the description without its trace/correlation tail)."""
    description = str(body.get("error_description") or "")
    short = re.split(r"\s+Trace ID:", description, maxsplit=1)[0].strip()
    codes = body.get("error_codes")
    if isinstance(codes, list) and codes and isinstance(codes[0], int):
        return codes[0], short
    m = re.match(r"AADSTS(\d+)", short)
    return (int(m.group(1)) if m else None), short


def token_endpoint_error(cred: _TokenEndpointCredential, status: int, body: Mapping[str, Any]) -> ProviderError:
    code, description = _aadsts(body)
    what = description or f"HTTP {status} {body.get('error') or ''}".strip()
    if status >= 500 or status == 429:
        return ProviderError(UNAVAILABLE, f"the authority {cred.token_url} failed ({what}); try again later")
    # Only a workload identity's exchange (ClientAssertionCredential) carries the token's claims; asking for
    # the attribute instead of the class keeps credentials.py (which imports this module) out of our imports.
    claims: Mapping[str, Any] | None = getattr(cred, "claims", None)
    if claims is not None:
        presented = (
            f"The service account token presented: subject '{claims.get('sub', '?')}', "
            f"issuer '{claims.get('iss', '?')}', audience '{_aud(claims)}'."
        )
        if code in FEDERATION_MISMATCH:
            return ProviderError(
                UNAUTHENTICATED,
                f"workload identity: the token exchange for clientID {cred.client_id} in tenant {cred.tenant_id} "
                f"was refused: {what} {presented} Hint: the identity {cred.client_id} needs a federated credential "
                f"with issuer '{claims.get('iss', '?')}', subject '{claims.get('sub', '?')}' and audience "
                f"'{_aud(claims)}' (strongroom identity federated-credential create ... or az identity "
                "federated-credential create ...); check clientID and the pod's service account.",
            )
        if code == 700024:
            return ProviderError(
                UNAUTHENTICATED,
                f"workload identity: the service account token is outside its valid time range: {what} {presented} "
                "Hint: the driver passes a fresh token on each mount; check the node's clock.",
            )
        return ProviderError(
            UNAUTHENTICATED,
            f"workload identity: the token exchange for clientID {cred.client_id} in tenant {cred.tenant_id} "
            f"failed: {what} {presented} Hint: check clientID and tenantID.",
        )
    hint = "check clientid and clientsecret in the nodePublishSecretRef Secret, and tenantID"
    if code == 90002:
        hint = "tenantID names no tenant on this authority"
    elif code == 700016:
        hint = "clientid in the nodePublishSecretRef Secret names no application in this tenant"
    elif code == 7000215:
        hint = "clientsecret in the nodePublishSecretRef Secret is wrong or expired"
    return ProviderError(UNAUTHENTICATED, f"getting a token for {cred.describe()} failed: {what}. Hint: {hint}.")


def managed_identity_error(
    cred: ManagedIdentityCredential, url: str, status: int, body: Mapping[str, Any]
) -> ProviderError:
    err = body.get("error")
    if isinstance(err, dict):  # IMDS and Azure errors
        what = f"{err.get('code', '')}: {err.get('message', '')}".strip(": ")
    else:  # App Service answers {"statusCode", "message"}; Entra-style {"error", "error_description"}
        what = str(body.get("message") or body.get("error_description") or err or f"HTTP {status}")
    status_name = UNAVAILABLE if status >= 500 or status == 429 else UNAUTHENTICATED
    hint = "check userAssignedIdentityID" if cred.client_id else "does the node have a system-assigned identity?"
    return ProviderError(status_name, f"getting a token for {cred.describe()} from {url} failed: {what}. Hint: {hint}.")


def _aud(claims: Mapping[str, Any]) -> str:
    aud = claims.get("aud", "?")
    return ",".join(aud) if isinstance(aud, list) else str(aud)


def _line(message: str, label: str) -> str | None:
    m = re.search(rf"^\s*{label}:\s*'?([^'\r\n]*)'?\s*$", message, re.MULTILINE)
    return m.group(1).strip() if m else None


def _vault_scope(resource: str) -> str:
    """`/subscriptions/.../vaults/kv1/secrets/s` -> `/subscriptions/.../vaults/kv1`."""
    m = re.match(r"(?i)(.*/providers/microsoft\.keyvault/vaults/[^/]+)", resource)
    return m.group(1) if m else resource


def forbidden_hint(object_type: str, message: str) -> str:
    """Which role is missing at which scope, from a Key Vault 403 message."""
    action = _line(message, "Action")
    resource = _line(message, "Resource")
    caller = _line(message, "Caller")
    if action and resource:
        role = ROLE_FOR_ACTION.get(action.lower(), ROLE_FOR_TYPE.get(object_type, "Key Vault Secrets User"))
        appid = None
        if caller:
            m = re.search(r"appid=([^;]+)", caller)
            appid = m.group(1) if m else None
        assignee = appid or "<the identity's client ID>"
        scope = _vault_scope(resource)
        return (
            f"the caller ({caller or 'this identity'}) lacks the data action {action} on {resource}. "
            f"Hint: assign the role '{role}' at scope {scope} (or narrower, {resource}): "
            f'role assignment create --role "{role}" --assignee {assignee} --scope {scope}'
        )
    if "does not have" in message and "permission" in message:
        return (
            f"the vault uses access policies and this identity has none that allows it. Hint: add an access policy "
            f"with {PERMISSION_FOR_TYPE.get(object_type, 'get')} for this identity, or move the vault to Azure RBAC "
            f"and assign '{ROLE_FOR_TYPE.get(object_type, 'Key Vault Secrets User')}'"
        )
    return "Hint: check the vault's firewall and this identity's role assignments"


def vault_error(
    object_type: str, object_label: str, vault_url: str, status: int, body: Mapping[str, Any], via: str
) -> ProviderError:
    """A Key Vault error answer -> the provider's message for one object."""
    given = body.get("error")
    err: Mapping[str, Any] = given if isinstance(given, dict) else {}
    code = str(err.get("code") or f"HTTP {status}")
    message = str(err.get("message") or "").strip()
    given_inner = err.get("innererror")
    inner: Mapping[str, Any] = given_inner if isinstance(given_inner, dict) else {}
    inner_code = inner.get("code") if inner else None
    first = message.splitlines()[0].strip() if message else ""
    prefix = f"failed to get {object_label} from {vault_url}"
    if status == 404:
        kind = {"secret": "secret", "key": "key", "cert": "certificate"}.get(object_type, "object")
        return ProviderError(
            NOT_FOUND,
            f"{prefix}: {code}: {first or 'not found'} Hint: check objectName and objectVersion, and that the "
            f"{kind} exists (and is not deleted) in vault {vault_url}.",
        )
    if status == 403:
        reason = f"{code}" + (f" ({inner_code})" if inner_code else "")
        if inner_code == "SecretDisabled" or "disabled secret" in first.lower():
            return ProviderError(
                FAILED_PRECONDITION, f"{prefix}: {reason}: {first} Hint: enable the version, or pin another objectVersion."
            )
        return ProviderError(PERMISSION_DENIED, f"{prefix}: {reason} using {via}: {forbidden_hint(object_type, message)}")
    if status == 401:
        return ProviderError(
            UNAUTHENTICATED,
            f"{prefix}: the vault refused the token from {via}: {first or code}. Hint: the token's tenant or "
            "audience does not match the vault; check tenantID and the cloud settings.",
        )
    if status == 429:
        return ProviderError(
            RESOURCE_EXHAUSTED, f"{prefix}: {code}: {first} Hint: the vault is throttling; mount less often."
        )
    if status >= 500:
        return ProviderError(UNAVAILABLE, f"{prefix}: the vault failed with HTTP {status} ({code}); try again later")
    return ProviderError(FAILED_PRECONDITION, f"{prefix}: {code}: {first or f'HTTP {status}'}")


def vault_unreachable(object_label: str, vault_url: str, exc: Exception) -> ProviderError:
    return ProviderError(
        UNAVAILABLE,
        f"failed to get {object_label}: vault {vault_url} is unreachable: {transport_cause(exc)}. Hint: check "
        "keyvaultName, the provider's --vault-dns-suffix (or the cloud's keyVaultDNSSuffix), DNS and the network "
        "path from this node to the vault.",
    )
