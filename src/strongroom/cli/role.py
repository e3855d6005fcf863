"""`strongroom role assignment|definition ...` (az role assignment|definition ...).

Flags, defaults and JSON follow az: `--role` takes a role name or id,
`--assignee` an appId (clientId) or object id (principalId); output is the
flattened form az prints. As in az, `role assignment list` without `--scope`,
`-g` or `--all` shows only assignments made at subscription scope.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from strongroom.cli.client import Client, CLIError
from strongroom.cli.common import ServerOpt, StateDirOpt, client
from strongroom.cli.output import OutputFormat, OutputOpt, QueryOpt, emit

API_VERSION = "2022-04-01"
AUTHZ = "providers/Microsoft.Authorization"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")

app = typer.Typer(help="Manage Azure RBAC roles (az role).", no_args_is_help=True)
assignment_app = typer.Typer(help="Manage role assignments (az role assignment).", no_args_is_help=True)
definition_app = typer.Typer(help="Manage role definitions (az role definition).", no_args_is_help=True)
app.add_typer(assignment_app, name="assignment")
app.add_typer(definition_app, name="definition")

RoleOpt = Annotated[str | None, typer.Option("--role", help="Role name or id, e.g. \"Key Vault Secrets User\".")]
AssigneeOpt = Annotated[str | None, typer.Option("--assignee", help="appId (clientId) or object id (principalId).")]
ScopeOpt = Annotated[str | None, typer.Option("--scope", help="Scope: subscription, resource group, vault or secret id.")]
GroupOpt = Annotated[str | None, typer.Option("--resource-group", "-g", help="Use this resource group as the scope.")]


def _arm(c: Client, method: str, path: str, **kwargs: Any) -> Any:
    return c.arm(method, path, params={"api-version": API_VERSION, **kwargs.pop("params", {})}, **kwargs)


def _scope(c: Client, scope: str | None, group: str | None) -> str:
    """az's _build_role_scope: --scope, else -g, else the subscription."""
    if scope:
        if group:
            raise CLIError("Resource group and scope can't be used together", "InvalidArgumentValue")
        return scope.rstrip("/")
    if group:
        return f"/subscriptions/{c.subscription_id}/resourceGroups/{group}"
    return f"/subscriptions/{c.subscription_id}"


def _principal(c: Client, assignee: str) -> dict[str, Any]:
    try:
        return c.arm("GET", f"/strongroom/directory/principals/{assignee}")
    except CLIError as exc:
        if exc.code != "PrincipalNotFound":
            raise
        raise CLIError(
            f"Cannot find user or service principal in graph database for '{assignee}'. If the assignee is an appId, "
            "make sure the corresponding service principal is created with 'strongroom ad sp create-for-rbac'.",
            "PrincipalNotFound",
        ) from None


def _definitions(c: Client, scope: str, flt: str | None = None) -> list[dict[str, Any]]:
    params = {"$filter": flt} if flt else {}
    return _arm(c, "GET", f"{scope}/{AUTHZ}/roleDefinitions", params=params)["value"]


def resolve_role(c: Client, role: str, scope: str) -> dict[str, Any]:
    """A role name, GUID or full role definition id -> the role definition (ARM JSON)."""
    guid = role.rstrip("/").rsplit("/", 1)[-1]
    if _GUID.match(guid):
        try:
            return _arm(c, "GET", f"/subscriptions/{c.subscription_id}/{AUTHZ}/roleDefinitions/{guid}")
        except CLIError as exc:
            if exc.code != "RoleDefinitionDoesNotExist":
                raise
            raise CLIError(f"Role '{role}' doesn't exist.", "RoleDefinitionDoesNotExist") from None
    escaped = role.replace("'", "''")
    found = _definitions(c, scope, f"roleName eq '{escaped}'")
    if not found:
        raise CLIError(f"Role '{role}' doesn't exist.", "RoleDefinitionDoesNotExist")
    if len(found) > 1:
        raise CLIError(f"More than one role matches the given name '{role}'. Please pick an id from {[r['id'] for r in found]}")
    return found[0]


