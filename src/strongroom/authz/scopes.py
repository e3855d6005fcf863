"""Scopes: the Azure resource ids role assignments attach to, and containment.

Four levels exist here, as in Azure below the management group:
`/subscriptions/{s}`, `…/resourceGroups/{rg}`, `…/providers/Microsoft.KeyVault/vaults/{v}`
and `…/vaults/{v}/secrets/{name}` (single-object scope). Ids compare
case-insensitively; a scope contains a resource when the resource id equals it
or continues it with "/" (so `…/vaults/kv` does not contain `…/vaults/kv2`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from strongroom.errors import BadRequest, ServiceError

_SCOPE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)"
    r"(?:/resourceGroups/(?P<rg>[^/]+)"
    r"(?:/providers/Microsoft\.KeyVault/vaults/(?P<vault>[^/]+)"
    r"(?:/secrets/(?P<secret>[^/]+))?)?)?\Z",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Scope:
    subscription: str
    resource_group: str | None = None
    vault: str | None = None
    secret: str | None = None

    @property
    def level(self) -> str:
        if self.secret:
            return "secret"
        if self.vault:
            return "vault"
        if self.resource_group:
            return "resourceGroup"
        return "subscription"

    @property
    def id(self) -> str:
        """The canonical spelling (Azure's segment casing, names as given)."""
        out = f"/subscriptions/{self.subscription}"
        if self.resource_group:
            out += f"/resourceGroups/{self.resource_group}"
        if self.vault:
            out += f"/providers/Microsoft.KeyVault/vaults/{self.vault}"
        if self.secret:
            out += f"/secrets/{self.secret}"
        return out


def invalid_scope(scope: str) -> ServiceError:
    return BadRequest(
        "InvalidScope",
        f"The scope '{scope}' is not valid. Use a subscription, resource group, key vault or key vault secret id, "
        "e.g. /subscriptions/{subscriptionId}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{vault}.",
    )


def parse_scope(scope: str) -> Scope:
    m = _SCOPE.match(scope.rstrip("/") if scope != "/" else scope)
    if m is None:
        raise invalid_scope(scope)
    return Scope(m.group("sub"), m.group("rg"), m.group("vault"), m.group("secret"))


def contains(scope: str, resource_id: str) -> bool:
    """Does an assignment at `scope` apply to `resource_id`? (both compared lowercased)"""
    s = scope.lower().rstrip("/")
    r = resource_id.lower()
    return r == s or r.startswith(s + "/") or s == ""


def ancestors_or_self(resource_id: str) -> list[str]:
    """`resource_id` and every scope above it, lowercased (for listing inherited assignments)."""
    segs = resource_id.lower().rstrip("/").split("/")
    out = []
    for n in range(3, len(segs) + 1):
        prefix = "/".join(segs[:n])
        # Skip the "/providers" and "/providers/Microsoft.KeyVault" and "/vaults" halves of a pair.
        if _SCOPE.match(prefix):
            out.append(prefix)
    return out
