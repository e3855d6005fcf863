"""Role definitions: Azure's built-in Key Vault roles, exactly, and custom roles.

The built-in definitions are copied field for field from Azure's published
role definitions (Azure built-in roles, Security category, 2026-02): names,
ids, actions, notActions, dataActions, notDataActions, and the ABAC condition
of Key Vault Data Access Administrator. Their assignable scope is "/" as in Azure.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

from strongroom.authz.actions import matches

ROLE_DEFINITIONS = "providers/Microsoft.Authorization/roleDefinitions"
# The TokenRequest API of the local cluster issuer (server/cluster_api.py), for non-admin callers.
NODE_AGENT_TOKEN_ACTION = "Strongroom.Cluster/serviceAccounts/token/action"
BUILT_IN = "BuiltInRole"
CUSTOM = "CustomRole"


@functools.lru_cache(maxsize=4096)
def _allows_data(permission: Permission, action: str) -> bool:
    # Remembered: every data-plane call asks this, and a permission is immutable.
    return any(matches(p, action) for p in permission.data_actions) and not any(
        matches(p, action) for p in permission.not_data_actions
    )


@dataclass(frozen=True)
class Permission:
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()
    condition: str | None = None
    condition_version: str | None = None

    def allows_data(self, action: str) -> bool:
        """notDataActions subtract from this permission's dataActions only (they are not a deny)."""
        return _allows_data(self, action)

    def allows_action(self, action: str) -> bool:
        return any(matches(p, action) for p in self.actions) and not any(matches(p, action) for p in self.not_actions)

    def to_arm(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "actions": list(self.actions),
            "notActions": list(self.not_actions),
            "dataActions": list(self.data_actions),
            "notDataActions": list(self.not_data_actions),
        }
        if self.condition is not None:
            out["conditionVersion"] = self.condition_version
            out["condition"] = self.condition
        return out

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Permission:
        return cls(
            actions=tuple(rec.get("actions", ())),
            not_actions=tuple(rec.get("not_actions", ())),
            data_actions=tuple(rec.get("data_actions", ())),
            not_data_actions=tuple(rec.get("not_data_actions", ())),
            condition=rec.get("condition"),
            condition_version=rec.get("condition_version"),
        )


@dataclass(frozen=True)
class RoleDefinition:
    name: str  # the GUID
    role_name: str
    description: str
    permissions: tuple[Permission, ...]
    assignable_scopes: tuple[str, ...] = ("/",)
    role_type: str = BUILT_IN
    created_on: str | None = None
    updated_on: str | None = None
    created_by: str | None = None
    updated_by: str | None = None

    @property
    def is_custom(self) -> bool:
        return self.role_type == CUSTOM

    def allows_data(self, action: str) -> bool:
        return any(p.allows_data(action) for p in self.permissions)

    def id_in(self, subscription_id: str) -> str:
        return role_definition_id(subscription_id, self.name)

    def to_arm(self, subscription_id: str) -> dict[str, Any]:
        return {
            "id": self.id_in(subscription_id),
            "type": "Microsoft.Authorization/roleDefinitions",
            "name": self.name,
            "properties": {
                "roleName": self.role_name,
                "type": self.role_type,
                "description": self.description,
                "assignableScopes": list(self.assignable_scopes),
                "permissions": [p.to_arm() for p in self.permissions],
                "createdOn": self.created_on,
                "updatedOn": self.updated_on,
                "createdBy": self.created_by,
                "updatedBy": self.updated_by,
            },
        }

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> RoleDefinition:
        rec = dict(rec)
        rec["permissions"] = tuple(Permission.from_record(p) for p in rec["permissions"])
        rec["assignable_scopes"] = tuple(rec["assignable_scopes"])
        return cls(**rec)


def normalize_role_name(role_name: str) -> str:
    """The form role names are compared in: NFKC, whitespace runs collapsed, trimmed, casefolded.

    So "Key Vault Administrator ", "key  vault administrator" and a fullwidth
    lookalike all collide with the built-in role instead of standing beside it.
    """
    return " ".join(unicodedata.normalize("NFKC", role_name).split()).casefold()


