"""A slice of ARM's Microsoft.Authorization: role assignments and role definitions.

Paths and JSON follow api-version 2022-04-01: `{scope}/providers/Microsoft.Authorization/
roleAssignments/{guid}` and `…/roleDefinitions/{guid}`, where `{scope}` is a
subscription, resource group, vault or secret id. Errors use ARM's shape and codes.
Two Strongroom additions live here too: the secret access review
(`{secret id}/providers/Strongroom.Authorization/accessReview`) and a principal
lookup for the CLI (`/strongroom/directory/principals/{id}`), which stands in
for the Microsoft Graph lookups az makes.

Who may do what, as in Azure: writing or deleting an assignment needs
`Microsoft.Authorization/roleAssignments/write|delete` at its scope (the instance
admin, or e.g. Key Vault Data Access Administrator within its condition);
reading assignments needs `roleAssignments/read` (Key Vault Administrator and
Reader have it via `Microsoft.Authorization/*/read`); role definitions are
readable by every authenticated principal.
"""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from strongroom.audit import facts as audit
from strongroom.authz import Caller, assignments, control, definitions
from strongroom.authz.assignments import GUID
from strongroom.authz.conditions import assignment_attributes
from strongroom.authz.review import PrincipalInfo, review_secret
from strongroom.authz.roles import RoleDefinition, scopes_to_authorize
from strongroom.authz.scopes import Scope, ancestors_or_self, contains, parse_scope
from strongroom.authz.store import AuthzStore, RoleAssignment
from strongroom.errors import BadRequest, Conflict, NotFound, ServiceError
from strongroom.keyvault.vaults import Vault
from strongroom.server import guards
from strongroom.server.guards import management, route, runtime
from strongroom.server.http import JSON, json_body
from strongroom.server.runtime import Runtime

AUTHZ = "providers/Microsoft.Authorization"
_FILTER_PRINCIPAL = re.compile(r"^(?:principalId\s+eq\s+'([^']+)'|assignedTo\('([^']+)'\))\Z", re.IGNORECASE)
_FILTER_ROLE_NAME = re.compile(r"^roleName\s+eq\s+'(.*)'\Z", re.IGNORECASE)
_FILTER_ROLE_TYPE = re.compile(r"^type\s+eq\s+'(BuiltInRole|CustomRole)'\Z", re.IGNORECASE)


def store(rt: Runtime) -> AuthzStore:
    assert rt.authorizer.store is not None
    return rt.authorizer.store


def _scope_of(request: Request) -> str:
    return "/" + request.path_params["scope"] if "scope" in request.path_params else ""


def _require_api_version(request: Request) -> None:
    if not request.query_params.get("api-version"):
        raise BadRequest(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )


def _check_scope(rt: Runtime, scope: str, *, must_exist: bool = True) -> Scope:
    """Parse and check a scope: our subscription, and for vault/secret scopes an existing vault."""
    s = parse_scope(scope)
    if s.subscription.lower() != rt.tenant.subscription_id.lower():
        raise NotFound("SubscriptionNotFound", f"The subscription '{s.subscription}' could not be found.")
    if s.vault and must_exist:
        vault = rt.vaults.get(s.vault)
        if vault is None or vault.resource_group.lower() != (s.resource_group or "").lower():
            raise NotFound(
                "ResourceNotFound",
                f"The Resource 'Microsoft.KeyVault/vaults/{s.vault}' under resource group '{s.resource_group}' was not found.",
            )
    return s



def _require(request: Request, caller: Caller, action: str, scope: str, target: str | None = None, attributes=None) -> None:
    """Refuse unless `caller` may do `action` at `scope`; the deciding assignment goes to the audit record."""
    decision = runtime(request).authorizer.may(caller, action, scope, attributes)
    audit.decision(request.scope, allowed=decision.allowed, assignment_id=decision.assignment_id)
    if not decision.allowed:
        raise control.authorization_failed(caller, action, target or scope)


# -- role assignments ---------------------------------------------------------------


def _assignment_in(rt: Runtime, scope: str, name: str) -> RoleAssignment | None:
    a = store(rt).snapshot().assignments.get(name.lower())
    return a if a is not None and a.scope.lower().rstrip("/") == scope.lower().rstrip("/") else None


