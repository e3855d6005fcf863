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
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from strongroom.audit import facts as audit
from strongroom.authz import Caller, control
from strongroom.authz.actions import is_valid_action_syntax, known_data_actions
from strongroom.authz.conditions import ConditionError, assignment_attributes, compile_condition
from strongroom.authz.review import PrincipalInfo, review_secret
from strongroom.authz.roles import CUSTOM, Permission, RoleDefinition, guid_of, scopes_to_authorize
from strongroom.authz.scopes import Scope, ancestors_or_self, contains, invalid_scope, parse_scope
from strongroom.authz.store import AuthzStore, RoleAssignment, arm_time, new_assignment
from strongroom.keyvault.errors import KeyVaultError
from strongroom.keyvault.vaults import Vault
from strongroom.server.http import JSON, json_body
from strongroom.server.management_api import _authenticate as authenticate
from strongroom.server.runtime import Runtime

AUTHZ = "providers/Microsoft.Authorization"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")
_FILTER_PRINCIPAL = re.compile(r"^(?:principalId\s+eq\s+'([^']+)'|assignedTo\('([^']+)'\))\Z", re.IGNORECASE)
_FILTER_ROLE_NAME = re.compile(r"^roleName\s+eq\s+'(.*)'\Z", re.IGNORECASE)
_FILTER_ROLE_TYPE = re.compile(r"^type\s+eq\s+'(BuiltInRole|CustomRole)'\Z", re.IGNORECASE)


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def store(rt: Runtime) -> AuthzStore:
    assert rt.authorizer.store is not None
    return rt.authorizer.store


def _scope_of(request: Request) -> str:
    return "/" + request.path_params["scope"] if "scope" in request.path_params else ""


