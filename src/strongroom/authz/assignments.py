"""The rules of creating and updating a role assignment (ARM's `PUT …/roleAssignments/{guid}`), without HTTP.

`server/authorization_api.py` parses the request into an `AssignmentRequest`, asks
`check()` what the request means (or which of Azure's 400s it earns), authorizes the
write with the returned attributes (an ABAC condition on the caller's own assignment may
look at the role and principal being granted), then `decide()` says what to store: an
update of the same assignment (only its description and condition may change), or a new
one; anything else is Azure's 409.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from strongroom.authz.conditions import Attributes, ConditionError, assignment_attributes, compile_condition
from strongroom.authz.roles import RoleDefinition, guid_of
from strongroom.authz.scopes import contains
from strongroom.authz.store import RoleAssignment, Snapshot, arm_time, new_assignment
from strongroom.errors import BadRequest, Conflict

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")
MAX_DESCRIPTION = 2048
WRITE = "Microsoft.Authorization/roleAssignments/write"
_ROLE_ID = re.compile(r"^(?:/subscriptions/([^/]+))?/providers/Microsoft\.Authorization/roleDefinitions/[^/]+\Z", re.IGNORECASE)


@dataclass(frozen=True)
class AssignmentRequest:
    """What a PUT asks for, as sent (`principal_type`, `description`, `condition` may be absent)."""

    name: str
    scope: str  # the target scope's id
    role_definition_id: str
    principal_ref: str
    principal_type: Any = None
    description: Any = None
    condition: Any = None
    condition_version: Any = None


@dataclass(frozen=True)
class Principal:
    """The directory's answer for `principal_ref` (the handler looks it up: authz does not know the directory)."""

    object_id: str
    kind: str | None


@dataclass(frozen=True)
class CheckedAssignment:
    request: AssignmentRequest
    role: RoleDefinition
    principal_id: str
    principal_type: str
    condition: str | None
    condition_version: str | None
    description: str | None
    attributes: Attributes  # for the condition of the caller's own assignment (authorizer.may)


def principal_type(kind: str | None) -> str:
    return "ServicePrincipal"  # managed identities are service principals to Azure RBAC


def role_id_in_subscription(role_id: str, subscription_id: str) -> bool:
    """`/subscriptions/{ours}/providers/…/roleDefinitions/{g}`, `/providers/…/roleDefinitions/{g}` or a bare GUID."""
    rid = role_id.strip()
    if GUID.match(rid):
        return True
    m = _ROLE_ID.match(rid)
    return m is not None and (m.group(1) is None or m.group(1).lower() == subscription_id.lower())


def condition_of(condition: Any, version: Any) -> tuple[str | None, str | None]:
    """A condition (ABAC, version 2.0) that compiles, or None; Azure's 400s otherwise."""
    if condition in (None, ""):
        return None, None
    version = version or "2.0"
    if not isinstance(condition, str) or version != "2.0":
        raise BadRequest("InvalidConditionVersion", "Only condition version '2.0' is supported.")
    try:
        compile_condition(condition)
    except ConditionError as exc:
        raise BadRequest("InvalidCondition", f"The condition is not valid: {exc}.") from None
    return condition, version


def check_name(name: str) -> None:
    if not GUID.match(name):
        raise BadRequest(
            "InvalidRoleAssignmentId",
            f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.",
        )


def check(
    snap: Snapshot, req: AssignmentRequest, principal: Principal | None, *, subscription_id: str, tenant_id: str,
    display_scope: str,
) -> CheckedAssignment:
    """The request made sense of, in Azure's order of refusals; `display_scope` is the scope as the path named it."""
    role = snap.role(guid_of(req.role_definition_id))
    if role is None or not role_id_in_subscription(req.role_definition_id, subscription_id):
        raise BadRequest(
            "RoleDefinitionDoesNotExist",
            f"The specified role definition with ID '{guid_of(req.role_definition_id)}' does not exist.",
        )
    if role.is_custom and not any(contains(s, req.scope) for s in role.assignable_scopes):
        raise BadRequest(
            "InvalidRoleAssignmentScope",
            f"The role definition '{role.role_name}' is not assignable at scope '{display_scope}'. Its assignable scopes "
            f"are: {', '.join(role.assignable_scopes)}.",
        )
    if principal is None:
        raise BadRequest(
            "PrincipalNotFound",
            f"Principal {req.principal_ref} does not exist in the directory {tenant_id}. Check that you have the "
            "correct principal ID.",
        )
    actual_type = principal_type(principal.kind)
    given_type = req.principal_type or actual_type
    if given_type not in PRINCIPAL_TYPES:
        raise BadRequest(
            "InvalidPrincipalType", f"The principal type '{given_type}' is not valid. Use one of {', '.join(PRINCIPAL_TYPES)}."
        )
    if given_type != actual_type:
        raise BadRequest(
            "UnmatchedPrincipalType",
            f"The PrincipalId '{principal.object_id}' has type '{actual_type}' , which is different from specified "
            f"PrincipalType '{given_type}'.",
        )
    condition, condition_version = condition_of(req.condition, req.condition_version)
    description = req.description
    if description is not None and (not isinstance(description, str) or len(description) > MAX_DESCRIPTION):
        raise BadRequest(
            "InvalidRequestContent", f"'properties.description' must be a string of at most {MAX_DESCRIPTION} characters."
        )
    attributes = assignment_attributes("request", role.name, principal.object_id, actual_type)
    return CheckedAssignment(req, role, principal.object_id, actual_type, condition, condition_version, description, attributes)


def decide(snap: Snapshot, checked: CheckedAssignment, caller_object_id: str) -> tuple[RoleAssignment, bool]:
    """The assignment to store and whether it is new: an existing one changes only its description and condition."""
    req = checked.request
    existing = snap.assignments.get(req.name.lower())
    if existing is not None:
        if (existing.scope.lower() != req.scope.lower() or existing.principal_id != checked.principal_id.lower()
                or existing.role_definition_guid != checked.role.name):
            raise Conflict(
                "RoleAssignmentUpdateNotPermitted",
                "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
            )
        # A copy: the snapshot others read stays as stored until the write commits.
        updated = dataclasses.replace(
            existing, description=checked.description, condition=checked.condition,
            condition_version=checked.condition_version, updated_on=arm_time(), updated_by=caller_object_id,
        )
        return updated, False
    for other in snap.grants_for(checked.principal_id):
        a = other.assignment
        if a.scope.lower() == req.scope.lower() and a.role_definition_guid == checked.role.name and a.condition == checked.condition:
            raise Conflict("RoleAssignmentExists", "The role assignment already exists.")
    created = new_assignment(
        req.scope, checked.role.name, checked.principal_id, checked.principal_type, caller_object_id, name=req.name,
        description=checked.description, condition=checked.condition, condition_version=checked.condition_version,
    )
    return created, True
