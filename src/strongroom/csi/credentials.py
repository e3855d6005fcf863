"""Getting a vault token the way the Azure provider does, over plain HTTP.

Three sources, chosen by the SecretProviderClass exactly as the Azure provider
chooses them (pkg/auth/auth.go):
- workload identity: `clientID` set -> the service-account token for audience
  `api://AzureADTokenExchange` from `csi.storage.k8s.io/serviceAccount.tokens` is
  sent as a client assertion (client_credentials + jwt-bearer) to
  `{authority}/{tenant}/oauth2/v2.0/token`;
- `useVMManagedIdentity` -> the managed identity endpoint: App Service's protocol
  (IDENTITY_ENDPOINT + IDENTITY_HEADER, api-version 2019-08-01) when the provider's
  environment has it, else the instance metadata service (IMDS), as
  azure-identity's ManagedIdentityCredential picks;
- otherwise a service principal from the nodePublishSecretRef Secret
  (`clientid`/`clientsecret`, keys case-insensitive) with a client secret.

Nothing here is Strongroom-specific: the same requests work against Entra ID.
Errors become ProviderErrors with the AADSTS code and a hint (see hints.py).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from strongroom.csi import hints
from strongroom.csi.cloud import CloudEnvironment
from strongroom.csi.errors import UNAVAILABLE, ProviderError
from strongroom.csi.spc import MountParameters, SPCError

WORKLOAD_IDENTITY_AUDIENCE = "api://AzureADTokenExchange"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
APP_SERVICE_API_VERSION = "2019-08-01"
IMDS_API_VERSION = "2018-02-01"
IMDS_DEFAULT_HOST = "http://169.254.169.254"
EXPIRY_MARGIN = 300  # seconds: refresh a cached token this long before it expires


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_on: float

    def __repr__(self) -> str:  # never let a token reach a log through repr()
        return f"AccessToken(expires_on={self.expires_on})"


class Credential(Protocol):
    def get_token(self, scope: str) -> str: ...

    def describe(self) -> str: ...


class _Cached:
    """A per-scope token cache; one credential lives for one mount, as in the Azure provider."""

    def __init__(self) -> None:
        self._tokens: dict[str, AccessToken] = {}
        self._lock = threading.Lock()

    def get_token(self, scope: str) -> str:
        with self._lock:
            cached = self._tokens.get(scope)
            if cached and cached.expires_on - EXPIRY_MARGIN > time.time():
                return cached.token
            fresh = self._request(scope)
            self._tokens[scope] = fresh
            return fresh.token

    def _request(self, scope: str) -> AccessToken:  # pragma: no cover - abstract
        raise NotImplementedError


def _expiry(body: Mapping[str, Any], requested_at: float) -> float:
    if body.get("expires_on") not in (None, ""):
        return float(body["expires_on"])
    return requested_at + float(body.get("expires_in") or 0)


class _TokenEndpointCredential(_Cached):
    """OAuth2 client credentials at `{authority}/{tenant}/oauth2/v2.0/token`."""

    def __init__(self, http: httpx.Client, authority_host: str, tenant_id: str, client_id: str) -> None:
        super().__init__()
        self.http = http
        self.authority_host = authority_host.rstrip("/")
        self.tenant_id = tenant_id
        self.client_id = client_id

    @property
    def token_url(self) -> str:
        return f"{self.authority_host}/{self.tenant_id}/oauth2/v2.0/token"

    def _client_auth(self) -> dict[str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _request(self, scope: str) -> AccessToken:
        form = {"grant_type": "client_credentials", "client_id": self.client_id, "scope": scope, **self._client_auth()}
        started = time.time()
        try:
            r = self.http.post(self.token_url, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ProviderError(
                UNAVAILABLE,
                f"cannot reach the authority at {self.token_url}: {hints.transport_cause(exc)}. "
                "Hint: check the provider's --authority-host (or the cloud's activeDirectoryEndpoint) and that "
                "this node can reach it.",
            ) from None
        body = _json(r)
        if r.status_code != 200 or "access_token" not in body:
            raise hints.token_endpoint_error(self, r.status_code, body)
        return AccessToken(body["access_token"], _expiry(body, started))


class ClientSecretCredential(_TokenEndpointCredential):
    def __init__(self, http: httpx.Client, authority_host: str, tenant_id: str, client_id: str, secret: str) -> None:
        super().__init__(http, authority_host, tenant_id, client_id)
        self._secret = secret

    def _client_auth(self) -> dict[str, str]:
        return {"client_secret": self._secret}

    def describe(self) -> str:
        return f"the service principal {self.client_id} from nodePublishSecretRef"


class ClientAssertionCredential(_TokenEndpointCredential):
    """Workload identity: the pod's service-account token is the client assertion."""

    def __init__(self, http: httpx.Client, authority_host: str, tenant_id: str, client_id: str, assertion: str) -> None:
        super().__init__(http, authority_host, tenant_id, client_id)
        self._assertion = assertion
        self.claims = unverified_claims(assertion)

    def _client_auth(self) -> dict[str, str]:
        return {"client_assertion_type": JWT_BEARER, "client_assertion": self._assertion}

    def describe(self) -> str:
        return f"workload identity {self.client_id} (service account {self.claims.get('sub', '?')})"


