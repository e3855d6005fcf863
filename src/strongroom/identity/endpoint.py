"""The token endpoint's rules (OAuth2 client credentials), independent of HTTP."""

from __future__ import annotations

from typing import Any, Mapping

from strongroom.identity.directory import Directory
from strongroom.identity.errors import EntraError
from strongroom.identity.tokens import TokenIssuer

CLIENT_CREDENTIALS = "client_credentials"


def resource_from_scope(scope: str, known: list[str]) -> str:
    """`https://vault.azure.net/.default` -> `https://vault.azure.net`, if that resource exists here."""
    scopes = scope.split()
    if not scopes:
        raise EntraError(400, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.")
    if len(scopes) > 1 or not scopes[0].endswith("/.default"):
        raise EntraError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value "
            "with /.default suffixed to the resource identifier (application ID URI).",
        )
    resource = scopes[0][: -len("/.default")]
    if resource.rstrip("/") in {r.rstrip("/") for r in known}:
        return resource
    raise EntraError(
        400,
        "invalid_resource",
        500011,
        f"The resource principal named {resource} was not found in the tenant. This can happen if the application "
        "has not been installed by the administrator of the tenant.",
    )


def client_credentials(form: Mapping[str, str], directory: Directory, issuer: TokenIssuer, resources: list[str]) -> dict[str, Any]:
    grant = form.get("grant_type", "")
    if grant != CLIENT_CREDENTIALS:
        raise EntraError(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'.")
    client_id = form.get("client_id", "")
    if not client_id:
        raise EntraError(400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
    audience = resource_from_scope(form.get("scope", ""), resources)
    principal = directory.principal(client_id)
    if principal is None:
        raise EntraError(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory '{issuer.tenant_id}'.",
        )
    secret = form.get("client_secret")
    if form.get("client_assertion") is not None:
        raise EntraError(
            401, "invalid_client", 70021, "No matching federated identity record found for presented assertion."
        )
    if not secret or not directory.check_secret(principal, secret):
        raise EntraError(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "
            f"not the client secret ID, for a secret added to app '{client_id}'.",
        )
    token, lifetime = issuer.issue(audience=audience, object_id=principal.object_id, app_id=principal.client_id)
    return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}
