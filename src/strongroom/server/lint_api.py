"""`POST /strongroom/lint/value-matches` on a vault's host: which sent digests equal a current secret value.

Called by `strongroom lint --server` (SR403). The rules of the exchange and why it leaks
nothing are in `keyvault/value_match.py`; this module is the HTTP side: a vault bearer
token, a bounded body, per-secret authorization (getSecret) and throttling weighted by
the work done. Any authenticated caller may ask; the answer only ever names secrets the
caller may read, so a caller without read rights gets `{"value": []}` whatever it sends.
The audit record (operation SecretValueMatch) says who asked, never a digest or a value.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from strongroom.audit import facts as audit
from strongroom.authz import Caller
from strongroom.authz.actions import SECRET_ACTIONS, SECRET_POLICY_PERMISSIONS
from strongroom.errors import BadRequest
from strongroom.keyvault import value_match
from strongroom.keyvault.vaults import Vault
from strongroom.server import guards
from strongroom.server.guards import route
from strongroom.server.http import JSON, json_body
from strongroom.server.vault_api import API_VERSIONS, LATEST_API_VERSION

OPERATION = "SecretValueMatch"
PATH = "/strongroom/lint/value-matches"
SECRETS_PER_THROTTLE_UNIT = 25  # one read of quota per page of secrets compared


async def value_matches(request: Request) -> Response:
    rt = guards.runtime(request)
    vault: Vault = request.scope["strongroom.vault"]
    claims = guards.claims(request)  # the route's guard recorded the operation and took one read of quota
    if request.query_params.get("api-version", "") not in API_VERSIONS:
        raise BadRequest("BadParameter", f"The specified version is not recognized. "
                                                 f"Consider using the latest supported version ({LATEST_API_VERSION}).")
    body = await json_body(request, max_bytes=value_match.MAX_BODY_BYTES, optional=True)
    salt, digests = value_match.parse_request(body)
    caller = Caller.from_claims(claims)
    action, permission = SECRET_ACTIONS["SecretGet"], SECRET_POLICY_PERMISSIONS["SecretGet"]
    seen = 0

    def may_read(name: str) -> bool:
        nonlocal seen
        seen += 1
        if rt.throttle is not None and seen % SECRETS_PER_THROTTLE_UNIT == 0:
            rt.throttle.admit(vault, False, claims.get("oid", ""))  # a big vault costs its quota, not free CPU
        resource_id = f"{vault.resource_id}/secrets/{name}"
        return rt.authorizer.check(caller, vault, action, resource_id, permission).allowed

    found = value_match.matches(rt.secrets.current_values(vault), may_read, salt, digests)
    # "authorized per secret": the request itself needs no right beyond a valid token
    audit.decision(request.scope, allowed=True, assignment_id=None, rbac=vault.rbac_authorization)
    base = f"{request.scope['scheme']}://{request.headers.get('host', '')}"
    return JSON({"value": [{"digest": value_match.b64(d), "name": name, "id": f"{base}/secrets/{name}"}
                           for name, d in found]})


routes = [route(PATH, value_matches, ["POST"], guards.vault(OPERATION))]
