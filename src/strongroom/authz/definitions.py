"""The rules of creating and updating a custom role definition (ARM's `PUT …/roleDefinitions/{guid}`), without HTTP.

`server/authorization_api.py` parses the body; `check()` refuses what Azure refuses
(a built-in role, a name another custom role has, the root scope, actions that are no
actions, a permission set that is not exactly one), and `build()` makes the definition
to store once the caller was authorized at every scope `scopes_to_authorize` names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.authz.actions import is_valid_action_syntax, known_data_actions
from strongroom.authz.roles import CUSTOM, Permission, RoleDefinition
from strongroom.authz.scopes import contains, invalid_scope
from strongroom.authz.store import Snapshot, arm_time
from strongroom.errors import BadRequest, Conflict

MAX_ROLE_NAME = 512
MAX_DESCRIPTION = 2048
WRITE = "Microsoft.Authorization/roleDefinitions/write"


def _invalid(message: str) -> BadRequest:
    return BadRequest("InvalidRoleDefinition", message)


def strings(props: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = props.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise _invalid(f"'{where}.{key}' must be an array of non-empty strings.")
    return tuple(values)


def permission_from(raw: Any) -> Permission:
    """One permission set: actions of valid syntax, data actions a provider here knows."""
    if not isinstance(raw, dict):
        raise _invalid("Each entry of 'permissions' must be an object.")
    actions = strings(raw, "actions", "permissions")
    not_actions = strings(raw, "notActions", "permissions")
    data_actions = strings(raw, "dataActions", "permissions")
    not_data_actions = strings(raw, "notDataActions", "permissions")
    for a in actions + not_actions:
        if not is_valid_action_syntax(a):
            raise BadRequest("InvalidActionOrNotAction", f"'{a}' is not a valid action or notAction.")
    for a in data_actions + not_data_actions:
        if not is_valid_action_syntax(a) or not known_data_actions(a):
            raise BadRequest(
                "InvalidDataActionOrNotDataAction",
                f"'{a}' does not match any of the data actions supported by the providers.",
            )
    return Permission(actions, not_actions, data_actions, not_data_actions)


@dataclass(frozen=True)
class CheckedDefinition:
    role_name: str
    description: str
    permission: Permission
    assignable_scopes: tuple[str, ...]
    existing: RoleDefinition | None


def existing_custom(snap: Snapshot, guid: str) -> RoleDefinition | None:
    existing = snap.role(guid)
    if existing is not None and not existing.is_custom:
        raise BadRequest("RoleDefinitionIsBuiltIn", f"The built-in role '{existing.role_name}' cannot be changed.")
    return existing


def check_role_name(snap: Snapshot, guid: str, role_name: Any) -> str:
    if not isinstance(role_name, str) or not role_name.strip() or len(role_name) > MAX_ROLE_NAME:
        raise _invalid(f"'properties.roleName' is required (at most {MAX_ROLE_NAME} characters).")
    same_name = snap.role_by_name(role_name)
    if same_name is not None and same_name.name != guid:
        raise Conflict(
            "RoleDefinitionWithSameNameExists",
            "A custom role with the same name already exists in this directory. Use a different name.",
        )
    return role_name


def assignable_scopes(props: dict[str, Any]) -> tuple[str, ...]:
    """The scopes as sent: at least one, never the root (each is then parsed and checked by the caller)."""
    scopes = strings(props, "assignableScopes", "properties")
    if not scopes:
        raise _invalid("'properties.assignableScopes' must name at least one scope.")
    for s in scopes:
        if s.strip() == "/":
            raise BadRequest("InvalidAssignableScope", "Custom roles cannot use the root scope '/' as an assignable scope.")
    return scopes


def check(
    existing: RoleDefinition | None, role_name: str, props: dict[str, Any], scope: str, checked_scopes: tuple[str, ...],
) -> CheckedDefinition:
    """The rest of the definition, after `existing_custom`, `check_role_name` and the assignable scopes' own checks
    (`checked_scopes`: their ids), in Azure's order of refusals."""
    if scope and not any(contains(s, scope) or contains(scope, s) for s in checked_scopes):
        raise invalid_scope(scope)
    raw_perms = props.get("permissions")
    if not isinstance(raw_perms, list) or len(raw_perms) != 1:
        raise _invalid("'properties.permissions' must hold exactly one permission set.")
    permission = permission_from(raw_perms[0])
    description = props.get("description") or ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise _invalid(f"'properties.description' must be a string of at most {MAX_DESCRIPTION} characters.")
    return CheckedDefinition(role_name, description, permission, checked_scopes, existing)


def build(guid: str, checked: CheckedDefinition, caller_object_id: str) -> RoleDefinition:
    existing, t = checked.existing, arm_time()
    return RoleDefinition(
        name=guid, role_name=" ".join(checked.role_name.split()), description=checked.description,
        permissions=(checked.permission,), assignable_scopes=checked.assignable_scopes, role_type=CUSTOM,
        created_on=existing.created_on if existing else t, updated_on=t,
        created_by=existing.created_by if existing else caller_object_id, updated_by=caller_object_id,
    )
