"""ARM's subscription-level reads and resource groups, as the real `az` CLI calls them.

`GET /subscriptions`, `/subscriptions/{id}` and `/tenants` (az login), resource
groups (`az group create|show|exists|list|delete`, and the location lookup of
`az keyvault create -g` / `az identity create -g`), and the generic resource
listing `GET /subscriptions/{sub}/resources` (`az keyvault list`, `az keyvault
show --name` without `-g`). Rules and shapes live in `strongroom.resources`.

Every route takes a management-audience bearer token (401 otherwise) and is
audited. Who sees what: the subscription (and tenant) to a principal holding any
role assignment in it, as Azure lists subscriptions; a group or resource to whoever
may read it through RBAC (`…/read`); writing or deleting a group needs
`Microsoft.Resources/subscriptions/resourceGroups/write|delete` at its scope.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from strongroom.audit import facts as audit
from strongroom.authz import Caller, control
from strongroom.errors import BadRequest, NotFound, ServiceError
from strongroom.resources import (
    READ_ACTION,
    RG_DELETE,
    RG_READ,
    RG_WRITE,
    FilterError,
    GenericResource,
    ResourceManager,
    check_location,
    check_tags,
    parse_filter,
    resource_group_id,
    resource_group_json,
    subscription_json,
    tenant_json,
)
from strongroom.server import guards
from strongroom.server.guards import management, route, runtime
from strongroom.server.http import JSON, json_object
from strongroom.server.runtime import Runtime

MAX_BODY = 64 * 1024  # a resource group is a location and at most 50 tags


def manager(rt: Runtime) -> ResourceManager:
    return ResourceManager(rt.tenant, rt.directory, rt.vaults)


def _require_api_version(request: Request) -> None:
    if not request.query_params.get("api-version"):
        raise BadRequest(
            "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests."
        )


def _begin(request: Request, resource_id: str) -> Caller:
    """The caller the route's guard verified, the resource id for its audit record, then the api-version."""
    audit.refine(request.scope, resource_id=resource_id)
    _require_api_version(request)
    return guards.caller(request)


def _our_subscription(rt: Runtime, caller: Caller, subscription: str) -> None:
    control.require_subscription(rt.authorizer, caller, subscription, rt.tenant.subscription_id)


def _require(request: Request, caller: Caller, action: str, scope: str) -> None:
    decision = runtime(request).authorizer.may(caller, action, scope)
    audit.decision(request.scope, allowed=decision.allowed, assignment_id=decision.assignment_id)
    if not decision.allowed:
        raise control.authorization_failed(caller, action, scope)


# -- subscriptions and tenants -------------------------------------------------------


async def list_subscriptions(request: Request) -> Response:
    rt = runtime(request)
    caller = _begin(request, "/subscriptions")
    visible = [subscription_json(rt.tenant)] if control.sees_subscription(rt.authorizer, caller) else []
    return JSON({"value": visible, "count": {"type": "Total", "value": len(visible)}})


async def get_subscription(request: Request) -> Response:
    rt = runtime(request)
    sub = request.path_params["subscription"]
    caller = _begin(request, f"/subscriptions/{sub}")
    _our_subscription(rt, caller, sub)
    return JSON(subscription_json(rt.tenant))


async def list_tenants(request: Request) -> Response:
    rt = runtime(request)
    _begin(request, "/tenants")  # every token of this instance is a token of its one tenant
    return JSON({"value": [tenant_json(rt.tenant)]})


# -- resource groups ------------------------------------------------------------------


def _group_scope(request: Request) -> str:
    p = request.path_params
    return f"/subscriptions/{p['subscription']}/resourceGroups/{p['rg']}"


def _group_not_found(name: str) -> ServiceError:
    return NotFound("ResourceGroupNotFound", f"Resource group '{name}' could not be found.")


async def put_group(request: Request) -> Response:
    rt = runtime(request)
    scope = _group_scope(request)
    caller = _begin(request, scope)
    _our_subscription(rt, caller, request.path_params["subscription"])
    body = await json_object(request, max_bytes=MAX_BODY, optional=True)
    location = check_location(body.get("location"))
    tags = check_tags(body.get("tags"))
    _require(request, caller, RG_WRITE, scope)
    rec, created = await run_in_threadpool(rt.directory.put_resource_group, request.path_params["rg"], location, tags)
    return JSON(resource_group_json(rt.tenant, rec), status_code=201 if created else 200)


def _readable_group(request: Request, caller: Caller) -> dict[str, Any]:
    rt = runtime(request)
    _our_subscription(rt, caller, request.path_params["subscription"])
    name = request.path_params["rg"]
    _require(request, caller, RG_READ, _group_scope(request))
    rec = rt.directory.resource_group(name)
    if rec is None:
        raise _group_not_found(name)
    return rec


