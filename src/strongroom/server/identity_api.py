"""Entra-style identity endpoints: token, OIDC discovery, JWKS, instance discovery."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from strongroom.identity.endpoint import client_credentials
from strongroom.identity.errors import EntraError
from strongroom.server.http import JSON, form_fields
from strongroom.server.runtime import MANAGEMENT_AUDIENCES, Runtime


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _check_tenant(rt: Runtime, tenant: str) -> None:
    if tenant.lower() not in (rt.tenant.tenant_id, "organizations", "common"):
        raise EntraError(
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into "
            "the correct cloud.",
        )


async def token(request: Request) -> Response:
    rt = runtime(request)
    _check_tenant(rt, request.path_params["tenant"])
    fields = await form_fields(request)
    resources = rt.vault_audiences + MANAGEMENT_AUDIENCES
    body = client_credentials(fields, rt.directory, rt.issuer, resources)
    return JSON(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


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
    Route("/common/discovery/instance", instance_discovery, methods=["GET"]),
    Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
    Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
    Route("/{tenant}/discovery/v2.0/keys", jwks, methods=["GET"]),
]