def _require_api_version(request: Request) -> None:
    if not request.query_params.get("api-version"):
        raise KeyVaultError(
            400, "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )


def _check_scope(rt: Runtime, scope: str, *, must_exist: bool = True) -> Scope:
    """Parse and check a scope: our subscription, and for vault/secret scopes an existing vault."""
    s = parse_scope(scope)
    if s.subscription.lower() != rt.tenant.subscription_id.lower():
        raise KeyVaultError(404, "SubscriptionNotFound", f"The subscription '{s.subscription}' could not be found.")
    if s.vault and must_exist:
        vault = rt.vaults.get(s.vault)
        if vault is None or vault.resource_group.lower() != (s.resource_group or "").lower():
            raise KeyVaultError(
                404, "ResourceNotFound",
                f"The Resource 'Microsoft.KeyVault/vaults/{s.vault}' under resource group '{s.resource_group}' was not found.",
            )
    return s



def _require(request: Request, caller: Caller, action: str, scope: str, target: str | None = None, attributes=None) -> None:
    """Refuse unless `caller` may do `action` at `scope`; the deciding assignment goes to the audit record."""
    decision = runtime(request).authorizer.may(caller, action, scope, attributes)
    audit.decision(request.scope, allowed=decision.allowed, assignment_id=decision.assignment_id)
    if not decision.allowed:
        raise control.authorization_failed(caller, action, target or scope)


def _principal_type(kind: str | None) -> str:
    # Managed identities are service principals to Azure RBAC.
    return "ServicePrincipal"


# -- role assignments ---------------------------------------------------------------


def _assignment_in(rt: Runtime, scope: str, name: str) -> RoleAssignment | None:
    a = store(rt).snapshot().assignments.get(name.lower())
    return a if a is not None and a.scope.lower().rstrip("/") == scope.lower().rstrip("/") else None


async def put_assignment(request: Request) -> Response:
    rt = runtime(request)
    scope, name = _scope_of(request), request.path_params["name"]
    audit.begin(request.scope, "RoleAssignmentCreate", resource_id=f"{scope}/{AUTHZ}/roleAssignments/{name}")
    caller = authenticate(request)
    _require_api_version(request)
    target = _check_scope(rt, scope)
    if not GUID.match(name):
        raise KeyVaultError(
            400, "InvalidRoleAssignmentId",
            f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.",
        )
    body = await json_body(request)
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        raise KeyVaultError(400, "InvalidRequestContent", "The request content must be an object with 'properties'.")
    role_id, principal_ref = props.get("roleDefinitionId"), props.get("principalId")
    if not isinstance(role_id, str) or not role_id or not isinstance(principal_ref, str) or not principal_ref:
        raise KeyVaultError(400, "InvalidRequestContent", "'properties.roleDefinitionId' and 'properties.principalId' are required.")
    snap = store(rt).snapshot()
    role = snap.role(guid_of(role_id))
    if role is None or not _role_id_in_subscription(rt, role_id):
        raise KeyVaultError(400, "RoleDefinitionDoesNotExist",
                            f"The specified role definition with ID '{guid_of(role_id)}' does not exist.")
    if role.is_custom and not any(contains(s, target.id) for s in role.assignable_scopes):
        raise KeyVaultError(
            400, "InvalidRoleAssignmentScope",
            f"The role definition '{role.role_name}' is not assignable at scope '{scope}'. Its assignable scopes are: "
            f"{', '.join(role.assignable_scopes)}.",
        )
    principal = rt.directory.find(principal_ref)
    if principal is None:
        raise KeyVaultError(
            400, "PrincipalNotFound",
            f"Principal {principal_ref} does not exist in the directory {rt.tenant.tenant_id}. Check that you have the "
            "correct principal ID.",
        )
    actual_type = _principal_type(principal.kind)
    given_type = props.get("principalType") or actual_type
    if given_type not in PRINCIPAL_TYPES:
        raise KeyVaultError(400, "InvalidPrincipalType",
                            f"The principal type '{given_type}' is not valid. Use one of {', '.join(PRINCIPAL_TYPES)}.")
    if given_type != actual_type:
        raise KeyVaultError(
            400, "UnmatchedPrincipalType",
            f"The PrincipalId '{principal.object_id}' has type '{actual_type}' , which is different from specified "
            f"PrincipalType '{given_type}'.",
        )
    condition, condition_version = _condition_of(props)
    description = props.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 2048):
        raise KeyVaultError(400, "InvalidRequestContent", "'properties.description' must be a string of at most 2048 characters.")
    attrs = assignment_attributes("request", role.name, principal.object_id, actual_type)
    write = "Microsoft.Authorization/roleAssignments/write"
    _require(request, caller, write, target.id, f"{scope}/{AUTHZ}/roleAssignments/{name}", attrs)

    existing = snap.assignments.get(name.lower())
    if existing is not None:
        if (existing.scope.lower() != target.id.lower() or existing.principal_id != principal.object_id.lower()
                or existing.role_definition_guid != role.name):
            raise KeyVaultError(
                409, "RoleAssignmentUpdateNotPermitted",
                "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
            )
        existing.description, existing.condition, existing.condition_version = description, condition, condition_version
        existing.updated_on, existing.updated_by = arm_time(), caller.object_id
        await run_in_threadpool(store(rt).put_assignment, existing)
        audit.operation(request.scope, "RoleAssignmentUpdate")
        return JSON(existing.to_arm(rt.tenant.subscription_id), status_code=200)
    for other in snap.grants_for(principal.object_id):
        a = other.assignment
        if a.scope.lower() == target.id.lower() and a.role_definition_guid == role.name and a.condition == condition:
            raise KeyVaultError(409, "RoleAssignmentExists", "The role assignment already exists.")
    created = new_assignment(
        target.id, role.name, principal.object_id, actual_type, caller.object_id, name=name,
        description=description, condition=condition, condition_version=condition_version,
    )
    await run_in_threadpool(store(rt).put_assignment, created)
    return JSON(created.to_arm(rt.tenant.subscription_id), status_code=201)


def _role_id_in_subscription(rt: Runtime, role_id: str) -> bool:
    """`/subscriptions/{ours}/providers/…/roleDefinitions/{g}`, `/providers/…/roleDefinitions/{g}` or a bare GUID."""
    rid = role_id.strip()
    if GUID.match(rid):
        return True
    m = re.match(r"^(?:/subscriptions/([^/]+))?/providers/Microsoft\.Authorization/roleDefinitions/[^/]+\Z", rid, re.IGNORECASE)
    return m is not None and (m.group(1) is None or m.group(1).lower() == rt.tenant.subscription_id.lower())