class ManagedIdentityCredential(_Cached):
    """`useVMManagedIdentity`: App Service's 2019-08-01 protocol, else IMDS."""

    def __init__(self, http: httpx.Client, client_id: str = "", environ: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.http = http
        self.client_id = client_id
        env = os.environ if environ is None else environ
        self.endpoint = env.get("IDENTITY_ENDPOINT", "")
        self._header = env.get("IDENTITY_HEADER", "")
        self.imds_host = (env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST") or IMDS_DEFAULT_HOST).rstrip("/")

    def describe(self) -> str:
        which = f"user-assigned managed identity {self.client_id}" if self.client_id else "system-assigned managed identity"
        return f"the {which}"

    def _request(self, scope: str) -> AccessToken:
        resource = scope[: -len("/.default")] if scope.endswith("/.default") else scope
        if self.endpoint and self._header:
            url = self.endpoint
            params = {"api-version": APP_SERVICE_API_VERSION, "resource": resource}
            headers = {"X-IDENTITY-HEADER": self._header}
        else:
            url = f"{self.imds_host}/metadata/identity/oauth2/token"
            params = {"api-version": IMDS_API_VERSION, "resource": resource}
            headers = {"Metadata": "true"}
        if self.client_id:
            params["client_id"] = self.client_id
        started = time.time()
        try:
            r = self.http.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise ProviderError(
                UNAVAILABLE,
                f"cannot reach the managed identity endpoint {url}: {hints.transport_cause(exc)}. "
                "Hint: useVMManagedIdentity needs IDENTITY_ENDPOINT and IDENTITY_HEADER in the provider's "
                "environment, or the instance metadata service on the node.",
            ) from None
        body = _json(r)
        if r.status_code != 200 or "access_token" not in body:
            raise hints.managed_identity_error(self, url, r.status_code, body)
        return AccessToken(body["access_token"], _expiry(body, started))


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        body = r.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT without verifying it: only to say which subject we presented."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def service_account_token(tokens_json: str, audience: str = WORKLOAD_IDENTITY_AUDIENCE) -> str:
    """The token for `audience` from the driver's `{"<aud>": {"token", "expirationTimestamp"}}` JSON."""
    if not tokens_json:
        raise SPCError(
            "failed to parse workload identity tokens: service account tokens not found. clientID is set, so the "
            "provider uses workload identity, but the driver passed no service-account token. Hint: the CSIDriver "
            f"object needs tokenRequests: [{{audience: {audience}}}] (Helm value tokenRequests), or remove clientID "
            "to use a nodePublishSecretRef service principal."
        )
    try:
        tokens = json.loads(tokens_json)
    except ValueError:
        raise SPCError("failed to parse workload identity tokens: csi.storage.k8s.io/serviceAccount.tokens is not JSON") from None
    entry = tokens.get(audience) if isinstance(tokens, dict) else None
    token = entry.get("token") if isinstance(entry, dict) else None
    if not isinstance(token, str) or not token:
        present = ", ".join(sorted(tokens)) if isinstance(tokens, dict) and tokens else "none"
        raise SPCError(
            f"failed to parse workload identity tokens: token for audience {audience} not found "
            f"(audiences present: {present}). Hint: add {audience} to the CSIDriver object's tokenRequests."
        )
    return token


def _secret_principal(secrets: Mapping[str, str]) -> tuple[str, str]:
    client_id = client_secret = ""
    for key, value in secrets.items():
        if key.lower() == "clientid":
            client_id = value
        elif key.lower() == "clientsecret":
            client_secret = value
    if not secrets:
        raise SPCError(
            "no identity to reach the vault: set clientID for workload identity, useVMManagedIdentity for a managed "
            "identity, or give the volume a nodePublishSecretRef Secret with clientid and clientsecret"
        )
    if not client_id:
        raise SPCError("could not find clientid in the nodePublishSecretRef secret (keys: clientid, clientsecret)")
    if not client_secret:
        raise SPCError("could not find clientsecret in the nodePublishSecretRef secret (keys: clientid, clientsecret)")
    return client_id.strip(), client_secret.strip()


def for_mount(
    params: MountParameters, secrets: Mapping[str, str], env: CloudEnvironment, http: httpx.Client
) -> Credential:
    """The credential the Azure provider would use for these parameters."""
    if params.use_vm_managed_identity:
        return ManagedIdentityCredential(http, params.user_assigned_identity_id)
    if params.client_id:
        assertion = service_account_token(params.service_account_tokens)
        return ClientAssertionCredential(http, env.authority_host, params.tenant_id, params.client_id, assertion)
    client_id, client_secret = _secret_principal(secrets)
    return ClientSecretCredential(http, env.authority_host, params.tenant_id, client_id, client_secret)