def scopes_to_authorize(existing: RoleDefinition | None, new_scopes: tuple[str, ...]) -> tuple[str, ...]:
    """Every scope a role write must hold roleDefinitions/write on: the new assignable scopes and, for an
    update, the existing ones too -- narrowing a subscription-wide role to one's own vault and widening its
    dataActions would otherwise change what its subscription-wide assignments grant everywhere."""
    seen: dict[str, str] = {}
    for s in (existing.assignable_scopes if existing else ()) + tuple(new_scopes):
        seen.setdefault(s.lower().rstrip("/"), s)
    return tuple(seen.values())


def role_definition_id(subscription_id: str, guid: str) -> str:
    return f"/subscriptions/{subscription_id}/{ROLE_DEFINITIONS}/{guid}"


def guid_of(role_definition_id_or_guid: str) -> str:
    """The GUID at the end of a role definition id (or the GUID itself), lowercased."""
    return role_definition_id_or_guid.rstrip("/").rsplit("/", 1)[-1].lower()


# -- the built-in roles -----------------------------------------------------------

_KV_CONTROL_READ = (
    "Microsoft.Authorization/*/read",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
    "Microsoft.KeyVault/checkNameAvailability/read",
    "Microsoft.KeyVault/deletedVaults/read",
    "Microsoft.KeyVault/locations/*/read",
    "Microsoft.KeyVault/vaults/*/read",
    "Microsoft.KeyVault/operations/read",
)
_RBAC_ONLY = " Only works for key vaults that use the 'Azure role-based access control' permission model."

# The eight roles Key Vault Data Access Administrator may assign or remove.
DATA_ACCESS_ADMIN_ASSIGNABLE = (
    "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "a4417e6f-fecd-4de8-b567-7b0420556985",
    "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",
    "e147488a-f6f5-4113-8e2d-b22465e65bf6",
    "12338af0-0e69-4776-bea7-57ae8d297424",
    "21090545-7ca7-4776-b22c-e363652d74d2",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "4633458b-17de-408a-b874-0445c86b69e6",
)
_GUIDS = ", ".join(DATA_ACCESS_ADMIN_ASSIGNABLE)
DATA_ACCESS_ADMIN_CONDITION = (
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
    f"(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{{{_GUIDS}}})) AND "
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR "
    f"(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{{{_GUIDS}}}))"
)


def _builtin(name: str, role_name: str, description: str, **perm: Any) -> RoleDefinition:
    return RoleDefinition(name=name, role_name=role_name, description=description, permissions=(Permission(**perm),))


