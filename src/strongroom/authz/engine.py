"""Authorization decisions: Azure RBAC or access policies, per vault.

A vault with `enableRbacAuthorization` is judged by role assignments only: the
caller is allowed when any assignment of theirs, at a scope containing the
resource, has a role whose dataActions cover the operation's data action and
whose notDataActions do not (notDataActions subtract within one role; they are
not a deny across roles). A vault on the access-policy model is judged by its
access policies only. The instance admin is always allowed (reason
"InstanceAdministrator"): it is the break-glass principal of this instance.

Control-plane checks (`may`) evaluate role `actions`/`notActions` the same way,
plus ABAC conditions (Key Vault Data Access Administrator's, or an assignment's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strongroom.authz import policies
from strongroom.authz.actions import policy_permission_for
from strongroom.authz.conditions import Attributes, Context, evaluate
from strongroom.authz.roles import KEY_VAULT_ADMINISTRATOR, RoleDefinition
from strongroom.authz.scopes import contains
from strongroom.authz.store import AuthzStore, Grant, Snapshot, new_assignment
from strongroom.errors import Forbidden, ServiceError
from strongroom.keyvault.vaults import Vault

CREATOR_ASSIGNMENT_DESCRIPTION = "Granted to the vault's creator when the vault was created."


@dataclass(frozen=True)
class Caller:
    object_id: str
    app_id: str
    tenant_id: str
    issuer: str

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Caller:
        return cls(claims["oid"], claims.get("appid", ""), claims["tid"], claims["iss"])

    def describe(self) -> str:
        return f"appid={self.app_id};oid={self.object_id};iss={self.issuer}"


@dataclass(frozen=True)
class Decision:
    """`assignment_id` is the role assignment that granted access (audit's appliedAssignmentId).

    `rbac` says which model decided (False: access policies); `permission` is the
    access-policy permission that was checked ("secrets/get"), for the denial message.
    """

    allowed: bool
    reason: str
    assignment_id: str | None = None
    rbac: bool = True
    permission: str | None = None


def role_allows_data(role: RoleDefinition, action: str) -> bool:
    for p in role.permissions:
        if p.allows_data(action) and (p.condition is None or evaluate(p.condition, Context(action, {}))):
            return True
    return False


def grant_allows_data(g: Grant, action: str) -> bool:
    if g.role is None or not role_allows_data(g.role, action):
        return False
    a = g.assignment
    return a.condition is None or evaluate(a.condition, Context(action, {}))


def grant_allows_action(g: Grant, action: str, attributes: Attributes) -> bool:
    if g.role is None:
        return False
    ctx = Context(action, attributes)
    for p in g.role.permissions:
        if p.allows_action(action) and (p.condition is None or evaluate(p.condition, ctx)):
            return g.assignment.condition is None or evaluate(g.assignment.condition, ctx)
    return False


class Authorizer:
    def __init__(self, admin_object_id: str, store: AuthzStore | None = None) -> None:
        self.admin_object_id = admin_object_id
        self.store = store

    def is_admin(self, caller: Caller) -> bool:
        return caller.object_id == self.admin_object_id

    def snapshot(self) -> Snapshot | None:
        return None if self.store is None else self.store.snapshot()

    # -- data plane -------------------------------------------------------------

    def check(
        self, caller: Caller, vault: Vault, action: str, resource_id: str, policy_permission: str | None = None
    ) -> Decision:
        """May `caller` perform data action `action` on `resource_id` in `vault`?

        `policy_permission` ("secrets/get") is what an access-policy vault checks;
        by default it is derived from the action.
        """
        rbac = vault.rbac_authorization
        if self.is_admin(caller):
            return Decision(True, "InstanceAdministrator", None, rbac)
        if rbac:
            snap = self.snapshot()
            if snap is not None:
                for g in snap.grants_for(caller.object_id):
                    if contains(g.scope_lower, resource_id) and grant_allows_data(g, action):
                        return Decision(True, "RoleAssignment", g.assignment.id, True)
            return Decision(False, "DeniedWithNoValidRBAC", None, True)
        permission = policy_permission or policy_permission_for(action) or action
        if policies.allows(vault.access_policies, caller.object_id, caller.app_id, permission):
            return Decision(True, "AccessPolicy", None, False, permission)
        return Decision(False, "AccessDenied", None, False, permission)

    # -- control plane ----------------------------------------------------------

    def may(self, caller: Caller, action: str, scope: str, attributes: Attributes | None = None) -> Decision:
        """May `caller` perform control-plane `action` (e.g. roleAssignments/write) at `scope`?"""
        if self.is_admin(caller):
            return Decision(True, "InstanceAdministrator")
        snap = self.snapshot()
        if snap is not None:
            for g in snap.grants_for(caller.object_id):
                if contains(g.scope_lower, scope) and grant_allows_action(g, action, attributes or {}):
                    return Decision(True, "RoleAssignment", g.assignment.id)
        return Decision(False, "AuthorizationFailed")

    # -- vault lifecycle --------------------------------------------------------

    def on_vault_created(self, caller: Caller) -> Callable[[Vault], dict[str, bytes | None]]:
        """The extra writes that go in the same batch as a new vault.

        RBAC vault: a "Key Vault Administrator" assignment for the creator at the
        vault's scope. Access-policy vault: an all-permissions policy for the
        creator (added to the vault record itself). Either way, assignments left
        at this scope by a purged vault of the same name are removed, so a new
        vault never inherits the old one's grants.
        """

        def extra(vault: Vault) -> dict[str, bytes | None]:
            if self.store is None:
                return {}
            stale = tuple(self.store.at_or_below(vault.resource_id))
            if vault.rbac_authorization:
                grant = new_assignment(
                    vault.resource_id, KEY_VAULT_ADMINISTRATOR, caller.object_id, "ServicePrincipal",
                    created_by=caller.object_id, description=CREATOR_ASSIGNMENT_DESCRIPTION,
                )
                return self.store.assignment_writes(grant, delete=stale)
            if not any(p["objectId"].lower() == caller.object_id.lower() for p in vault.access_policies):
                vault.access_policies.append(
                    policies.entry(vault.tenant_id, caller.object_id.lower(), policies.all_permissions())
                )
            return self.store.assignment_writes(delete=stale) if stale else {}

        return extra


def forbidden(caller: Caller, vault: Vault, action: str, resource_id: str, decision: Decision) -> ServiceError:
    """Azure's 403 for the model that decided: ForbiddenByRbac or (access policies) AccessDenied."""
    if not decision.rbac:
        return policies.access_denied(
            caller.describe(), vault.name, vault.location, decision.permission or policy_permission_for(action) or action
        )
    message = (
        "Caller is not authorized to perform action on resource.\r\n"
        "If role assignments, deny assignments or role definitions were changed recently, "
        "please observe propagation time.\r\n"
        f"Caller: {caller.describe()}\r\n"
        f"Action: '{action}'\r\n"
        f"Resource: '{resource_id.lower()}'\r\n"
        f"Assignment: {decision.assignment_id or '(not found)'}\r\n"
        "DenyAssignmentId: null\r\n"
        f"DecisionReason: '{decision.reason}' \r\n"
        f"Vault: {vault.name};location={vault.location}\r\n"
    )
    return Forbidden("Forbidden", message, "ForbiddenByRbac")
