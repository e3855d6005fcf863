"""The token endpoint's rules (OAuth2 client credentials), independent of HTTP.

Three ways for a client to prove who it is, as Entra accepts them:
  client_secret                      a password credential of an app registration
  client_assertion (federated)       a token of an external issuer matching a federated identity credential
  client_assertion (certificate)     a JWT the app signed with a registered certificate's key
The `claims` parameter (the SDKs send a CAE capability there) is accepted and ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from strongroom.identity import errors
from strongroom.identity.assertions import verify_certificate, verify_federated
from strongroom.identity.directory import Directory, Principal
from strongroom.identity.errors import EntraError
from strongroom.identity.fic import FederatedCredentials
from strongroom.identity.jws import MalformedToken, parse
from strongroom.identity.oidc import IssuerKeys
from strongroom.identity.tokens import TokenIssuer

CLIENT_CREDENTIALS = "client_credentials"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# What authenticated the client, as Entra's `azpacr` claim says: 1 = secret, 2 = certificate or assertion.
SECRET_ACR, ASSERTION_ACR = "1", "2"


def resource_from_scope(scope: str, known: list[str]) -> str:
    """`https://vault.azure.net/.default` -> `https://vault.azure.net`, if that resource exists here."""
    scopes = scope.split()
    if not scopes:
        raise errors.missing_parameter("scope")
    if len(scopes) > 1 or not scopes[0].endswith("/.default"):
        raise EntraError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value "
            "with /.default suffixed to the resource identifier (application ID URI).",
        )
    return known_resource(scopes[0][: -len("/.default")], known)


def known_resource(resource: str, known: list[str]) -> str:
    if resource.rstrip("/") in {r.rstrip("/") for r in known}:
        return resource
    raise EntraError(
        400,
        "invalid_resource",
        500011,
        f"The resource principal named {resource} was not found in the tenant. This can happen if the application "
        "has not been installed by the administrator of the tenant.",
    )


def caller_claims(principal: Principal, tenant_id: str) -> dict[str, str]:
    """The identity claims of a principal's access token (also what the audit log records about it)."""
    claims = {"oid": principal.object_id, "appid": principal.client_id, "tid": tenant_id}
    if principal.is_managed_identity and principal.resource_id:
        claims["xms_mirid"] = principal.resource_id
    return claims


@dataclass
class TokenService:
    directory: Directory
    fics: FederatedCredentials
    issuer: TokenIssuer
    issuer_keys: IssuerKeys
    resources: list[str]

    def issue(self, principal: Principal, resource: str, acr: str) -> tuple[str, int]:
        extra: dict[str, Any] = {"azpacr": acr}
        if principal.is_managed_identity and principal.resource_id:
            extra["xms_mirid"] = principal.resource_id
        return self.issuer.issue(audience=resource, object_id=principal.object_id, app_id=principal.client_id, extra=extra)

    def client_credentials(
        self, form: Mapping[str, str], token_endpoints: Callable[[], set[str]], facts: dict[str, Any], fetch: bool = True
    ) -> dict[str, Any]:
        """Authenticate the client and issue an access token; `facts` collects what the audit log should say.

        `token_endpoints` is asked only for a certificate assertion (the audiences it may name).
        With `fetch=False` nothing waits on the network: a federated assertion whose issuer's
        keys are not cached raises FetchNeeded before anything is issued, and the caller
        repeats the request where blocking is fine.
        """
        grant = form.get("grant_type", "")
        facts["grantType"] = grant
        if grant != CLIENT_CREDENTIALS:
            raise EntraError(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'.")
        client_id = form.get("client_id", "")
        if not client_id:
            raise errors.missing_parameter("client_id")
        facts["clientId"] = client_id
        resource = resource_from_scope(form.get("scope", ""), self.resources)
        facts["resource"] = resource
        principal = self.directory.principal(client_id)
        if principal is None:
            raise errors.unknown_client(client_id, self.issuer.tenant_id)
        assertion = form.get("client_assertion")
        if assertion is not None:
            # A token file read verbatim ends in a newline; the JWT is what precedes it.
            self._check_assertion(principal, form, assertion.strip(), token_endpoints, facts, fetch)
            acr = ASSERTION_ACR
        elif form.get("client_secret"):
            facts["credentialType"] = "ClientSecret"
            self._check_secret(principal, form["client_secret"])
            acr = SECRET_ACR
        else:
            raise errors.no_credential()
        # Only now is the caller who it claims to be: a failed sign-in's record names the claimed client id alone.
        facts["caller"] = caller_claims(principal, self.issuer.tenant_id)
        token, lifetime = self.issue(principal, resource, acr)
        return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}

    def _check_secret(self, principal: Principal, secret: str) -> None:
        cred = self.directory.match_secret(principal, secret)
        if cred is None:
            raise errors.invalid_secret(principal.client_id)
        if cred.get("end") is not None and cred["end"] <= time.time():
            raise errors.expired_secret(principal.client_id)

    def _check_assertion(
        self,
        principal: Principal,
        form: Mapping[str, str],
        assertion: str,
        token_endpoints: Callable[[], set[str]],
        facts: dict[str, Any],
        fetch: bool,
    ) -> None:
        assertion_type = form.get("client_assertion_type")
        if assertion_type != JWT_BEARER:
            raise errors.missing_parameter("client_assertion_type") if not assertion_type else EntraError(
                400, "invalid_request", 50027, f"The client_assertion_type '{assertion_type}' is not supported; "
                f"use '{JWT_BEARER}'."
            )
        try:
            token = parse(assertion)
        except MalformedToken:
            raise errors.malformed_assertion() from None
        claims = token.claims
        now = time.time()
        if claims.get("iss") == principal.client_id or claims.get("sub") == principal.client_id:
            facts["credentialType"] = "Certificate"
            cert = verify_certificate(principal, token, self.directory, token_endpoints(), now)
            facts["certificateThumbprint"] = cert["thumbprint"]
            return
        facts["credentialType"] = "FederatedIdentityCredential"
        facts["assertion"] = {k: claims.get(k) for k in ("iss", "sub", "aud")}
        fic = verify_federated(principal, token, self.fics.list(principal), self.issuer_keys, now, fetch)
        facts["federatedCredential"] = fic.name
