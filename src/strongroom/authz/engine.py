"""Authorization decisions.

For now the model is the one of a freshly created Azure vault before anyone is
granted a role: the instance admin and the principal that created the vault may
do everything; everybody else is denied in Azure's words. Role assignments and
access policies plug in behind `Authorizer.check` without the callers changing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.keyvault.errors import KeyVaultError
from strongroom.keyvault.vaults import Vault


@dataclass(frozen=True)
class Caller:
    object_id: str
    app_id: str
    tenant_id: str
    issuer: str

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> "Caller":
        return cls(claims["oid"], claims.get("appid", ""), claims["tid"], claims["iss"])

    def describe(self) -> str:
        return f"appid={self.app_id};oid={self.object_id};iss={self.issuer}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    assignment_id: str | None = None


class Authorizer:
    def __init__(self, admin_object_id: str) -> None:
        self.admin_object_id = admin_object_id

    def is_admin(self, caller: Caller) -> bool:
        return caller.object_id == self.admin_object_id

    def check(self, caller: Caller, vault: Vault, action: str, resource_id: str) -> Decision:
        if self.is_admin(caller):
            return Decision(True, "InstanceAdministrator")
        if caller.object_id == vault.created_by:
            return Decision(True, "VaultCreator")
        return Decision(False, "DeniedWithNoValidRBAC")


def forbidden(caller: Caller, vault: Vault, action: str, resource_id: str, decision: Decision) -> KeyVaultError:
    message = (
        "Caller is not authorized to perform action on resource.\r\n"
        "If role assignments, deny assignments or role definitions were changed recently, "
        "please observe propagation time.\r\n"
        f"Caller: {caller.describe()}\r\n"
        f"Action: '{action}'\r\n"
        f"Resource: '{resource_id.lower()}'\r\n"
        "Assignment: (not found)\r\n"
        "DenyAssignmentId: null\r\n"
        f"DecisionReason: '{decision.reason}' \r\n"
        f"Vault: {vault.name};location={vault.location}\r\n"
    )
    return KeyVaultError(403, "Forbidden", message, "ForbiddenByRbac")