BUILTIN_ROLES: tuple[RoleDefinition, ...] = (
    _builtin(
        "00482a5a-887f-4fb3-b363-3b7fe8e74483",
        "Key Vault Administrator",
        "Perform all data plane operations on a key vault and all objects in it, including certificates, keys, and "
        "secrets. Cannot manage key vault resources or manage role assignments." + _RBAC_ONLY,
        actions=_KV_CONTROL_READ,
        data_actions=("Microsoft.KeyVault/vaults/*",),
    ),
    _builtin(
        "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba",
        "Key Vault Certificate User",
        "Read certificate contents." + _RBAC_ONLY,
        data_actions=(
            "Microsoft.KeyVault/vaults/certificates/read",
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            "Microsoft.KeyVault/vaults/keys/read",
        ),
    ),
    _builtin(
        "a4417e6f-fecd-4de8-b567-7b0420556985",
        "Key Vault Certificates Officer",
        "Perform any action on the certificates of a key vault, except manage permissions." + _RBAC_ONLY,
        actions=_KV_CONTROL_READ,
        data_actions=(
            "Microsoft.KeyVault/vaults/certificatecas/*",
            "Microsoft.KeyVault/vaults/certificates/*",
            "Microsoft.KeyVault/vaults/certificatecontacts/write",
        ),
    ),
    _builtin(
        "f25e0fa2-a7c8-4377-a976-54943a77a395",
        "Key Vault Contributor",
        "Lets you manage key vaults, but not access to them.",
        actions=(
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.KeyVault/*",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Support/*",
        ),
        not_actions=(
            "Microsoft.KeyVault/locations/deletedVaults/purge/action",
            "Microsoft.KeyVault/hsmPools/*",
            "Microsoft.KeyVault/managedHsms/*",
        ),
    ),
    _builtin(
        "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",
        "Key Vault Crypto Officer",
        "Perform any action on the keys of a key vault, except manage permissions." + _RBAC_ONLY,
        actions=_KV_CONTROL_READ,
        data_actions=("Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/keyrotationpolicies/*"),
    ),
    _builtin(
        "e147488a-f6f5-4113-8e2d-b22465e65bf6",
        "Key Vault Crypto Service Encryption User",
        "Read metadata of keys and perform wrap/unwrap operations." + _RBAC_ONLY,
        actions=(
            "Microsoft.EventGrid/eventSubscriptions/write",
            "Microsoft.EventGrid/eventSubscriptions/read",
            "Microsoft.EventGrid/eventSubscriptions/delete",
        ),
        data_actions=(
            "Microsoft.KeyVault/vaults/keys/read",
            "Microsoft.KeyVault/vaults/keys/wrap/action",
            "Microsoft.KeyVault/vaults/keys/unwrap/action",
        ),
    ),
    _builtin(
        "08bbd89e-9f13-488c-ac41-acfcb10c90ab",
        "Key Vault Crypto Service Release User",
        "Release keys." + _RBAC_ONLY,
        data_actions=("Microsoft.KeyVault/vaults/keys/release/action",),
    ),
    _builtin(
        "12338af0-0e69-4776-bea7-57ae8d297424",
        "Key Vault Crypto User",
        "Perform cryptographic operations using keys." + _RBAC_ONLY,
        data_actions=(
            "Microsoft.KeyVault/vaults/keys/read",
            "Microsoft.KeyVault/vaults/keys/update/action",
            "Microsoft.KeyVault/vaults/keys/backup/action",
            "Microsoft.KeyVault/vaults/keys/encrypt/action",
            "Microsoft.KeyVault/vaults/keys/decrypt/action",
            "Microsoft.KeyVault/vaults/keys/wrap/action",
            "Microsoft.KeyVault/vaults/keys/unwrap/action",
            "Microsoft.KeyVault/vaults/keys/sign/action",
            "Microsoft.KeyVault/vaults/keys/verify/action",
        ),
    ),
    _builtin(
        "8b54135c-b56d-4d72-a534-26097cfdc8d8",
        "Key Vault Data Access Administrator",
        "Manage access to Azure Key Vault by adding or removing role assignments for the Key Vault Administrator, Key "
        "Vault Certificates Officer, Key Vault Crypto Officer, Key Vault Crypto Service Encryption User, Key Vault "
        "Crypto User, Key Vault Reader, Key Vault Secrets Officer, or Key Vault Secrets User roles. Includes an ABAC "
        "condition to constrain role assignments.",
        actions=(
            "Microsoft.Authorization/roleAssignments/write",
            "Microsoft.Authorization/roleAssignments/delete",
            "Microsoft.Authorization/*/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Resources/subscriptions/read",
            "Microsoft.Management/managementGroups/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Support/*",
            "Microsoft.KeyVault/vaults/*/read",
        ),
        condition=DATA_ACCESS_ADMIN_CONDITION,
        condition_version="2.0",
    ),
    _builtin(
        "21090545-7ca7-4776-b22c-e363652d74d2",
        "Key Vault Reader",
        "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values such as "
        "secret contents or key material." + _RBAC_ONLY,
        actions=_KV_CONTROL_READ,
        data_actions=("Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"),
    ),
    _builtin(
        "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        "Key Vault Secrets Officer",
        "Perform any action on the secrets of a key vault, except manage permissions." + _RBAC_ONLY,
        actions=_KV_CONTROL_READ,
        data_actions=("Microsoft.KeyVault/vaults/secrets/*",),
    ),
    _builtin(
        "4633458b-17de-408a-b874-0445c86b69e6",
        "Key Vault Secrets User",
        "Read secret contents." + _RBAC_ONLY,
        data_actions=(
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ),
    ),
    # Strongroom's own: what a node agent (`strongroom mount`/`run` on a machine) needs, and nothing else.
    _builtin(
        "7da02982-015f-45bf-a3ed-d8d258d2a72c",
        "Strongroom Node Agent",
        "Request service-account tokens from the instance's local cluster issuer, as a kubelet does for its pods. "
        "Whoever holds it can act as any workload identity federated with that issuer; assign it to node agents only.",
        actions=(NODE_AGENT_TOKEN_ACTION,),
    ),
)

BUILTIN_BY_GUID: dict[str, RoleDefinition] = {r.name: r for r in BUILTIN_ROLES}
KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
NODE_AGENT = "7da02982-015f-45bf-a3ed-d8d258d2a72c"
