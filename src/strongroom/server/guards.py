"""One way in: every HTTP route declares who may call it, what it records and how it is throttled.

A route is declared with `route(path, handler, methods, guard)`, next to the others in
its API module, where the guard is one of

- `public(operation=None)`: anybody (discovery, JWKS, health, the token endpoints, whose
  credential is the request body); audited only when an operation is named;
- `vault(operation, throttle)`: a Key Vault bearer token (vault audience); a missing or
  bad one is the data plane's 401 with its Bearer challenge, counted against the source
  address (`throttle.py`) and folded into one audit record per source and reason;
- `management(operation)`: an Azure Resource Manager bearer token (ARM's 401);
- `graph(operation)`: a Microsoft Graph bearer token;
- `admin(operation, audience=MANAGEMENT|GRAPH, delegated=None)`: a token of that audience
  held by the instance administrator (admin.json's principal), or by a principal granted
  the `delegated` action at the subscription; anyone else gets ARM's 403.

`GuardedRoute` runs the declaration before the handler, on every plane (the data plane's
`RouteTable` and Starlette's router call the same endpoint): the audit operation is noted
first (so a refused request is recorded too, and a route cannot forget its record), then
the bearer token is read by the one parser (`bearer_token`) and verified for the declared
audience, then the caller's quota is taken (the vault classes). Handlers read the verified
caller with `caller(request)` and refine the audit facts (`strongroom.audit.facts`) with
what only they know (a more precise resource id, the authorization decision).

A non-public route without an operation cannot be declared, and `tests/server/test_route_guards.py`
walks the app's route table and fails on any route that is not a `GuardedRoute`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from strongroom.audit import facts as audit
from strongroom.authz import Caller
from strongroom.errors import Forbidden, Throttled
from strongroom.errors import Unauthenticated as _Unauthenticated
from strongroom.identity.tokens import TokenError, TokenVerifier
from strongroom.server.failure_audit import failure_audit
from strongroom.server.runtime import Runtime

Handler = Callable[[Request], Awaitable[Response]]

# Who may call a route.
PUBLIC = "public"
VAULT = "vault"
MANAGEMENT = "management"
GRAPH = "graph"
ADMIN = "admin"

# Throttle classes.
UNTHROTTLED = "none"  # public facts and the control plane's bearer routes: no per-caller window
SIGN_IN = "sign-in"  # token endpoints: failed sign-ins per source and client id (identity_api enforces: the form names the client)
VAULT_READ = "vault-read"  # Key Vault's "all other transactions" per vault and caller
VAULT_CREATE = "vault-create"  # Key Vault's "creates" per vault and caller (SecretSet, key create/import, certificate import)

CLAIMS_KEY = "strongroom.claims"


@dataclass(frozen=True, slots=True)
class Guard:
    who: str
    operation: str | None
    throttle: str = UNTHROTTLED
    audience: str | None = None  # ADMIN: the token audience (MANAGEMENT or GRAPH)
    delegated: str | None = None  # ADMIN: an action that, granted at the subscription, admits a non-admin

    def __post_init__(self) -> None:
        if self.who != PUBLIC and not self.operation:
            raise ValueError("a route that takes a bearer token records an audit operation")
        if self.throttle in (VAULT_READ, VAULT_CREATE) and self.who != VAULT:
            raise ValueError("vault throttle classes need a vault bearer (the quota is the caller's)")


def public(operation: str | None = None, throttle: str = UNTHROTTLED) -> Guard:
    return Guard(PUBLIC, operation, throttle)


def vault(operation: str, throttle: str = VAULT_READ) -> Guard:
    return Guard(VAULT, operation, throttle)


def management(operation: str) -> Guard:
    return Guard(MANAGEMENT, operation)


def graph(operation: str) -> Guard:
    return Guard(GRAPH, operation)


def admin(operation: str, audience: str = MANAGEMENT, delegated: str | None = None) -> Guard:
    return Guard(ADMIN, operation, UNTHROTTLED, audience, delegated)


class GuardedRoute(Route):
    """A Starlette route whose endpoint enforces `guard` before calling `handler`.

    Errors are rendered in the plane's shape by server/errors.py, like any handler's.
    """

    def __init__(self, path: str, handler: Handler, methods: Sequence[str], guard: Guard) -> None:
        async def guarded(request: Request) -> Response:
            enforce(guard, request)
            return await handler(request)

        guarded.__name__ = guarded.__qualname__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        super().__init__(path, guarded, methods=list(methods))
        self.guard = guard
        self.handler = handler


def route(path: str, handler: Handler, methods: Sequence[str], guard: Guard) -> GuardedRoute:
    return GuardedRoute(path, handler, methods, guard)


def runtime(request: Request) -> Runtime:
    """The process's Runtime, as every handler reaches it."""
    return request.app.state.runtime


# -- the one bearer parser ------------------------------------------------------------------

def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if token and scheme.lower() == "bearer" else None


