"""Access review: everyone who can read or change one secret, and what grants it.

Azure has no single call for this; a reviewer would combine role assignments at
four scopes, role definitions and (for legacy vaults) access policies. Here it
is computed by the same evaluation code the data plane uses, so the review and
the enforcement cannot disagree.

"Read" means obtaining the value: getSecret, or backup (a backup blob restores
into any vault of the instance). "Change" means setSecret, update, delete,
recover, restore or purge. Metadata-only access (list, readMetadata) is not
reported. Principals who cannot touch the secret today but can grant themselves
access (role-assignment writers on RBAC vaults, vault writers on access-policy
vaults) are reported with `canGrantAccess`, because they can.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from strongroom.authz import policies
from strongroom.authz.actions import SECRET_DATA_ACTIONS, SECRETS
from strongroom.authz.conditions import assignment_attributes
from strongroom.authz.engine import grant_allows_action, grant_allows_data
from strongroom.authz.roles import SECRETS_OFFICER
from strongroom.authz.scopes import contains, parse_scope
from strongroom.authz.store import Snapshot
from strongroom.keyvault.vaults import Vault

READ_ACTIONS = {f"{SECRETS}/getSecret/action", f"{SECRETS}/backup/action"}
CHANGE_ACTIONS = {
    f"{SECRETS}/setSecret/action", f"{SECRETS}/update/action", f"{SECRETS}/delete",
    f"{SECRETS}/recover/action", f"{SECRETS}/restore/action", f"{SECRETS}/purge/action",
}
READ_PERMISSIONS = {"get", "backup"}
CHANGE_PERMISSIONS = {"set", "delete", "recover", "restore", "purge"}
ASSIGN_ACTION = "Microsoft.Authorization/roleAssignments/write"
VAULT_WRITE = "Microsoft.KeyVault/vaults/write"


@dataclass(frozen=True)
class PrincipalInfo:
    display_name: str | None
    app_id: str | None
    principal_type: str  # "ServicePrincipal", or "Unknown" for a principal no longer in the directory
    kind: str | None = None


Lookup = Callable[[str], PrincipalInfo | None]


def _row(object_id: str, who: PrincipalInfo | None, *, grant_type: str, grant_id: str | None, role: str | None,
         scope: str | None, actions: list[str], can_read: bool, can_change: bool, can_grant: bool) -> dict[str, Any]:
    return {
        "principalId": object_id,
        "principalName": who.display_name if who else None,
        "principalType": who.principal_type if who else "Unknown",
        "appId": who.app_id if who else None,
        "canRead": can_read,
        "canChange": can_change,
        "canGrantAccess": can_grant,
        "grantType": grant_type,
        "roleDefinitionName": role,
        "scope": scope,
        "scopeLevel": parse_scope(scope).level if scope and scope.startswith("/subscriptions/") else None,
        "grant": grant_id,
        "permissions": actions,
    }


def review_secret(snap: Snapshot, vault: Vault, secret_name: str, admin_object_id: str, lookup: Lookup) -> list[dict[str, Any]]:
    resource = f"{vault.resource_id}/secrets/{secret_name}"
    rows: list[dict[str, Any]] = [
        _row(admin_object_id, lookup(admin_object_id), grant_type="InstanceAdministrator", grant_id=None, role=None,
             scope=None, actions=list(SECRET_DATA_ACTIONS), can_read=True, can_change=True, can_grant=True)
    ]
    grants = snap.applying_to(resource)
    if vault.rbac_authorization:
        for g in grants:
            actions = [a for a in SECRET_DATA_ACTIONS if grant_allows_data(g, a)]
            # May this grant write an assignment that gives access to this secret (e.g. Secrets Officer)?
            attrs = assignment_attributes("request", SECRETS_OFFICER, g.assignment.principal_id, "ServicePrincipal")
            can_grant = grant_allows_action(g, ASSIGN_ACTION, attrs)
            can_read = bool(READ_ACTIONS & set(actions))
            can_change = bool(CHANGE_ACTIONS & set(actions))
            if not (can_read or can_change or can_grant):
                continue
            a = g.assignment
            rows.append(_row(a.principal_id, lookup(a.principal_id), grant_type="RoleAssignment", grant_id=a.id,
                             role=g.role.role_name if g.role else None, scope=a.scope, actions=actions,
                             can_read=can_read, can_change=can_change, can_grant=can_grant))
        return rows
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
    # Whoever may write the vault may add an access policy for themselves.
    if vault.created_by and vault.created_by != admin_object_id:
        rows.append(_row(vault.created_by, lookup(vault.created_by), grant_type="VaultCreator", grant_id=None, role=None,
                         scope=vault.resource_id, actions=[], can_read=False, can_change=False, can_grant=True))
    for g in grants:
        if contains(g.scope_lower, vault.resource_id) and grant_allows_action(g, VAULT_WRITE, {}):
            a = g.assignment
            rows.append(_row(a.principal_id, lookup(a.principal_id), grant_type="RoleAssignment", grant_id=a.id,
                             role=g.role.role_name if g.role else None, scope=a.scope, actions=[],
                             can_read=False, can_change=False, can_grant=True))
    return rows
