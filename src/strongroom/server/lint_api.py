"""`POST /strongroom/lint/value-matches` on a vault's host: which sent digests equal a current secret value.

Called by `strongroom lint --server` (SR403). The rules of the exchange and why it leaks
nothing are in `keyvault/value_match.py`; this module is the HTTP side: a vault bearer
token, a bounded body, per-secret authorization (getSecret) and throttling weighted by
the work done. Any authenticated caller may ask; the answer only ever names secrets the
caller may read, so a caller without read rights gets `{"value": []}` whatever it sends.
The audit record (operation SecretValueMatch) says who asked, never a digest or a value.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from strongroom.audit import facts as audit
from strongroom.authz import Caller
from strongroom.authz.actions import SECRET_ACTIONS, SECRET_POLICY_PERMISSIONS
from strongroom.identity.tokens import TokenError
from strongroom.keyvault import value_match
from strongroom.errors import BadRequest, TooLarge
from strongroom.keyvault.vaults import Vault
from strongroom.server.http import JSON
from strongroom.server.runtime import Runtime
from strongroom.server.vault_api import API_VERSIONS, LATEST_API_VERSION, Unauthenticated

OPERATION = "SecretValueMatch"
PATH = "/strongroom/lint/value-matches"
SECRETS_PER_THROTTLE_UNIT = 25  # one read of quota per page of secrets compared


async def _bounded_body(request: Request) -> bytes:
    size = int(request.headers.get("content-length") or 0)
    if size > value_match.MAX_BODY_BYTES:
        raise TooLarge("RequestTooLarge", f"The request body exceeds {value_match.MAX_BODY_BYTES} bytes.")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > value_match.MAX_BODY_BYTES:
            raise TooLarge("RequestTooLarge", f"The request body exceeds {value_match.MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def value_matches(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    vault: Vault = request.scope["strongroom.vault"]
    audit.begin(request.scope, OPERATION, resource_id=vault.resource_id, vault=vault.name)
    if rt.throttle is not None:
        rt.throttle.check(vault, OPERATION)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("AKV10000: Request is missing a Bearer or PoP token.")
    try:
        claims = rt.vault_tokens.verify(token.strip())
    except TokenError as exc:
        raise Unauthenticated(str(exc)) from None
    audit.caller(request.scope, claims)
    if request.query_params.get("api-version", "") not in API_VERSIONS:
        raise BadRequest("BadParameter", f"The specified version is not recognized. "
                                                 f"Consider using the latest supported version ({LATEST_API_VERSION}).")
    raw = await _bounded_body(request)
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("BadParameter", "The request body is not valid JSON.") from None
    salt, digests = value_match.parse_request(body)
    caller = Caller.from_claims(claims)
    action, permission = SECRET_ACTIONS["SecretGet"], SECRET_POLICY_PERMISSIONS["SecretGet"]
    seen = 0

    def may_read(name: str) -> bool:
        nonlocal seen
        seen += 1
        if rt.throttle is not None and seen % SECRETS_PER_THROTTLE_UNIT == 0:
            rt.throttle.check(vault, OPERATION)  # a big vault costs its quota, not free CPU
        resource_id = f"{vault.resource_id}/secrets/{name}"
        return rt.authorizer.check(caller, vault, action, resource_id, permission).allowed

    found = value_match.matches(rt.secrets.current_values(vault), may_read, salt, digests)
    # "authorized per secret": the request itself needs no right beyond a valid token
    audit.decision(request.scope, allowed=True, assignment_id=None, rbac=vault.rbac_authorization)
    base = f"{request.scope['scheme']}://{request.headers.get('host', '')}"
    return JSON({"value": [{"digest": value_match.b64(d), "name": name, "id": f"{base}/secrets/{name}"}
                           for name, d in found]})


routes = [Route(PATH, value_matches, methods=["POST"])]