def az_assignment(a: dict[str, Any]) -> dict[str, Any]:
    """ARM's role assignment, flattened as az prints it."""
    p = a["properties"]
    out: dict[str, Any] = {
        "condition": p.get("condition"),
        "conditionVersion": p.get("conditionVersion"),
        "createdBy": p.get("createdBy"),
        "createdOn": p.get("createdOn"),
        "delegatedManagedIdentityResourceId": p.get("delegatedManagedIdentityResourceId"),
        "description": p.get("description"),
        "id": a["id"],
        "name": a["name"],
        "principalId": p["principalId"],
        "principalType": p.get("principalType"),
        "roleDefinitionId": p["roleDefinitionId"],
        "scope": p["scope"],
        "type": a["type"],
        "updatedBy": p.get("updatedBy"),
        "updatedOn": p.get("updatedOn"),
    }
    m = re.match(r"^/subscriptions/[^/]+/resourceGroups/([^/]+)", p["scope"], re.IGNORECASE)
    if m:
        out["resourceGroup"] = m.group(1)
    return dict(sorted(out.items()))


def az_definition(d: dict[str, Any]) -> dict[str, Any]:
    p = d["properties"]
    return {
        "assignableScopes": p.get("assignableScopes", []),
        "createdBy": p.get("createdBy"),
        "createdOn": p.get("createdOn"),
        "description": p.get("description"),
        "id": d["id"],
        "name": d["name"],
        "permissions": [
            {
                "actions": perm.get("actions", []),
                "condition": perm.get("condition"),
                "conditionVersion": perm.get("conditionVersion"),
                "dataActions": perm.get("dataActions", []),
                "notActions": perm.get("notActions", []),
                "notDataActions": perm.get("notDataActions", []),
            }
            for perm in p.get("permissions", [])
        ],
        "roleName": p["roleName"],
        "roleType": p.get("type"),
        "type": d["type"],
        "updatedBy": p.get("updatedBy"),
        "updatedOn": p.get("updatedOn"),
    }


def _search(c: Client, scope: str | None, assignee_oid: str | None, role_id: str | None,
            include_inherited: bool) -> list[dict[str, Any]]:
    """az's _search_role_assignments: list, then keep exact-scope (or inherited) matches."""
    if scope and assignee_oid:
        found = _arm(c, "GET", f"{scope}/{AUTHZ}/roleAssignments", params={"$filter": f"principalId eq '{assignee_oid}'"})
    elif assignee_oid:
        found = _arm(c, "GET", f"/subscriptions/{c.subscription_id}/{AUTHZ}/roleAssignments",
                     params={"$filter": f"principalId eq '{assignee_oid}'"})
    elif scope:
        found = _arm(c, "GET", f"{scope}/{AUTHZ}/roleAssignments", params={"$filter": "atScope()"})
    else:
        found = _arm(c, "GET", f"/subscriptions/{c.subscription_id}/{AUTHZ}/roleAssignments")
    out = []
    for a in found["value"]:
        s = a["properties"]["scope"].lower().rstrip("/")
        if scope:
            wanted = scope.lower().rstrip("/")
            inherited = wanted == s or wanted.startswith(s + "/")
            if not (s == wanted or (include_inherited and inherited)):
                continue
        if role_id and a["properties"]["roleDefinitionId"].rsplit("/", 1)[-1].lower() != role_id.rsplit("/", 1)[-1].lower():
            continue
        if assignee_oid and a["properties"]["principalId"].lower() != assignee_oid.lower():
            continue
        out.append(a)
    return out