async def get_group(request: Request) -> Response:
    rt = runtime(request)
    caller = _begin(request, _group_scope(request))
    return JSON(resource_group_json(rt.tenant, _readable_group(request, caller)))


async def head_group(request: Request) -> Response:
    """`az group exists`: 204 if the group exists, 404 if not (no body either way)."""
    caller = _begin(request, _group_scope(request))
    try:
        _readable_group(request, caller)
    except ServiceError as exc:
        if exc.status == 404:
            return Response(status_code=404)
        raise
    return Response(status_code=204)


async def delete_group(request: Request) -> Response:
    rt = runtime(request)
    scope = _group_scope(request)
    caller = _begin(request, scope)
    _our_subscription(rt, caller, request.path_params["subscription"])
    _require(request, caller, RG_DELETE, scope)
    found = await run_in_threadpool(manager(rt).delete_group, request.path_params["rg"])
    return Response(status_code=200 if found else 204)


async def list_groups(request: Request) -> Response:
    rt = runtime(request)
    sub = request.path_params["subscription"]
    caller = _begin(request, f"/subscriptions/{sub}/resourceGroups")
    _our_subscription(rt, caller, sub)
    visible = [
        resource_group_json(rt.tenant, g) for g in manager(rt).groups()
        if rt.authorizer.may(caller, RG_READ, resource_group_id(rt.tenant, g["name"])).allowed
    ]
    return JSON({"value": visible})


# -- generic resources ------------------------------------------------------------------


async def list_resources(request: Request) -> Response:
    rt = runtime(request)
    p = request.path_params
    rg = p.get("rg")
    scope = f"/subscriptions/{p['subscription']}" + (f"/resourceGroups/{rg}" if rg else "")
    caller = _begin(request, scope + "/resources")
    _our_subscription(rt, caller, p["subscription"])
    try:
        filters = parse_filter(request.query_params.get("$filter"))
    except FilterError as exc:
        raise BadRequest("InvalidFilterInQueryString", str(exc)) from None
    if rg is not None:
        _require(request, caller, RG_READ, scope)
        if rt.directory.resource_group(rg) is None:
            raise _group_not_found(rg)

    def may_read(r: GenericResource) -> bool:
        return rt.authorizer.may(caller, READ_ACTION[r.type], r.id).allowed

    found = manager(rt).listing(filters, may_read, rg)
    top = request.query_params.get("$top")
    if top:
        if not top.isdigit() or not 1 <= int(top) <= 1000:
            raise BadRequest("InvalidTopInQueryString", "The $top query parameter must be an integer from 1 to 1000.")
        found = found[: int(top)]
    return JSON({"value": [r.to_arm() for r in found]})


async def list_managed_hsms(request: Request) -> Response:
    """Managed HSMs are not served: the listings `az keyvault list|list-deleted` also read are empty, not 404."""
    rt = runtime(request)
    p = request.path_params
    caller = _begin(request, request.url.path)
    _our_subscription(rt, caller, p["subscription"])
    return JSON({"value": []})


_RG = "/subscriptions/{subscription}/resourcegroups/{rg}"
_RG_CAMEL = "/subscriptions/{subscription}/resourceGroups/{rg}"

routes = [
    route("/subscriptions", list_subscriptions, ["GET"], management("SubscriptionList")),
    route("/subscriptions/{subscription}", get_subscription, ["GET"], management("SubscriptionGet")),
    route("/tenants", list_tenants, ["GET"], management("TenantList")),
    route("/subscriptions/{subscription}/resources", list_resources, ["GET"], management("ResourceList")),
]
# ARM's paths are case-insensitive; clients send both spellings of the groups segment.
for _path in (_RG, _RG_CAMEL):
    routes += [
        # HEAD before GET, which Starlette also lets answer HEAD.
        route(_path, head_group, ["HEAD"], management("ResourceGroupCheckExistence")),
        route(_path, put_group, ["PUT"], management("ResourceGroupWrite")),
        route(_path, get_group, ["GET"], management("ResourceGroupRead")),
        route(_path, delete_group, ["DELETE"], management("ResourceGroupDelete")),
        route(_path + "/resources", list_resources, ["GET"], management("ResourceList")),
    ]
_HSM = management("ManagedHsmList")
routes += [
    route("/subscriptions/{subscription}/providers/Microsoft.KeyVault/managedHSMs", list_managed_hsms, ["GET"], _HSM),
    route("/subscriptions/{subscription}/providers/Microsoft.KeyVault/deletedManagedHSMs", list_managed_hsms, ["GET"], _HSM),
    route(_RG_CAMEL + "/providers/Microsoft.KeyVault/managedHSMs", list_managed_hsms, ["GET"], _HSM),
    route("/subscriptions/{subscription}/resourcegroups", list_groups, ["GET"], management("ResourceGroupList")),
    route("/subscriptions/{subscription}/resourceGroups", list_groups, ["GET"], management("ResourceGroupList")),
]
