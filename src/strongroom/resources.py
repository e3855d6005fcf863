"""Azure Resource Manager's view across the domains: the subscription, the tenant, resource groups and what lives in them.

The real `az` CLI reads these before it does anything else: `az login` lists
subscriptions (and tenants), `az keyvault create -g rg` reads the group's
location, `az keyvault list` and `az keyvault show --name` without `-g` use the
generic resource listing. The shapes follow ARM's `Subscriptions - List`,
`Tenants - List`, `Resource Groups` and `Resources - List` (api-versions
2021-04-01 and later; the fields are the same since 2019).

This module knows vaults and managed identities (the two resource types an
instance holds) so that it can say whether a group is empty and list resources
by type; it knows nothing of HTTP. Visibility follows Azure: a principal sees
the subscription if it holds a role assignment anywhere in it, and sees a
group or resource if it may read it (`*/read` through a role assignment).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strongroom.identity.directory import DEFAULT_LOCATION, MI_TYPE, Directory, DirectoryError, Tenant
from strongroom.keyvault.vaults import VaultRegistry

VAULT_TYPE = "Microsoft.KeyVault/vaults"
RG_TYPE = "Microsoft.Resources/resourceGroups"
RG_READ = "Microsoft.Resources/subscriptions/resourceGroups/read"
RG_WRITE = "Microsoft.Resources/subscriptions/resourceGroups/write"
RG_DELETE = "Microsoft.Resources/subscriptions/resourceGroups/delete"
READ_ACTION = {VAULT_TYPE: "Microsoft.KeyVault/vaults/read", MI_TYPE: f"{MI_TYPE}/read"}
DISPLAY_NAME = "Strongroom"
MAX_TAGS = 50  # ARM's limit per resource
# ARM's location names are short ASCII words ("westeurope", "local"); display names ("West Europe") are accepted too.
_LOCATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{0,63}\Z")

# $filter of Resources - List: `resourceType eq '…'`, `name eq '…'`, `resourceGroup eq '…'` joined by `and`.
_CLAUSE = re.compile(r"^\s*(resourceType|name|resourceGroup)\s+eq\s+'((?:[^']|'')*)'\s*\Z", re.IGNORECASE)


class FilterError(ValueError):
    """The $filter is not one this listing understands."""


@dataclass(frozen=True)
class GenericResource:
    id: str
    name: str
    type: str
    location: str
    resource_group: str
    tags: dict[str, str]

    def to_arm(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type, "location": self.location, "tags": self.tags}


def subscription_json(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{tenant.subscription_id}",
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": tenant.subscription_id,
        "tenantId": tenant.tenant_id,
        "displayName": DISPLAY_NAME,
        "state": "Enabled",
        "subscriptionPolicies": {"locationPlacementId": "Internal_2014-09-01", "quotaId": "Internal_2014-09-01", "spendingLimit": "Off"},
        "tags": {},
    }


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": f"/tenants/{tenant.tenant_id}",
        "tenantId": tenant.tenant_id,
        "tenantCategory": "Home",
        "displayName": DISPLAY_NAME,
        "domains": [],
        "defaultDomain": None,
        "tenantType": "AAD",
    }


def resource_group_id(tenant: Tenant, name: str) -> str:
    return f"/subscriptions/{tenant.subscription_id}/resourceGroups/{name}"


def resource_group_json(tenant: Tenant, rec: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": resource_group_id(tenant, rec["name"]),
        "name": rec["name"],
        "type": RG_TYPE,
        "location": rec.get("location") or DEFAULT_LOCATION,
        "tags": rec.get("tags") or {},
        "properties": {"provisioningState": "Succeeded"},
    }


def check_location(location: Any) -> str:
    if not isinstance(location, str) or not _LOCATION.match(location):
        raise DirectoryError(
            400, "LocationRequired" if not location else "InvalidLocation",
            "The location property is required for this definition." if not location
            else f"The provided location '{location}' is not valid: use a location name such as 'westeurope'.",
        )
    return location.replace(" ", "").lower()


def check_tags(tags: Any) -> dict[str, str] | None:
    """ARM's tag rules: at most 50, names up to 512 characters, values up to 256."""
    if tags is None:
        return None
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise DirectoryError(400, "InvalidTag", "The 'tags' property must be an object whose values are strings.")
    if len(tags) > MAX_TAGS:
        raise DirectoryError(400, "InvalidTagCount", f"The number of tags ({len(tags)}) exceeds the maximum of {MAX_TAGS}.")
    for k, v in tags.items():
        if not k or len(k) > 512 or len(v) > 256 or any(c in k for c in "<>%&\\?/"):
            raise DirectoryError(
                400, "InvalidTagNameCharacters" if k and len(k) <= 512 else "InvalidTag",
                f"The tag '{k[:64]}' is not valid: names are 1-512 characters without <>%&\\?/, values at most 256.",
            )
    return dict(tags)