async def put_assignment(request: Request) -> Response:
    """Parse and render; the rules are authz/assignments.py's."""
    rt = runtime(request)
    scope, name = _scope_of(request), request.path_params["name"]
    audit.refine(request.scope, resource_id=f"{scope}/{AUTHZ}/roleAssignments/{name}")
    caller = guards.caller(request)
    _require_api_version(request)
    target = _check_scope(rt, scope)
    assignments.check_name(name)
    body = await json_body(request)
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        raise BadRequest("InvalidRequestContent", "The request content must be an object with 'properties'.")
    role_id, principal_ref = props.get("roleDefinitionId"), props.get("principalId")
    if not isinstance(role_id, str) or not role_id or not isinstance(principal_ref, str) or not principal_ref:
        raise BadRequest("InvalidRequestContent", "'properties.roleDefinitionId' and 'properties.principalId' are required.")
    req = assignments.AssignmentRequest(
        name, target.id, role_id, principal_ref, props.get("principalType"), props.get("description"),
        props.get("condition"), props.get("conditionVersion"),
    )
    found = rt.directory.find(principal_ref)
    principal = assignments.Principal(found.object_id, found.kind) if found is not None else None
    snap = store(rt).snapshot()
    checked = assignments.check(snap, req, principal, subscription_id=rt.tenant.subscription_id,
                                tenant_id=rt.tenant.tenant_id, display_scope=scope)
    _require(request, caller, assignments.WRITE, target.id, f"{scope}/{AUTHZ}/roleAssignments/{name}", checked.attributes)
    assignment, created = assignments.decide(snap, checked, caller.object_id)
    await run_in_threadpool(store(rt).put_assignment, assignment)
    if not created:
        audit.operation(request.scope, "RoleAssignmentUpdate")
    return JSON(assignment.to_arm(rt.tenant.subscription_id), status_code=201 if created else 200)


async def get_assignment(request: Request) -> Response:
    rt = runtime(request)
    scope, name = _scope_of(request), request.path_params["name"]
    audit.refine(request.scope, resource_id=f"{scope}/{AUTHZ}/roleAssignments/{name}")
    caller = guards.caller(request)
    _require_api_version(request)
    target = _check_scope(rt, scope, must_exist=False)
    _require(request, caller, "Microsoft.Authorization/roleAssignments/read", target.id)
    found = _assignment_in(rt, target.id, name)
    if found is None:
        raise NotFound("RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")
    return JSON(found.to_arm(rt.tenant.subscription_id))


async def delete_assignment(request: Request) -> Response:
    rt = runtime(request)
    scope, name = _scope_of(request), request.path_params["name"]
    audit.refine(request.scope, resource_id=f"{scope}/{AUTHZ}/roleAssignments/{name}")
    caller = guards.caller(request)
    _require_api_version(request)
    target = _check_scope(rt, scope, must_exist=False)
    found = _assignment_in(rt, target.id, name)
    if found is None:
        _require(request, caller, "Microsoft.Authorization/roleAssignments/read", target.id)
        return Response(status_code=204)
    attrs = assignment_attributes("resource", found.role_definition_guid, found.principal_id, found.principal_type)
    _require(request, caller, "Microsoft.Authorization/roleAssignments/delete", target.id, found.id, attrs)
    await run_in_threadpool(store(rt).delete_assignment, found)
    return JSON(found.to_arm(rt.tenant.subscription_id))


def _principal_filter(raw: str) -> tuple[bool, str | None]:
    """($filter) -> (at-or-above only, principal id); ARM's atScope(), principalId eq, assignedTo()."""
    at_scope, principal = False, None
    for part in [p.strip() for p in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE) if p.strip()]:
        if part.lower() == "atscope()":
            at_scope = True
            continue
        m = _FILTER_PRINCIPAL.match(part)
        if m is None:
            raise BadRequest("UnsupportedQuery", f"The filter '{raw}' is not supported.")
        principal = (m.group(1) or m.group(2)).lower()
    return at_scope, principal


async def list_assignments(request: Request) -> Response:
    rt = runtime(request)
    scope = _scope_of(request)
    audit.refine(request.scope, resource_id=f"{scope}/{AUTHZ}/roleAssignments")
    caller = guards.caller(request)
    _require_api_version(request)
    target = _check_scope(rt, scope, must_exist=False)
    _require(request, caller, "Microsoft.Authorization/roleAssignments/read", target.id)
    at_scope, principal = _principal_filter(request.query_params.get("$filter", ""))
    above = set(ancestors_or_self(target.id))
    out = []
    for a in store(rt).snapshot().assignments.values():
        s = a.scope.lower().rstrip("/")
        if not (s in above or (not at_scope and contains(target.id, s))):
            continue
        if principal and a.principal_id != principal:
            continue
        out.append(a)
    out.sort(key=lambda a: (a.scope.lower(), a.created_on, a.name))
    return JSON({"value": [a.to_arm(rt.tenant.subscription_id) for a in out]})


