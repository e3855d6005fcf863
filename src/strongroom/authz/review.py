"""Access review: everyone who can read or change one secret, and what grants it.

Azure has no single call for this; a reviewer would combine role assignments at
four scopes, role definitions and (for legacy vaults) access policies. Here it
is computed by the same evaluation code the data plane uses, so the review and
the enforcement cannot disagree.

"Read" means obtaining the value: getSecret, or backup (a backup blob restores
into any vault of the instance). "Change" means setSecret, update, delete,
recover, restore or purge. Metadata-only access (list, readMetadata) is not
reported.

Principals who cannot touch the secret today but can get it by changing who has
access are reported too, with `canGrantAccess`, `indirect` and the routes in
`via` -- the same rules authz/control.py and the role endpoints enforce:
- `RoleAssignmentWrite`: may assign itself a role that reads the secret
  (roleAssignments/write at a scope containing it, within any ABAC condition);
- `PermissionModelSwitch` (RBAC vault) / `AccessPolicyWrite` (access-policy
  vault): roleAssignments/write at the vault with no condition in the way, so it
  may switch the model and write itself an access policy;
- `RoleDefinitionWrite`: holds a custom role that applies to the secret and may
  rewrite that role (roleDefinitions/write on every one of its assignable scopes);
- `ServiceAccountToken`: may request service-account tokens from the local cluster
  issuer ("Strongroom Node Agent") while a principal that reads or changes the
  secret trusts that issuer through a federated credential -- it can act as it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strongroom.authz import policies
from strongroom.authz.actions import SECRET_DATA_ACTIONS, SECRETS
from strongroom.authz.conditions import Attributes, assignment_attributes
from strongroom.authz.control import GRANT_ACCESS
from strongroom.authz.engine import grant_allows_action, grant_allows_data
from strongroom.authz.roles import NODE_AGENT_TOKEN_ACTION, SECRETS_OFFICER, RoleDefinition
from strongroom.authz.scopes import contains, parse_scope
from strongroom.authz.store import Grant, Snapshot
from strongroom.keyvault.vaults import Vault

READ_ACTIONS = {f"{SECRETS}/getSecret/action", f"{SECRETS}/backup/action"}
CHANGE_ACTIONS = {
    f"{SECRETS}/setSecret/action", f"{SECRETS}/update/action", f"{SECRETS}/delete",
    f"{SECRETS}/recover/action", f"{SECRETS}/restore/action", f"{SECRETS}/purge/action",
}
READ_PERMISSIONS = {"get", "backup"}
CHANGE_PERMISSIONS = {"set", "delete", "recover", "restore", "purge"}
ASSIGN_ACTION = GRANT_ACCESS
ROLE_WRITE = "Microsoft.Authorization/roleDefinitions/write"


@dataclass(frozen=True)
class PrincipalInfo:
    display_name: str | None
    app_id: str | None
    principal_type: str  # "ServicePrincipal", or "Unknown" for a principal no longer in the directory
    kind: str | None = None


Lookup = Callable[[str], PrincipalInfo | None]
# Does this principal (object id) accept tokens of the local cluster issuer (a federated credential)?
Federated = Callable[[str], bool]


def _row(object_id: str, who: PrincipalInfo | None, *, grant_type: str, grant_id: str | None, role: str | None,
         scope: str | None, actions: list[str], can_read: bool, can_change: bool, can_grant: bool,
         via: list[str] | None = None) -> dict[str, Any]:
    return {
        "principalId": object_id,
        "principalName": who.display_name if who else None,
        "principalType": who.principal_type if who else "Unknown",
        "appId": who.app_id if who else None,
        "canRead": can_read,
        "canChange": can_change,
        "canGrantAccess": can_grant,
        # Gets the data only by changing who has access (see the module docstring for the routes).
        "indirect": bool(via) and not (can_read or can_change),
        "via": via or [],
        "grantType": grant_type,
        "roleDefinitionName": role,
        "scope": scope,
        "scopeLevel": parse_scope(scope).level if scope and scope.startswith("/subscriptions/") else None,
        "grant": grant_id,
        "permissions": actions,
    }


def _principal_may(snap: Snapshot, principal_id: str, action: str, scope: str, attributes: Attributes) -> bool:
    return any(contains(g.scope_lower, scope) and grant_allows_action(g, action, attributes)
               for g in snap.grants_for(principal_id))


def _may_rewrite(snap: Snapshot, principal_id: str, role: RoleDefinition | None) -> bool:
    """May this principal rewrite `role` (a custom role), i.e. write role definitions on all its scopes?"""
    return (role is not None and role.is_custom and bool(role.assignable_scopes)
            and all(_principal_may(snap, principal_id, ROLE_WRITE, s, {}) for s in role.assignable_scopes))


def _indirect_routes(snap: Snapshot, g: Grant, vault: Vault) -> list[str]:
    """How the holder of grant `g` could obtain the secret by changing access (see the module docstring)."""
    a, via = g.assignment, []
    attrs = assignment_attributes("request", SECRETS_OFFICER, a.principal_id, "ServicePrincipal")
    at_vault = contains(g.scope_lower, vault.resource_id)
    if vault.rbac_authorization and grant_allows_action(g, ASSIGN_ACTION, attrs):
        via.append("RoleAssignmentWrite")
    if at_vault and grant_allows_action(g, ASSIGN_ACTION, {}):
        via.append("PermissionModelSwitch" if vault.rbac_authorization else "AccessPolicyWrite")
    if vault.rbac_authorization and _may_rewrite(snap, a.principal_id, g.role):
        via.append("RoleDefinitionWrite")
    return via


def _token_requesters(snap: Snapshot, vault: Vault, rows: list[dict[str, Any]], federated: Federated | None,
                      lookup: Lookup) -> list[dict[str, Any]]:
    """Rows for node agents who can act as a federated workload that reaches the secret."""
    if federated is None:
        return []
    reached = {r["principalId"] for r in rows if (r["canRead"] or r["canChange"]) and r["grantType"] != "InstanceAdministrator"}
    if not any(federated(oid) for oid in reached):
        return []
    subscription = f"/subscriptions/{vault.subscription_id}"
    out = []
    for grants in snap.by_principal.values():
        for g in grants:
            if contains(g.scope_lower, subscription) and grant_allows_action(g, NODE_AGENT_TOKEN_ACTION, {}):
                a = g.assignment
                out.append(_row(a.principal_id, lookup(a.principal_id), grant_type="RoleAssignment", grant_id=a.id,
                                role=g.role.role_name if g.role else None, scope=a.scope, actions=[],
                                can_read=False, can_change=False, can_grant=True, via=["ServiceAccountToken"]))
    return out


def review_secret(snap: Snapshot, vault: Vault, secret_name: str, admin_object_id: str, lookup: Lookup,
                  federated: Federated | None = None) -> list[dict[str, Any]]:
    resource = f"{vault.resource_id}/secrets/{secret_name}"
    rows: list[dict[str, Any]] = [
        _row(admin_object_id, lookup(admin_object_id), grant_type="InstanceAdministrator", grant_id=None, role=None,
             scope=None, actions=list(SECRET_DATA_ACTIONS), can_read=True, can_change=True, can_grant=True)
    ]
    grants = snap.applying_to(resource)
    for g in grants:
        a = g.assignment
        if vault.rbac_authorization:
            actions = [x for x in SECRET_DATA_ACTIONS if grant_allows_data(g, x)]
            can_read, can_change = bool(READ_ACTIONS & set(actions)), bool(CHANGE_ACTIONS & set(actions))
        else:
            actions, can_read, can_change = [], False, False  # assignments decide nothing on an access-policy vault
        via = _indirect_routes(snap, g, vault)
        if not (can_read or can_change or via):
            continue
        rows.append(_row(a.principal_id, lookup(a.principal_id), grant_type="RoleAssignment", grant_id=a.id,
                         role=g.role.role_name if g.role else None, scope=a.scope, actions=actions,
                         can_read=can_read, can_change=can_change, can_grant=bool(via), via=via))
    if not vault.rbac_authorization:
        rows += _policy_rows(vault, lookup)
    return rows + _token_requesters(snap, vault, rows, federated, lookup)


def _policy_rows(vault: Vault, lookup: Lookup) -> list[dict[str, Any]]:
    rows = []
    for p in vault.access_policies:
        perms = sorted({v.lower() for v in p["permissions"].get("secrets", [])})
        if "all" in perms:
            perms = list(policies.PERMISSIONS["secrets"])
        can_read = bool(READ_PERMISSIONS & set(perms))
        can_change = bool(CHANGE_PERMISSIONS & set(perms))
        if not (can_read or can_change):
            continue
        oid = p["objectId"]
        rows.append(_row(oid, lookup(oid), grant_type="AccessPolicy", grant_id=f"{vault.resource_id}/accessPolicies/{oid}",
                         role=None, scope=vault.resource_id, actions=[f"secrets/{x}" for x in perms],
                         can_read=can_read, can_change=can_change, can_grant=False))
    return rows