def parse_filter(raw: str | None) -> dict[str, str]:
    """`resourceType eq 'X' and name eq 'Y'` -> {"resourcetype": "X", "name": "Y"} (values compared case-insensitively)."""
    out: dict[str, str] = {}
    if not raw or not raw.strip():
        return out
    if len(raw) > 1024:
        raise FilterError("The $filter is longer than 1024 characters.")
    for part in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE):
        m = _CLAUSE.match(part)
        if m is None:
            raise FilterError(
                f"The $filter '{raw[:200]}' is not supported: use resourceType, name and resourceGroup with 'eq', joined by 'and'."
            )
        out[m.group(1).lower()] = m.group(2).replace("''", "'")
    return out


class ResourceManager:
    """The subscription's resource groups and the resources in them (vaults and user-assigned identities)."""

    def __init__(self, tenant: Tenant, directory: Directory, vaults: VaultRegistry) -> None:
        self.tenant = tenant
        self.directory = directory
        self.vaults = vaults

    def resources(self, resource_group: str | None = None) -> list[GenericResource]:
        sub = self.tenant.subscription_id
        found = [
            GenericResource(v.resource_id, v.name, VAULT_TYPE, v.location, v.resource_group, v.tags)
            for v in self.vaults.list()
        ]
        found += [
            GenericResource(
                p.resource_id or "", p.name or p.display_name, MI_TYPE, p.location or DEFAULT_LOCATION,
                p.resource_group or "", p.tags,
            )
            for p in self.directory.managed_identities()
            if p.resource_id and p.resource_id.lower().startswith(f"/subscriptions/{sub}/".lower())
        ]
        if resource_group is not None:
            found = [r for r in found if r.resource_group.lower() == resource_group.lower()]
        return sorted(found, key=lambda r: r.id.lower())

    def listing(
        self, filters: dict[str, str], may_read: Callable[[GenericResource], bool], resource_group: str | None = None
    ) -> list[GenericResource]:
        """Resources - List: those matching every filter clause that the caller may read."""
        rg = filters.get("resourcegroup")
        if resource_group is not None and rg is not None and rg.lower() != resource_group.lower():
            return []
        out = []
        for r in self.resources(resource_group or rg):
            if "resourcetype" in filters and r.type.lower() != filters["resourcetype"].lower():
                continue
            if "name" in filters and r.name.lower() != filters["name"].lower():
                continue
            if may_read(r):
                out.append(r)
        return out

    def groups(self) -> list[dict[str, Any]]:
        return sorted(self.directory.resource_groups(), key=lambda g: g["name"].lower())

    def delete_group(self, name: str) -> bool:
        """Delete an empty group; False if there was none. Azure would delete what is inside: here that stays explicit."""
        if self.directory.resource_group(name) is None:
            return False
        inside = self.resources(name)
        if inside:
            listed = ", ".join(f"{r.type}/{r.name}" for r in inside[:10])
            raise DirectoryError(
                409,
                "ResourceGroupNotEmpty",
                f"The resource group '{name}' still holds {len(inside)} resource(s): {listed}. Delete them first; "
                "Strongroom does not delete a group's contents with it.",
            )
        self.directory.delete_resource_group(name)
        return True
