"""A slice of Azure Resource Manager for identities: Microsoft.ManagedIdentity/userAssignedIdentities and their
federatedIdentityCredentials, plus the instance's token signing key rotation.

Paths, bodies and errors are ARM's, so `strongroom identity ...` can mirror `az
identity ...` and ARM tooling can drive them. Only the instance administrator
may call them (management-token audience).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from strongroom.audit import facts as audit
from strongroom.errors import BadRequest, NotFound, ServiceError
from strongroom.identity.directory import MI_TYPE, Principal
from strongroom.identity.fic import FederatedCredential, validate
from strongroom.server.guards import admin, route, runtime
from strongroom.server.http import JSON, json_body
from strongroom.server.management_api import check_subscription
from strongroom.server.runtime import Runtime

FIC_TYPE = f"{MI_TYPE}/federatedIdentityCredentials"


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a storage write in a thread (it waits for the fsync)."""
    return await run_in_threadpool(fn, *args)


def identity_json(rt: Runtime, p: Principal) -> dict[str, Any]:
    return {
        "id": p.resource_id,
        "name": p.name,
        "type": MI_TYPE,
        "location": p.location,
        "tags": p.tags,
        "properties": {"tenantId": rt.tenant.tenant_id, "principalId": p.object_id, "clientId": p.client_id},
    }


def fic_json(p: Principal, fic: FederatedCredential) -> dict[str, Any]:
    return {
        "id": f"{p.resource_id}/federatedIdentityCredentials/{fic.name}",
        "name": fic.name,
        "type": FIC_TYPE,
        "properties": {"issuer": fic.issuer, "subject": fic.subject, "audiences": fic.audiences},
    }


def _scope(request: Request) -> str:
    p = request.path_params
    base = f"/subscriptions/{p['subscription']}/resourceGroups/{p['rg']}/providers/{MI_TYPE}"
    return f"{base}/{p['name']}" if "name" in p else base


def _admin(request: Request) -> None:
    """The route's guard admitted the instance administrator: name the resource, check the subscription."""
    audit.refine(request.scope, resource_id=_scope(request))
    check_subscription(runtime(request), request.path_params["subscription"])


def _identity(rt: Runtime, request: Request) -> Principal:
    p = request.path_params
    if rt.directory.resource_group(p["rg"]) is None:
        raise NotFound("ResourceGroupNotFound", f"Resource group '{p['rg']}' could not be found.")
    found = rt.directory.managed_identity(p["rg"], p["name"])
    if found is None:
        raise NotFound(
            "ResourceNotFound",
            f"The Resource '{MI_TYPE}/{p['name']}' under resource group '{p['rg']}' was not found. For more details "
            "please go to https://aka.ms/ARMResourceNotFoundFix",
        )
    return found


# -- user-assigned identities ------------------------------------------------------


async def put_identity(request: Request) -> Response:
    rt = runtime(request)
    _admin(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("InvalidRequestContent", "The request content must be a JSON object.")
    tags = body.get("tags")
    if tags is not None and (not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())):
        raise BadRequest("InvalidRequestContent", "The 'tags' property must be an object of strings.")
    p = request.path_params
    identity, created = await _call(
        rt.directory.put_managed_identity, rt.tenant.subscription_id, p["rg"], p["name"], body.get("location") or "local", tags
    )
    return JSON(identity_json(rt, identity), status_code=201 if created else 200)


async def get_identity(request: Request) -> Response:
    rt = runtime(request)
    _admin(request)
    return JSON(identity_json(rt, _identity(rt, request)))


async def delete_identity(request: Request) -> Response:
    rt = runtime(request)
    _admin(request)
    p = request.path_params
    found = rt.directory.managed_identity(p["rg"], p["name"])
    if found is None:
        return Response(status_code=204)  # ARM deletes are idempotent
    fics = rt.identity.fics if rt.identity else None
    extra = fics.removal_writes(found) if fics else {}
    await _call(rt.directory.remove, found, extra)
    return Response(status_code=200)