# -- role definitions ------------------------------------------------------------------


def _role_filter(raw: str) -> tuple[str | None, str | None]:
    raw = raw.strip()
    if not raw:
        return None, None
    m = _FILTER_ROLE_NAME.match(raw)
    if m:
        return m.group(1).replace("''", "'"), None
    m = _FILTER_ROLE_TYPE.match(raw)
    if m:
        return None, m.group(1)
    raise BadRequest("UnsupportedQuery", f"The filter '{raw}' is not supported.")


def _visible_at(role: RoleDefinition, scope: str) -> bool:
    if not role.is_custom or not scope:
        return True
    return any(contains(s, scope) or contains(scope, s) for s in role.assignable_scopes)


async def list_definitions(request: Request) -> Response:
    rt = runtime(request)
    scope = _scope_of(request)
    audit.refine(request.scope, resource_id=f"{scope}/{AUTHZ}/roleDefinitions")
    _require_api_version(request)
    if scope:
        _check_scope(rt, scope, must_exist=False)
    name, role_type = _role_filter(request.query_params.get("$filter", ""))
    roles = [
        r for r in store(rt).snapshot().roles.values()
        if _visible_at(r, scope)
        and (name is None or r.role_name.lower() == name.lower())
        and (role_type is None or r.role_type.lower() == role_type.lower())
    ]
    roles.sort(key=lambda r: (r.is_custom, r.role_name.lower()))
    return JSON({"value": [r.to_arm(rt.tenant.subscription_id) for r in roles]})


def _definition_not_found(guid: str) -> ServiceError:
    return NotFound("RoleDefinitionDoesNotExist", f"The role definition '{guid}' could not be found.")


async def get_definition(request: Request) -> Response:
    rt = runtime(request)
    scope, guid = _scope_of(request), request.path_params["name"]
    audit.refine(request.scope, resource_id=f"{scope}/{AUTHZ}/roleDefinitions/{guid}")
    _require_api_version(request)
    if scope:
        _check_scope(rt, scope, must_exist=False)
    role = store(rt).snapshot().role(guid)
    if role is None:
        raise _definition_not_found(guid)
    return JSON(role.to_arm(rt.tenant.subscription_id))


async def put_definition(request: Request) -> Response:
    """Parse and render; the rules are authz/definitions.py's."""
    rt = runtime(request)
    scope, guid = _scope_of(request), request.path_params["name"].lower()
    audit.refine(request.scope, resource_id=f"{scope}/{AUTHZ}/roleDefinitions/{guid}")
    caller = guards.caller(request)
    _require_api_version(request)
    if scope:
        _check_scope(rt, scope, must_exist=False)
    if not GUID.match(guid):
        raise BadRequest("InvalidRoleDefinitionId", f"The role definition ID '{guid}' is not valid. It must be a GUID.")
    body = await json_body(request)
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        raise BadRequest("InvalidRequestContent", "The request content must be an object with 'properties'.")
    snap = store(rt).snapshot()
    existing = definitions.existing_custom(snap, guid)
    role_name = definitions.check_role_name(snap, guid, props.get("roleName"))
    scopes = tuple(_check_scope(rt, s, must_exist=False).id for s in definitions.assignable_scopes(props))
    checked = definitions.check(existing, role_name, props, scope, scopes)
    for s in scopes_to_authorize(existing, scopes):  # existing scopes too (authz/roles.py)
        _require(request, caller, definitions.WRITE, s)
    role = definitions.build(guid, checked, caller.object_id)
    if existing is not None:
        audit.operation(request.scope, "RoleDefinitionUpdate")
    await run_in_threadpool(store(rt).put_role, role)
    return JSON(role.to_arm(rt.tenant.subscription_id), status_code=200 if existing else 201)


async def delete_definition(request: Request) -> Response:
    rt = runtime(request)
    scope, guid = _scope_of(request), request.path_params["name"].lower()
    audit.refine(request.scope, resource_id=f"{scope}/{AUTHZ}/roleDefinitions/{guid}")
    caller = guards.caller(request)
    _require_api_version(request)
    snap = store(rt).snapshot()
    role = snap.role(guid)
    if role is None:
        return Response(status_code=204)
    if not role.is_custom:
        raise BadRequest("RoleDefinitionIsBuiltIn", f"The built-in role '{role.role_name}' cannot be deleted.")
    for s in role.assignable_scopes:
        _require(request, caller, "Microsoft.Authorization/roleDefinitions/delete", s)
    if any(a.role_definition_guid == guid for a in snap.assignments.values()):
        raise Conflict(
            "RoleDefinitionHasAssignments",
            "There are existing role assignments referencing role. Remove the role assignments first.",
        )
    await run_in_threadpool(store(rt).delete_role, role)
    return JSON(role.to_arm(rt.tenant.subscription_id))


