"""Entra-style identity endpoints: token, OIDC discovery, JWKS, instance discovery, and the managed-identity endpoint."""

from __future__ import annotations

import time
import uuid
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from strongroom.audit import facts as audit
from strongroom.identity.endpoint import ASSERTION_ACR, caller_claims, known_resource
from strongroom.identity.errors import EntraError
from strongroom.identity.msi import HEADER_NAME, MsiError, check_header, select_identity
from strongroom.identity.msi import PATH as MSI_PATH
from strongroom.identity.oidc import FetchNeeded
from strongroom.server.failure_audit import failure_audit
from strongroom.server.guards import SIGN_IN, public, route, runtime
from strongroom.server.http import JSON, form_fields
from strongroom.server.runtime import Runtime
from strongroom.server.throttle import Throttled

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _check_tenant(rt: Runtime, tenant: str) -> None:
    if tenant.lower() not in (rt.tenant.tenant_id, "organizations", "common"):
        raise EntraError(
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into "
            "the correct cloud.",
        )


def token_endpoints(rt: Runtime, request: Request) -> set[str]:
    """Audiences a certificate-signed client assertion may name: this tenant's token endpoints (v2 and v1).

    Only at the configured authority, never at the request's own Host: an assertion a client signed for
    another server's token endpoint must not be replayable here by sending that server's name as Host."""
    tid = rt.tenant.tenant_id
    bases = {rt.settings.authority}
    tenants = {tid, request.path_params["tenant"]}
    found = {f"{b}/{t}/oauth2/v2.0/token" for b in bases for t in tenants}
    found |= {f"{b}/{t}/oauth2/token" for b in bases for t in tenants}
    found.add(rt.issuer.issuer)
    return {e.rstrip("/").lower() for e in found}


def _record_authentication(request: Request, auth: dict[str, Any]) -> None:
    """Audit facts of a token request: who signed in (verified: only once the credential was), what was claimed, the outcome.

    A failed sign-in carries no identity: the client id it claimed is in `authentication.clientId`.
    """
    caller = auth.get("caller") or {}
    audit.facts(request.scope).update(
        caller=caller, resourceId=caller.get("xms_mirid"), authentication={k: v for k, v in auth.items() if k != "caller"},
    )


async def token(request: Request) -> Response:
    rt = runtime(request)
    assert rt.identity is not None
    _check_tenant(rt, request.path_params["tenant"])
    fields = await form_fields(request)
    client = request.scope.get("client")
    source = client[0] if client else ""
    # Failed sign-ins count per source address and claimed client id: a source that guessed wrong too
    # often for one client is refused before any credential is checked, while other clients behind the
    # same address (a load balancer, a NAT) keep signing in.
    attempt = f"{source} {fields.get('client_id', '')[:64]}"
    if rt.throttle is not None and (wait := rt.throttle.source_wait(attempt)) is not None:
        failure_audit(rt.audit).note(request.scope, source, "too many failed sign-ins", 429)
        raise TooManySignIns(wait)
    auth: dict[str, Any] = {}
    endpoints = partial(token_endpoints, rt, request)  # only a certificate assertion needs them
    failed: EntraError | None = None
    try:
        try:
            # On the loop, as vault reads are: a thread hop costs more CPU than the exchange's own checks.
            body = rt.identity.tokens.client_credentials(fields, endpoints, auth, fetch=False)
        except FetchNeeded:
            # The issuer's keys must be fetched over HTTPS (or another request is fetching them): in a thread.
            auth.clear()
            body = await run_in_threadpool(rt.identity.tokens.client_credentials, fields, endpoints, auth)
        auth["result"] = "Success"
    except EntraError as exc:
        auth["result"] = f"AADSTS{exc.aadsts}"
        failed = exc
        raise
    finally:
        _record_authentication(request, auth)
        if failed is not None:
            if rt.throttle is not None:
                try:
                    rt.throttle.check_source(attempt)  # counts the failure; the next request is refused past the limit
                except Throttled:
                    pass
            failure_audit(rt.audit).note(request.scope, source, f"AADSTS{failed.aadsts}", failed.status)
    return JSON(body, headers=NO_STORE)


class TooManySignIns(EntraError):
    """429 with Retry-After, as Entra answers a client_credentials caller it throttles."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(429, "temporarily_unavailable", 50196,
                         "Too many failed sign-ins from this address. Retry after the time in Retry-After.")
        self.retry_after = retry_after


async def msi_token(request: Request) -> Response:
    """App Service's managed-identity protocol (api-version 2019-08-01), for ManagedIdentityCredential."""
    rt = runtime(request)
    assert rt.identity is not None
    auth: dict[str, Any] = {"grantType": "managed_identity", "credentialType": "ManagedIdentityEndpoint"}
    try:
        check_header(rt.identity.msi_header, request.headers.get(HEADER_NAME))
        principal = select_identity(rt.directory, request.query_params)
        auth["clientId"] = principal.client_id
        auth["caller"] = caller_claims(principal, rt.tenant.tenant_id)
        resource = request.query_params.get("resource", "")
        try:
            resource = known_resource(resource, rt.identity.tokens.resources)
        except EntraError as exc:
            raise MsiError(400, str(exc)) from None
        auth["resource"] = resource
        access_token, lifetime = rt.identity.tokens.issue(principal, resource, ASSERTION_ACR)
        auth["result"] = "Success"
    except MsiError as exc:
        auth["result"] = f"HTTP{exc.status}"
        return JSON({"statusCode": exc.status, "message": exc.message, "correlationId": str(uuid.uuid4())},
                    status_code=exc.status)
    finally:
        _record_authentication(request, auth)
    return JSON(
        {
            "access_token": access_token,
            "expires_on": str(int(time.time()) + lifetime),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": principal.client_id,
        },
        headers=NO_STORE,
    )


async def openid_configuration(request: Request) -> Response:
    rt = runtime(request)
    _check_tenant(rt, request.path_params["tenant"])
    tid = rt.tenant.tenant_id
    base = f"{rt.settings.authority}/{tid}"
    return JSON(
        {
            "issuer": rt.issuer.issuer,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "grant_types_supported": ["client_credentials"],
            "tenant_region_scope": None,
            "cloud_instance_name": "strongroom",
        }
    )


async def jwks(request: Request) -> Response:
    rt = runtime(request)
    _check_tenant(rt, request.path_params["tenant"])
    return JSON(rt.signing_keys.jwks())


async def instance_discovery(request: Request) -> Response:
    """MSAL's instance discovery, for clients that do not set disable_instance_discovery."""
    rt = runtime(request)
    host = rt.settings.authority.split("://", 1)[1]
    return JSON(
        {
            "tenant_discovery_endpoint": f"{rt.settings.authority}/{rt.tenant.tenant_id}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }
    )


routes = [
    route("/common/discovery/instance", instance_discovery, ["GET"], public()),
    # The credential is the request itself (the MSI header, the form): audited as sign-ins, whatever their outcome.
    # The managed-identity endpoint's secret header is not guessable (identity/msi.py): no failure counting.
    route(MSI_PATH, msi_token, ["GET"], public("Authentication")),
    route("/{tenant}/oauth2/v2.0/token", token, ["POST"], public("Authentication", SIGN_IN)),
    route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration, ["GET"], public()),
    route("/{tenant}/discovery/v2.0/keys", jwks, ["GET"], public()),
]