def _condition_of(props: dict[str, Any]) -> tuple[str | None, str | None]:
    condition = props.get("condition")
    if condition in (None, ""):
        return None, None
    version = props.get("conditionVersion") or "2.0"
    if not isinstance(condition, str) or version != "2.0":
        raise KeyVaultError(400, "InvalidConditionVersion", "Only condition version '2.0' is supported.")
    try:
        compile_condition(condition)
    except ConditionError as exc:
        raise KeyVaultError(400, "InvalidCondition", f"The condition is not valid: {exc}.") from None
    return condition, version


async def get_assignment(request: Request) -> Response:
    rt = runtime(request)
    scope, name = _scope_of(request), request.path_params["name"]
    audit.begin(request.scope, "RoleAssignmentGet", resource_id=f"{scope}/{AUTHZ}/roleAssignments/{name}")
    caller = authenticate(request)
    _require_api_version(request)
    target = _check_scope(rt, scope, must_exist=False)
    _require(request, caller, "Microsoft.Authorization/roleAssignments/read", target.id)
    found = _assignment_in(rt, target.id, name)
    if found is None:
        raise KeyVaultError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")
    return JSON(found.to_arm(rt.tenant.subscription_id))


async def delete_assignment(request: Request) -> Response:
    rt = runtime(request)
    scope, name = _scope_of(request), request.path_params["name"]
    audit.begin(request.scope, "RoleAssignmentDelete", resource_id=f"{scope}/{AUTHZ}/roleAssignments/{name}")
    caller = authenticate(request)
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
            raise KeyVaultError(400, "UnsupportedQuery", f"The filter '{raw}' is not supported.")
        principal = (m.group(1) or m.group(2)).lower()
    return at_scope, principal


async def list_assignments(request: Request) -> Response:
    rt = runtime(request)
    scope = _scope_of(request)
    audit.begin(request.scope, "RoleAssignmentList", resource_id=f"{scope}/{AUTHZ}/roleAssignments")
    caller = authenticate(request)
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
    raise KeyVaultError(400, "UnsupportedQuery", f"The filter '{raw}' is not supported.")


def _visible_at(role: RoleDefinition, scope: str) -> bool:
    if not role.is_custom or not scope:
        return True
    return any(contains(s, scope) or contains(scope, s) for s in role.assignable_scopes)


async def list_definitions(request: Request) -> Response:
    rt = runtime(request)
    scope = _scope_of(request)
    audit.begin(request.scope, "RoleDefinitionList", resource_id=f"{scope}/{AUTHZ}/roleDefinitions")
    authenticate(request)
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


def _definition_not_found(guid: str) -> KeyVaultError:
    return KeyVaultError(404, "RoleDefinitionDoesNotExist", f"The role definition '{guid}' could not be found.")


async def get_definition(request: Request) -> Response:
    rt = runtime(request)
    scope, guid = _scope_of(request), request.path_params["name"]
    audit.begin(request.scope, "RoleDefinitionGet", resource_id=f"{scope}/{AUTHZ}/roleDefinitions/{guid}")
    authenticate(request)
    _require_api_version(request)
    if scope:
        _check_scope(rt, scope, must_exist=False)
    role = store(rt).snapshot().role(guid)
    if role is None:
        raise _definition_not_found(guid)
    return JSON(role.to_arm(rt.tenant.subscription_id))