# -- access review and principal lookup --------------------------------------------------


def _federated_with_local_cluster(rt: Runtime):
    """Does a principal trust the local cluster issuer (so a node agent's service-account token can act as it)?"""
    if rt.identity is None:
        return None
    identity = rt.identity
    issuer = identity.cluster.issuer_url.rstrip("/")

    def federated(object_id: str) -> bool:
        p = rt.directory.find(object_id)
        return p is not None and any(f.issuer.rstrip("/") == issuer for f in identity.fics.list(p))

    return federated


def _lookup(rt: Runtime):
    def find(object_id: str) -> PrincipalInfo | None:
        p = rt.directory.find(object_id)
        if p is None:
            return None
        return PrincipalInfo(p.display_name, p.client_id, assignments.principal_type(p.kind), p.kind)

    return find


async def access_review(request: Request) -> Response:
    rt = runtime(request)
    scope = _scope_of(request)
    audit.refine(request.scope, resource_id=scope)
    caller = guards.caller(request)
    _require_api_version(request)
    target = _check_scope(rt, scope)
    if target.level != "secret":
        raise BadRequest("InvalidScope", "An access review needs a secret id: …/vaults/{vault}/secrets/{name}.")
    vault = rt.vaults.get(target.vault or "")
    assert vault is not None  # _check_scope found it
    audit.refine(request.scope, vault=vault.name)
    _may_review(request, caller, vault, target.id)
    rows = await run_in_threadpool(
        review_secret, store(rt).snapshot(), vault, target.secret or "", rt.tenant.admin_object_id, _lookup(rt),
        _federated_with_local_cluster(rt),
    )
    return JSON({"value": rows, "secretId": target.id, "enableRbacAuthorization": vault.rbac_authorization})


def _may_review(request: Request, caller: Caller, vault: Vault, scope: str) -> None:
    """Reviewing access means reading role assignments (or, for a legacy vault, being able to manage it)."""
    if caller.object_id == vault.created_by:
        return
    _require(request, caller, "Microsoft.Authorization/roleAssignments/read", scope)


async def get_principal(request: Request) -> Response:
    rt = runtime(request)
    ident = request.path_params["id"]
    audit.refine(request.scope, resource_id=f"/strongroom/directory/principals/{ident}")
    p = rt.directory.find(ident)
    if p is None:
        raise NotFound("PrincipalNotFound", f"Principal {ident} does not exist in the directory {rt.tenant.tenant_id}.")
    return JSON(
        {
            "objectId": p.object_id,
            "appId": p.client_id,
            "displayName": p.display_name,
            "principalType": assignments.principal_type(p.kind),
            "kind": p.kind,
            "resourceId": p.resource_id,
        }
    )


_A = "/{scope:path}/" + AUTHZ + "/roleAssignments"
_D = "/{scope:path}/" + AUTHZ + "/roleDefinitions"

routes = [
    route(_A + "/{name}", put_assignment, ["PUT"], management("RoleAssignmentCreate")),
    route(_A + "/{name}", get_assignment, ["GET"], management("RoleAssignmentGet")),
    route(_A + "/{name}", delete_assignment, ["DELETE"], management("RoleAssignmentDelete")),
    route(_A, list_assignments, ["GET"], management("RoleAssignmentList")),
    route(_D + "/{name}", put_definition, ["PUT"], management("RoleDefinitionCreate")),
    route(_D + "/{name}", get_definition, ["GET"], management("RoleDefinitionGet")),
    route(_D + "/{name}", delete_definition, ["DELETE"], management("RoleDefinitionDelete")),
    route(_D, list_definitions, ["GET"], management("RoleDefinitionList")),
    route("/" + AUTHZ + "/roleDefinitions", list_definitions, ["GET"], management("RoleDefinitionList")),
    route("/" + AUTHZ + "/roleDefinitions/{name}", get_definition, ["GET"], management("RoleDefinitionGet")),
    route("/" + AUTHZ + "/roleDefinitions/{name}", put_definition, ["PUT"], management("RoleDefinitionCreate")),
    route("/" + AUTHZ + "/roleDefinitions/{name}", delete_definition, ["DELETE"], management("RoleDefinitionDelete")),
    route("/{scope:path}/providers/Strongroom.Authorization/accessReview", access_review, ["GET"], management("AccessReview")),
    route("/strongroom/directory/principals/{id}", get_principal, ["GET"], management("DirectoryPrincipalGet")),
]