@assignment_app.command("create")
def assignment_create(
    role: RoleOpt = None,
    assignee: AssigneeOpt = None,
    assignee_object_id: Annotated[
        str | None, typer.Option("--assignee-object-id", help="Object id of the assignee (no directory lookup).")
    ] = None,
    assignee_principal_type: Annotated[
        str | None, typer.Option("--assignee-principal-type", help="ServicePrincipal (the only kind here).")
    ] = None,
    scope: ScopeOpt = None,
    resource_group: GroupOpt = None,
    description: Annotated[str | None, typer.Option("--description", help="Description of the role assignment.")] = None,
    condition: Annotated[str | None, typer.Option("--condition", help="ABAC condition (version 2.0).")] = None,
    condition_version: Annotated[str | None, typer.Option("--condition-version", help="2.0")] = None,
    name: Annotated[str | None, typer.Option("--name", help="GUID for the assignment (default: a new one).")] = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Create a role assignment."""
    if not role:
        raise CLIError("the following arguments are required: --role", "InvalidArgumentValue")
    if bool(assignee) == bool(assignee_object_id):
        raise CLIError("usage error: --assignee STRING | --assignee-object-id GUID", "InvalidArgumentValue")
    if not scope and not resource_group:
        raise CLIError("--scope is required for role assignment creation.", "InvalidArgumentValue")
    c = client(state_dir, server)
    target = _scope(c, scope, resource_group)
    role_def = resolve_role(c, role, target)
    principal_id = assignee_object_id or _principal(c, assignee or "")["objectId"]
    props: dict[str, Any] = {"roleDefinitionId": role_def["id"], "principalId": principal_id}
    if assignee_principal_type:
        props["principalType"] = assignee_principal_type
    if description is not None:
        props["description"] = description
    if condition:
        props["condition"] = condition
        props["conditionVersion"] = condition_version or "2.0"
    assignment_name = name or str(uuid.uuid4())
    result = _arm(c, "PUT", f"{target}/{AUTHZ}/roleAssignments/{assignment_name}", json={"properties": props})
    emit(az_assignment(result), output, query)


@assignment_app.command("list")
def assignment_list(
    assignee: AssigneeOpt = None,
    role: RoleOpt = None,
    scope: ScopeOpt = None,
    resource_group: GroupOpt = None,
    all_: Annotated[bool, typer.Option("--all", help="Show all assignments in the subscription, at every scope.")] = False,
    include_inherited: Annotated[bool, typer.Option("--include-inherited", help="Include assignments at parent scopes.")] = False,
    include_groups: Annotated[bool, typer.Option("--include-groups", help="Accepted for az compatibility (no groups here).")] = False,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """List role assignments (as az: subscription scope only unless --scope, -g or --all)."""
    c = client(state_dir, server)
    if all_ and (scope or resource_group):
        raise CLIError("group or scope are not required when --all is used", "InvalidArgumentValue")
    target = None if all_ else _scope(c, scope, resource_group)
    assignee_oid = _principal(c, assignee)["objectId"] if assignee else None
    role_id = resolve_role(c, role, target or f"/subscriptions/{c.subscription_id}")["id"] if role else None
    found = _search(c, target, assignee_oid, role_id, include_inherited)
    names = {d["id"].rsplit("/", 1)[-1].lower(): d["properties"]["roleName"]
             for d in _definitions(c, f"/subscriptions/{c.subscription_id}")}
    principals: dict[str, str | None] = {}
    out = []
    for a in found:
        row = az_assignment(a)
        oid = row["principalId"]
        if oid not in principals:
            try:
                principals[oid] = _principal(c, oid).get("displayName")
            except CLIError:
                principals[oid] = ""  # az shows "" for a principal no longer in the directory
        row["principalName"] = principals[oid]
        row["roleDefinitionName"] = names.get(row["roleDefinitionId"].rsplit("/", 1)[-1].lower())
        out.append(dict(sorted(row.items())))
    emit(out, output, query)


@assignment_app.command("delete")
def assignment_delete(
    ids: Annotated[list[str] | None, typer.Option("--ids", help="Space-separated role assignment ids.")] = None,
    assignee: AssigneeOpt = None,
    role: RoleOpt = None,
    scope: ScopeOpt = None,
    resource_group: GroupOpt = None,
    include_inherited: Annotated[bool, typer.Option("--include-inherited")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not prompt (accepted for az compatibility).")] = False,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
) -> None:
    """Delete role assignments (by --ids, or those matching --assignee/--role at --scope)."""
    c = client(state_dir, server)
    if ids:
        if any([assignee, role, scope, resource_group]):
            raise CLIError("When assignment ids are used, other parameter values are not required", "InvalidArgumentValue")
        for i in ids:
            _arm(c, "DELETE", i)
        return
    if not any([assignee, role, scope, resource_group]):
        raise CLIError(
            "Please provide at least one of these arguments: --ids, --assignee, --role, --scope, --resource-group",
            "InvalidArgumentValue",
        )
    target = _scope(c, scope, resource_group)
    assignee_oid = _principal(c, assignee)["objectId"] if assignee else None
    role_id = resolve_role(c, role, target)["id"] if role else None
    found = _search(c, target, assignee_oid, role_id, include_inherited)
    if not found:
        raise CLIError("No matched assignments were found to delete", "RoleAssignmentNotFound")
    for a in found:
        _arm(c, "DELETE", a["id"])


@definition_app.command("list")
def definition_list(
    name: Annotated[str | None, typer.Option("--name", "-n", help="Role name or id.")] = None,
    custom_role_only: Annotated[bool, typer.Option("--custom-role-only", help="Custom roles only.")] = False,
    scope: ScopeOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """List role definitions."""
    c = client(state_dir, server)
    target = scope.rstrip("/") if scope else f"/subscriptions/{c.subscription_id}"
    if name:
        try:
            found = [resolve_role(c, name, target)]
        except CLIError as exc:
            if exc.code != "RoleDefinitionDoesNotExist":
                raise
            found = []
    else:
        found = _definitions(c, target, "type eq 'CustomRole'" if custom_role_only else None)
    if custom_role_only:
        found = [d for d in found if d["properties"].get("type") == "CustomRole"]
    emit([az_definition(d) for d in found], output, query)


def _load_definition(raw: str) -> dict[str, Any]:
    """--role-definition: JSON text, @file or a path, as az accepts; keys in either case (Name or name)."""
    text = raw
    path = Path(raw[1:] if raw.startswith("@") else raw).expanduser()
    if raw.startswith("@") or (not raw.lstrip().startswith("{") and path.exists()):
        try:
            text = path.read_text()
        except OSError as exc:
            raise CLIError(f"cannot read {path}: {exc.strerror}", "InvalidArgumentValue") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise CLIError("--role-definition: not valid JSON (give JSON text, @file or a file path)", "InvalidArgumentValue") from None
    if not isinstance(data, dict):
        raise CLIError("--role-definition: expected a JSON object", "InvalidArgumentValue")
    return {k[:1].lower() + k[1:]: v for k, v in data.items()}


def _definition_body(d: dict[str, Any]) -> dict[str, Any]:
    name = d.get("roleName") or d.get("name")
    if not name:
        raise CLIError("please provide role name", "InvalidArgumentValue")
    if not d.get("assignableScopes"):
        raise CLIError("please provide 'assignableScopes'", "InvalidArgumentValue")
    if d.get("permissions"):
        permissions = d["permissions"]
    else:
        permissions = [{
            "actions": d.get("actions") or [],
            "notActions": d.get("notActions") or [],
            "dataActions": d.get("dataActions") or [],
            "notDataActions": d.get("notDataActions") or [],
        }]
    return {"properties": {
        "roleName": name, "description": d.get("description") or "", "type": "CustomRole",
        "assignableScopes": d["assignableScopes"], "permissions": permissions,
    }}


RoleDefinitionOpt = Annotated[str, typer.Option("--role-definition", help="JSON description of the role, @file, or a file path.")]


@definition_app.command("create")
def definition_create(
    role_definition: RoleDefinitionOpt,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Create a custom role definition."""
    c = client(state_dir, server)
    body = _definition_body(_load_definition(role_definition))
    scope = str(body["properties"]["assignableScopes"][0]).rstrip("/")
    result = _arm(c, "PUT", f"{scope}/{AUTHZ}/roleDefinitions/{uuid.uuid4()}", json=body)
    emit(az_definition(result), output, query)


@definition_app.command("update")
def definition_update(
    role_definition: RoleDefinitionOpt,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Update a custom role definition (found by its "id", or else by its name)."""
    c = client(state_dir, server)
    d = _load_definition(role_definition)
    body = _definition_body(d)
    scope = str(body["properties"]["assignableScopes"][0]).rstrip("/")
    ident = d.get("id") or resolve_role(c, body["properties"]["roleName"], scope)["id"]
    result = _arm(c, "PUT", f"{scope}/{AUTHZ}/roleDefinitions/{str(ident).rstrip('/').rsplit('/', 1)[-1]}", json=body)
    emit(az_definition(result), output, query)


@definition_app.command("delete")
def definition_delete(
    name: Annotated[str, typer.Option("--name", "-n", help="Role name or id.")],
    scope: ScopeOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
) -> None:
    """Delete a custom role definition."""
    c = client(state_dir, server)
    target = scope.rstrip("/") if scope else f"/subscriptions/{c.subscription_id}"
    role = resolve_role(c, name, target)
    _arm(c, "DELETE", f"{target}/{AUTHZ}/roleDefinitions/{role['name']}")
