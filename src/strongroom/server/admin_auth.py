"""Authentication of the instance administrator for the identity management endpoints, and their audit facts.

Managed identities, app registrations, federated credentials, signing keys and
the local cluster's service accounts are managed by the instance administrator
only (the principal of admin.json). Every such request is audited: the
operation is noted in `request.scope["strongroom.audit"]` before the caller is
authenticated, so refused requests are recorded too.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from strongroom.audit import facts as audit
from strongroom.authz import Caller
from strongroom.identity.tokens import TokenError, TokenVerifier
from strongroom.errors import Forbidden, NotFound, Unauthenticated
from strongroom.server.runtime import Runtime

AUDIT_KEY = "strongroom.audit"
CALLER_CLAIMS = ("oid", "appid", "tid", "idtyp", "xms_mirid")


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def audit_facts(request: Request, **facts: Any) -> dict[str, Any]:
    """Add facts to the request's audit record (see the audit contract: operationName, resourceId, caller, ...)."""
    found = request.scope.get(AUDIT_KEY)
    if found is None:
        found = request.scope[AUDIT_KEY] = {}
    found.update(facts)
    return found


def caller_subset(claims: dict[str, Any]) -> dict[str, str]:
    return {k: claims[k] for k in CALLER_CLAIMS if isinstance(claims.get(k), str)}


def bearer_claims(request: Request, verifier: TokenVerifier) -> dict[str, Any]:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
    try:
        return verifier.verify(token.strip())
    except TokenError as exc:
        raise Unauthenticated("InvalidAuthenticationToken", f"The access token is invalid. {exc}") from None


def require_admin(
    request: Request,
    operation: str,
    action: str,
    scope: str,
    *,
    verifier: TokenVerifier | None = None,
    resource_id: str | None = None,
    delegated_action: str | None = None,
) -> Caller:
    """The verified caller, if it is the instance administrator; 401/403 in ARM's words otherwise."""
    rt = runtime(request)
    audit_facts(request, operationName=operation, resourceId=resource_id)
    claims = bearer_claims(request, verifier or rt.management_tokens)
    audit_facts(request, caller=caller_subset(claims))
    caller = Caller.from_claims(claims)
    if delegated_action and caller.object_id != rt.tenant.admin_object_id:
        # A permission of its own, held through a role assignment at the subscription (e.g. Strongroom Node Agent).
        decision = rt.authorizer.may(caller, delegated_action, f"/subscriptions/{rt.tenant.subscription_id}")
        if decision.allowed:
            audit.decision(request.scope, allowed=True, assignment_id=decision.assignment_id)
            return caller
        action, scope = delegated_action, f"/subscriptions/{rt.tenant.subscription_id}"
    if caller.object_id != rt.tenant.admin_object_id:
        raise Forbidden(
            "AuthorizationFailed",
            f"The client '{caller.app_id}' with object id '{caller.object_id}' does not have authorization to perform "
            f"action '{action}' over scope '{scope}' or the scope is invalid. Only the instance administrator manages "
            "identities on this instance.",
        )
    return caller


def check_subscription(rt: Runtime, subscription: str) -> None:
    if subscription.lower() != rt.tenant.subscription_id:
        raise NotFound("SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")