def verified_claims(request: Request, verifier: TokenVerifier) -> dict[str, Any]:
    """The control plane's bearer check: verified claims, or a 401 (server/errors.py adds the plane's challenge)."""
    token = bearer_token(request)
    if token is None:
        raise _Unauthenticated("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
    try:
        return verifier.verify(token)
    except TokenError as exc:
        raise _Unauthenticated("InvalidAuthenticationToken", f"The access token is invalid. {exc}") from None


class Unauthenticated(_Unauthenticated):
    """The data plane's 401; server/errors.py adds Key Vault's Bearer challenge."""

    def __init__(self, message: str) -> None:
        super().__init__("Unauthorized", message)


def _unauthenticated(rt: Runtime, request: Request, message: str) -> NoReturn:
    """Refuse a data-plane request without a valid token: 401, or 429 once its source has failed too often.

    Its audit record may be folded into one per source and reason (server/failure_audit.py).
    """
    client = request.scope.get("client")
    source = client[0] if client else ""
    aggregate = failure_audit(rt.audit)
    if rt.throttle is not None:
        try:
            rt.throttle.check_source(source)
        except Throttled:
            aggregate.note(request.scope, source, "too many failed authentications", 429)
            raise
    aggregate.note(request.scope, source, message, 401)
    raise Unauthenticated(message)


def vault_claims(rt: Runtime, request: Request) -> dict[str, Any]:
    token = bearer_token(request)
    if token is None:
        _unauthenticated(rt, request, "AKV10000: Request is missing a Bearer or PoP token.")
    try:
        return rt.vault_tokens.verify(token)
    except TokenError as exc:
        _unauthenticated(rt, request, str(exc))


# -- enforcement ---------------------------------------------------------------------------

def _audit_begin(guard: Guard, request: Request) -> None:
    """The declared operation, with the resource the request names (handlers may refine it)."""
    scope = request.scope
    assert guard.operation is not None
    found = scope.get("strongroom.vault")
    if found is None:
        audit.begin(scope, guard.operation, resource_id=scope["path"])
        return
    # The data plane: the vault, and the object's URL (from the scope: a URL object costs ~3% of a hot read).
    host = request.headers.get("host") or request.url.netloc
    object_url = f"{scope['scheme']}://{host}/"
    params = scope.get("path_params") or {}
    name = params.get("name")
    if name:
        version = params.get("version")
        collection = scope["path"].split("/", 2)[1]
        object_url = f"{object_url}{collection}/{name}" + (f"/{version}" if version else "")
    audit.begin(scope, guard.operation, resource_id=found.resource_id, object_url=object_url, vault=found.name)


def _require_admin(rt: Runtime, request: Request, guard: Guard, caller: Caller) -> None:
    if caller.object_id == rt.tenant.admin_object_id:
        return
    subscription = f"/subscriptions/{rt.tenant.subscription_id}"
    if guard.delegated:
        # A permission of its own, held through a role assignment at the subscription (e.g. Strongroom Node Agent).
        decision = rt.authorizer.may(caller, guard.delegated, subscription)
        if decision.allowed:
            audit.decision(request.scope, allowed=True, assignment_id=decision.assignment_id)
            return
    raise Forbidden(
        "AuthorizationFailed",
        f"The client '{caller.app_id}' with object id '{caller.object_id}' does not have authorization to perform "
        f"'{guard.operation}' over scope '{request.scope['path']}' or the scope is invalid. Only the instance "
        "administrator may call it on this instance.",
    )


def enforce(guard: Guard, request: Request) -> None:
    """Run a route's declaration: audit operation, bearer token and audience, administrator, quota."""
    if guard.operation is not None:
        _audit_begin(guard, request)
    who = guard.who
    if who == PUBLIC:
        return
    rt = runtime(request)
    if who == VAULT:
        claims = vault_claims(rt, request)
    else:
        audience = guard.audience or who
        if audience == GRAPH:
            assert rt.identity is not None
            verifier = rt.identity.graph_tokens
        else:
            verifier = rt.management_tokens
        claims = verified_claims(request, verifier)
    scope = request.scope
    scope[CLAIMS_KEY] = claims
    audit.caller(scope, claims)
    if who == ADMIN:
        _require_admin(rt, request, guard, Caller.from_claims(claims))
    elif guard.throttle != UNTHROTTLED and rt.throttle is not None:
        # Only now: requests without a valid token never use up a vault's quota.
        rt.throttle.admit(scope["strongroom.vault"], guard.throttle == VAULT_CREATE, claims.get("oid", ""))


def claims(request: Request) -> dict[str, Any]:
    """The verified token claims of a guarded route's caller."""
    try:
        return request.scope[CLAIMS_KEY]
    except KeyError:  # a handler that needs a caller on a route declared public: fail closed, loudly
        raise RuntimeError(f"{request.scope.get('path')}: the route's guard authenticates nobody") from None


def caller(request: Request) -> Caller:
    return Caller.from_claims(claims(request))
