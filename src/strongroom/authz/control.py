"""Control-plane rules: who may read a vault, change it, or change who can read its data.

The rule that matters most: anything that decides *who gets data access* needs
`Microsoft.Authorization/roleAssignments/write` at the vault's scope (or being
the instance admin), as Azure requires for changing a vault's permission model.
That covers switching `enableRbacAuthorization` either way and writing access
policies (vault PUT/PATCH with `accessPolicies`, `accessPolicies/{add,replace,
remove}`). Without it, a principal with only `Microsoft.KeyVault/vaults/write`
(Key Vault Contributor) -- or a vault's creator whose assignment was removed --
could switch the vault to access policies, grant itself `get` and read every
secret. The creator has no bypass here.

Other vault management (tags, retention, delete, recover, read) needs the
matching `Microsoft.KeyVault/...` action; the vault's creator keeps those
(Strongroom's documented creator rights), but never the grant-access ones.
"""

from __future__ import annotations

from typing import Any

from strongroom.authz.conditions import Attributes
from strongroom.authz.engine import Authorizer, Caller, Decision
from strongroom.errors import BadRequest, Forbidden, NotFound, ServiceError
from strongroom.keyvault.vaults import Vault

GRANT_ACCESS = "Microsoft.Authorization/roleAssignments/write"
VAULT_READ = "Microsoft.KeyVault/vaults/read"
VAULT_WRITE = "Microsoft.KeyVault/vaults/write"
VAULT_DELETE = "Microsoft.KeyVault/vaults/delete"
ACCESS_POLICY_WRITE = "Microsoft.KeyVault/vaults/accessPolicies/write"
DELETED_VAULT_READ = "Microsoft.KeyVault/locations/deletedVaults/read"
DELETED_VAULT_PURGE = "Microsoft.KeyVault/locations/deletedVaults/purge/action"


def authorization_failed(caller: Caller, action: str, scope: str) -> ServiceError:
    """ARM's 403 (code AuthorizationFailed), worded as ARM words it."""
    return Forbidden(
        "AuthorizationFailed",
        f"The client '{caller.app_id}' with object id '{caller.object_id}' does not have authorization to perform "
        f"action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please "
        "refresh your credentials.",
    )


def require(authorizer: Authorizer, caller: Caller, action: str, scope: str, attributes: Attributes | None = None,
            target: str | None = None) -> Decision:
    """The decision for `action` at `scope`; raises ARM's 403 when it is a denial."""
    decision = authorizer.may(caller, action, scope, attributes)
    if not decision.allowed:
        raise authorization_failed(caller, action, target or scope)
    return decision


def sees_subscription(authorizer: Authorizer, caller: Caller) -> bool:
    """Azure lists a subscription to whoever holds a role assignment in it (the admin always sees it)."""
    if authorizer.is_admin(caller):
        return True
    snap = authorizer.snapshot()
    return snap is not None and bool(snap.grants_for(caller.object_id))


def require_subscription(authorizer: Authorizer, caller: Caller, subscription: str, ours: str) -> None:
    """404 for another subscription or one the caller cannot see (Azure does not tell the two apart)."""
    if subscription.lower() != ours.lower() or not sees_subscription(authorizer, caller):
        raise NotFound("SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")


def is_creator(caller: Caller, vault: Vault) -> bool:
    return bool(vault.created_by) and caller.object_id.lower() == vault.created_by.lower()


def may_manage(authorizer: Authorizer, caller: Caller, vault: Vault, action: str) -> bool:
    """Vault management that does not grant data access: the admin, the creator, or a role with `action`."""
    return authorizer.is_admin(caller) or is_creator(caller, vault) or authorizer.may(caller, action, vault.resource_id).allowed


def require_manage(authorizer: Authorizer, caller: Caller, vault: Vault, action: str) -> None:
    if not may_manage(authorizer, caller, vault, action):
        raise authorization_failed(caller, action, vault.resource_id)


def may_read(authorizer: Authorizer, caller: Caller, vault: Vault) -> bool:
    """`Microsoft.KeyVault/vaults/read` on this vault (lists keep only these; a GET of another is a 403)."""
    return may_manage(authorizer, caller, vault, VAULT_READ)


def may_grant_access(authorizer: Authorizer, caller: Caller, vault: Vault) -> Decision:
    """May `caller` change who can reach this vault's data (permission model, access policies)?

    Evaluated with no request attributes: a conditioned delegate such as Key Vault
    Data Access Administrator, whose condition constrains which *roles* it may
    assign, does not get to rewrite the permission model or access policies.
    """
    return authorizer.may(caller, GRANT_ACCESS, vault.resource_id, {})


def _policy_key(entry: dict[str, Any]) -> tuple[str, str, tuple[tuple[str, tuple[str, ...]], ...]]:
    perms = entry.get("permissions") or {}
    return (
        str(entry.get("objectId", "")).lower(),
        str(entry.get("applicationId") or "").lower(),
        tuple(sorted((k, tuple(sorted(str(v).lower() for v in (perms.get(k) or [])))) for k in perms)),
    )


def policies_differ(current: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> bool:
    """Does `wanted` change who holds which permission (order and case aside)?

    `keyvault update --tags …` PUTs the vault back with its policies unchanged; that
    must not need the grant-access permission, while any real change does.
    """
    return sorted(map(_policy_key, current)) != sorted(map(_policy_key, wanted))


def permission_model_flag(value: Any) -> bool | None:
    """`enableRbacAuthorization` as given: a JSON boolean or absent. Anything else is refused, because a
    falsy non-boolean (0, "") stored as is would put the vault on access policies unnoticed."""
    if value is None or isinstance(value, bool):
        return value
    raise BadRequest("BadRequest", "The property 'enableRbacAuthorization' must be a boolean.")


def grant_changes(existing: Vault, rbac_authorization: Any, access_policies: list[dict[str, Any]] | None) -> list[str]:
    """What a vault update changes about data access: 'permission model', 'access policies' (empty: nothing)."""
    changes = []
    flag = permission_model_flag(rbac_authorization)
    if flag is not None and flag != existing.rbac_authorization:
        changes.append("permission model")
    if access_policies is not None and policies_differ(existing.access_policies, access_policies):
        changes.append("access policies")
    return changes


def require_vault_update(authorizer: Authorizer, caller: Caller, existing: Vault, *, rbac_authorization: Any = None,
                         access_policies: list[dict[str, Any]] | None = None,
                         manage_action: str = VAULT_WRITE) -> Decision | None:
    """Authorize an update of an existing vault; returns the grant-access decision when one was needed.

    Plain management (`manage_action`) first, then -- when the update changes the
    permission model or the access policies -- roleAssignments/write at the vault.
    """
    require_manage(authorizer, caller, existing, manage_action)
    if not grant_changes(existing, rbac_authorization, access_policies):
        return None
    decision = may_grant_access(authorizer, caller, existing)
    if not decision.allowed:
        raise authorization_failed(caller, GRANT_ACCESS, existing.resource_id)
    return decision