async def list_identities(request: Request) -> Response:
    rt = runtime(request)
    rg = request.path_params.get("rg")
    scope = f"/subscriptions/{request.path_params['subscription']}" + (f"/resourceGroups/{rg}" if rg else "")
    audit.refine(request.scope, resource_id=scope)
    check_subscription(rt, request.path_params["subscription"])
    if rg is not None and rt.directory.resource_group(rg) is None:
        raise NotFound("ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
    return JSON({"value": [identity_json(rt, p) for p in rt.directory.managed_identities(rg)]})


# -- federated identity credentials -------------------------------------------------


def _fic_not_found(name: str) -> ServiceError:
    return NotFound("NotFound", f"Federated Identity Credential '{name}' was not found.")


async def put_fic(request: Request) -> Response:
    rt = runtime(request)
    assert rt.identity is not None
    _admin(request)
    identity = _identity(rt, request)
    body = await json_body(request)
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        raise BadRequest("BadRequest", "The request body must be an object with 'properties'.")
    fic = validate(request.path_params["fic"], props.get("issuer"), props.get("subject"), props.get("audiences"))
    fic, created = await _call(rt.identity.fics.put, identity, fic)
    return JSON(fic_json(identity, fic), status_code=201 if created else 200)


async def get_fic(request: Request) -> Response:
    rt = runtime(request)
    assert rt.identity is not None
    _admin(request)
    identity = _identity(rt, request)
    fic = rt.identity.fics.get(identity, request.path_params["fic"])
    if fic is None:
        raise _fic_not_found(request.path_params["fic"])
    return JSON(fic_json(identity, fic))


async def delete_fic(request: Request) -> Response:
    rt = runtime(request)
    assert rt.identity is not None
    _admin(request)
    identity = _identity(rt, request)
    fic = rt.identity.fics.get(identity, request.path_params["fic"])
    if fic is None:
        return Response(status_code=204)
    await _call(rt.identity.fics.delete, identity, fic)
    return Response(status_code=200)


async def list_fics(request: Request) -> Response:
    rt = runtime(request)
    assert rt.identity is not None
    _admin(request)
    identity = _identity(rt, request)
    return JSON({"value": [fic_json(identity, f) for f in rt.identity.fics.list(identity)]})


# -- the instance's token signing key ------------------------------------------------


async def rotate_signing_key(request: Request) -> Response:
    """A new key signs from now on; the previous one stays published (and valid) until its tokens expire."""
    rt = runtime(request)
    previous = rt.signing_keys.current.kid
    key = await run_in_threadpool(rt.signing_keys.rotate)
    return JSON(
        {
            "kid": key.kid,
            "previousKid": previous,
            "publishedKids": [k["kid"] for k in rt.signing_keys.jwks()["keys"]],
            "jwksUri": f"{rt.settings.authority}/{rt.tenant.tenant_id}/discovery/v2.0/keys",
        }
    )


_RG_MI = "/subscriptions/{subscription}/resourceGroups/{rg}/providers/" + MI_TYPE
_SUB_MI = "/subscriptions/{subscription}/providers/" + MI_TYPE

routes = [
    route(_RG_MI + "/{name}", put_identity, ["PUT"], admin("UserAssignedIdentityPut")),
    route(_RG_MI + "/{name}", get_identity, ["GET"], admin("UserAssignedIdentityGet")),
    route(_RG_MI + "/{name}", delete_identity, ["DELETE"], admin("UserAssignedIdentityDelete")),
    route(_RG_MI, list_identities, ["GET"], admin("UserAssignedIdentityList")),
    route(_SUB_MI, list_identities, ["GET"], admin("UserAssignedIdentityList")),
    route(_RG_MI + "/{name}/federatedIdentityCredentials", list_fics, ["GET"], admin("FederatedIdentityCredentialList")),
    route(_RG_MI + "/{name}/federatedIdentityCredentials/{fic}", put_fic, ["PUT"], admin("FederatedIdentityCredentialPut")),
    route(_RG_MI + "/{name}/federatedIdentityCredentials/{fic}", get_fic, ["GET"], admin("FederatedIdentityCredentialGet")),
    route(_RG_MI + "/{name}/federatedIdentityCredentials/{fic}", delete_fic, ["DELETE"], admin("FederatedIdentityCredentialDelete")),
    route("/strongroom/identity/signing-keys/rotate", rotate_signing_key, ["POST"], admin("SigningKeyRotate")),
]