def _strings(props: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = props.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise KeyVaultError(400, "InvalidRoleDefinition", f"'{where}.{key}' must be an array of non-empty strings.")
    return tuple(values)


def _permission_from(raw: Any) -> Permission:
    if not isinstance(raw, dict):
        raise KeyVaultError(400, "InvalidRoleDefinition", "Each entry of 'permissions' must be an object.")
    actions = _strings(raw, "actions", "permissions")
    not_actions = _strings(raw, "notActions", "permissions")
    data_actions = _strings(raw, "dataActions", "permissions")
    not_data_actions = _strings(raw, "notDataActions", "permissions")
    for a in actions + not_actions:
        if not is_valid_action_syntax(a):
            raise KeyVaultError(400, "InvalidActionOrNotAction", f"'{a}' is not a valid action or notAction.")
    for a in data_actions + not_data_actions:
        if not is_valid_action_syntax(a) or not known_data_actions(a):
            raise KeyVaultError(
                400, "InvalidDataActionOrNotDataAction",
                f"'{a}' does not match any of the data actions supported by the providers.",
            )
    return Permission(actions, not_actions, data_actions, not_data_actions)


async def put_definition(request: Request) -> Response:
    rt = runtime(request)
    scope, guid = _scope_of(request), request.path_params["name"].lower()
    audit.begin(request.scope, "RoleDefinitionCreate", resource_id=f"{scope}/{AUTHZ}/roleDefinitions/{guid}")
    caller = authenticate(request)
    _require_api_version(request)
    if scope:
        _check_scope(rt, scope, must_exist=False)
    if not GUID.match(guid):
        raise KeyVaultError(400, "InvalidRoleDefinitionId", f"The role definition ID '{guid}' is not valid. It must be a GUID.")
    body = await json_body(request)
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        raise KeyVaultError(400, "InvalidRequestContent", "The request content must be an object with 'properties'.")
    snap = store(rt).snapshot()
    existing = snap.role(guid)
    if existing is not None and not existing.is_custom:
        raise KeyVaultError(400, "RoleDefinitionIsBuiltIn", f"The built-in role '{existing.role_name}' cannot be changed.")
    role_name = props.get("roleName")
    if not isinstance(role_name, str) or not role_name.strip() or len(role_name) > 512:
        raise KeyVaultError(400, "InvalidRoleDefinition", "'properties.roleName' is required (at most 512 characters).")
    same_name = snap.role_by_name(role_name)
    if same_name is not None and same_name.name != guid:
        raise KeyVaultError(
            409, "RoleDefinitionWithSameNameExists",
            "A custom role with the same name already exists in this directory. Use a different name.",
        )
    scopes = _strings(props, "assignableScopes", "properties")
    if not scopes:
        raise KeyVaultError(400, "InvalidRoleDefinition", "'properties.assignableScopes' must name at least one scope.")
    checked = []
    for s in scopes:
        if s.strip() == "/":
            raise KeyVaultError(400, "InvalidAssignableScope", "Custom roles cannot use the root scope '/' as an assignable scope.")
        checked.append(_check_scope(rt, s, must_exist=False).id)
    if scope and not any(contains(s, scope) or contains(scope, s) for s in checked):
        raise invalid_scope(scope)
    raw_perms = props.get("permissions")
    if not isinstance(raw_perms, list) or len(raw_perms) != 1:
        raise KeyVaultError(400, "InvalidRoleDefinition", "'properties.permissions' must hold exactly one permission set.")
    permission = _permission_from(raw_perms[0])
    description = props.get("description") or ""
    if not isinstance(description, str) or len(description) > 2048:
        raise KeyVaultError(400, "InvalidRoleDefinition", "'properties.description' must be a string of at most 2048 characters.")
    for s in scopes_to_authorize(existing, tuple(checked)):  # existing scopes too (authz/roles.py)
        _require(request, caller, "Microsoft.Authorization/roleDefinitions/write", s)
    t = arm_time()
    role = RoleDefinition(
        name=guid, role_name=" ".join(role_name.split()), description=description, permissions=(permission,),
        assignable_scopes=tuple(checked), role_type=CUSTOM,
        created_on=existing.created_on if existing else t, updated_on=t,
        created_by=existing.created_by if existing else caller.object_id, updated_by=caller.object_id,
    )
    if existing is not None:
        audit.operation(request.scope, "RoleDefinitionUpdate")
    await run_in_threadpool(store(rt).put_role, role)
    return JSON(role.to_arm(rt.tenant.subscription_id), status_code=200 if existing else 201)


async def delete_definition(request: Request) -> Response:
    rt = runtime(request)
    scope, guid = _scope_of(request), request.path_params["name"].lower()
    audit.begin(request.scope, "RoleDefinitionDelete", resource_id=f"{scope}/{AUTHZ}/roleDefinitions/{guid}")
    caller = authenticate(request)
    _require_api_version(request)
    snap = store(rt).snapshot()
    role = snap.role(guid)
    if role is None:
        return Response(status_code=204)
    if not role.is_custom:
        raise KeyVaultError(400, "RoleDefinitionIsBuiltIn", f"The built-in role '{role.role_name}' cannot be deleted.")
    for s in role.assignable_scopes:
        _require(request, caller, "Microsoft.Authorization/roleDefinitions/delete", s)
    if any(a.role_definition_guid == guid for a in snap.assignments.values()):
        raise KeyVaultError(
            409, "RoleDefinitionHasAssignments",
            "There are existing role assignments referencing role. Remove the role assignments first.",
        )
    await run_in_threadpool(store(rt).delete_role, role)
    return JSON(role.to_arm(rt.tenant.subscription_id))


# -- access review and principal lookup --------------------------------------------------


def _federated_with_local_cluster(rt: Runtime):
    """Does a principal trust the local cluster issuer (so a node agent's service-account token can act as it)?"""
    identity = rt.identity
    if identity is None:
        return None
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
        return PrincipalInfo(p.display_name, p.client_id, _principal_type(p.kind), p.kind)

    return find


async def access_review(request: Request) -> Response:
    rt = runtime(request)
    scope = _scope_of(request)
    audit.begin(request.scope, "AccessReview", resource_id=scope)
    caller = authenticate(request)
    _require_api_version(request)
    target = _check_scope(rt, scope)
    if target.level != "secret":
        raise KeyVaultError(400, "InvalidScope", "An access review needs a secret id: …/vaults/{vault}/secrets/{name}.")
    vault = rt.vaults.get(target.vault or "")
    assert vault is not None  # _check_scope found it
    audit.facts(request.scope)["vault"] = vault.name
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
    audit.begin(request.scope, "DirectoryPrincipalGet", resource_id=f"/strongroom/directory/principals/{ident}")
    authenticate(request)
    p = rt.directory.find(ident)
    if p is None:
        raise KeyVaultError(404, "PrincipalNotFound", f"Principal {ident} does not exist in the directory {rt.tenant.tenant_id}.")
    return JSON(
        {
            "objectId": p.object_id,
            "appId": p.client_id,
            "displayName": p.display_name,
            "principalType": _principal_type(p.kind),
            "kind": p.kind,
            "resourceId": p.resource_id,
        }
    )


_A = "/{scope:path}/" + AUTHZ + "/roleAssignments"
_D = "/{scope:path}/" + AUTHZ + "/roleDefinitions"

routes = [
    Route(_A + "/{name}", put_assignment, methods=["PUT"]),
    Route(_A + "/{name}", get_assignment, methods=["GET"]),
    Route(_A + "/{name}", delete_assignment, methods=["DELETE"]),
    Route(_A, list_assignments, methods=["GET"]),
    Route(_D + "/{name}", put_definition, methods=["PUT"]),
    Route(_D + "/{name}", get_definition, methods=["GET"]),
    Route(_D + "/{name}", delete_definition, methods=["DELETE"]),
    Route(_D, list_definitions, methods=["GET"]),
    Route("/" + AUTHZ + "/roleDefinitions", list_definitions, methods=["GET"]),
    Route("/" + AUTHZ + "/roleDefinitions/{name}", get_definition, methods=["GET"]),
    Route("/" + AUTHZ + "/roleDefinitions/{name}", put_definition, methods=["PUT"]),
    Route("/" + AUTHZ + "/roleDefinitions/{name}", delete_definition, methods=["DELETE"]),
    Route("/{scope:path}/providers/Strongroom.Authorization/accessReview", access_review, methods=["GET"]),
    Route("/strongroom/directory/principals/{id}", get_principal, methods=["GET"]),
]
