"""Vaults: the containers, their properties, soft delete and purge."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from strongroom.barrier import SealedStore, records
from strongroom.keyvault.errors import KeyVaultError
from strongroom.keyvault.layout import VAULT_CONTENTS
from strongroom.keyvault.validation import check_resource_group, check_vault_name
from strongroom.util.clock import now

DAY = 86400


@dataclass
class Vault:
    name: str
    subscription_id: str
    resource_group: str
    tenant_id: str
    location: str = "local"
    retention_days: int = 90
    purge_protection: bool = False
    rbac_authorization: bool = True
    created_by: str = ""
    created: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    deleted: int | None = None
    scheduled_purge: int | None = None
    # Access policies (ARM's accessPolicies entries); they decide only while rbac_authorization is False.
    access_policies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.KeyVault/vaults/{self.name}"
        )

    @property
    def recovery_level(self) -> str:
        base = "Recoverable" if self.retention_days == 90 else "CustomizedRecoverable"
        return base if self.purge_protection else base + "+Purgeable"

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Vault:
        """A stored vault, read defensively: releases before strict body types stored what a PUT sent
        (tags as a list, "false" as purge protection). Such a record is read as the safe meaning:
        purge protection only when stored as true, tags only as a map of strings."""
        vault = cls(**rec)
        if not isinstance(vault.tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in vault.tags.items()):
            vault.tags = {}
        if not isinstance(vault.purge_protection, bool):
            vault.purge_protection = str(vault.purge_protection).lower() == "true"
        if not isinstance(vault.rbac_authorization, bool):
            vault.rbac_authorization = vault.rbac_authorization is not False  # a stored non-boolean keeps RBAC, the default
        if isinstance(vault.retention_days, bool) or not isinstance(vault.retention_days, int) or not 7 <= vault.retention_days <= 90:
            vault.retention_days = 90
        if not isinstance(vault.location, str):
            vault.location = "local"
        if not isinstance(vault.access_policies, list):
            vault.access_policies = []
        return vault


def _vault_key(name: str) -> str:
    return f"vaults/{name.lower()}"


def _copy(vault: Vault) -> Vault:
    """A copy callers may change (they do, before writing it back) without touching the cached one."""
    new = object.__new__(Vault)
    new.__dict__.update(vault.__dict__)
    new.tags = dict(vault.tags)
    new.access_policies = [dict(p) for p in vault.access_policies]
    return new


class VaultRegistry:
    """The vaults, with their records kept in memory while the store's change token says nothing changed.

    Every data-plane request looks its vault up; a request that pinned the store's change
    counter gets the parsed record from memory unless some process or replica committed
    anything since it was read. Only vaults that exist are kept (the names come from
    unauthenticated Host headers), so the cache holds at most one entry per vault.
    """

    def __init__(self, store: SealedStore) -> None:
        self.store = store
        self._cache: dict[str, tuple[object, Vault]] = {}

    def get(self, name: str, include_deleted: bool = False) -> Vault | None:
        key = _vault_key(name)
        token = self.store.change_token()
        hit = self._cache.get(key) if token is not None else None
        if hit is not None and hit[0] == token:
            vault = _copy(hit[1])
        else:
            rec = records.load(self.store, key)
            if rec is None:
                self._cache.pop(key, None)
                return None
            vault = Vault.from_record(rec)
            if token is not None:
                self._cache[key] = (token, _copy(vault))
        if vault.deleted is not None and not include_deleted:
            return None
        return vault

    def list(self, include_deleted: bool = False) -> list[Vault]:
        vaults = [Vault.from_record(records.json_load(raw)) for _, raw in self.store.scan("vaults/")]
        return [v for v in vaults if (v.deleted is not None) == include_deleted]

    def create_or_update(
        self,
        name: str,
        *,
        subscription_id: str,
        resource_group: str,
        tenant_id: str,
        created_by: str,
        location: str = "local",
        retention_days: int | None = None,
        purge_protection: bool | None = None,
        rbac_authorization: bool | None = None,
        tags: dict[str, str] | None = None,
        access_policies: builtins.list[dict[str, Any]] | None = None,
        on_create: Callable[[Vault], dict[str, bytes | None]] | None = None,
    ) -> tuple[Vault, bool]:
        """Create the vault or update its properties; returns (vault, created).

        `on_create(vault)` runs only when the vault is new; it may adjust the vault
        and returns more records to write in the same atomic batch (the creator's grant).
        """
        check_vault_name(name)
        check_resource_group(resource_group)
        existing = self.get(name, include_deleted=True)
        if existing is not None and existing.deleted is not None:
            raise KeyVaultError(
                409,
                "ConflictError",
                f"Exist soft deleted vault with the same name '{name}'. Purge it or recover it before re-using the name.",
            )
        if retention_days is not None and not 7 <= retention_days <= 90:
            raise KeyVaultError(400, "BadRequest", "softDeleteRetentionInDays must be between 7 and 90.")
        if existing is None:
            vault = Vault(
                name=name,
                subscription_id=subscription_id,
                resource_group=resource_group,
                tenant_id=tenant_id,
                location=location,
                retention_days=retention_days or 90,
                purge_protection=bool(purge_protection),
                rbac_authorization=True if rbac_authorization is None else rbac_authorization,
                created_by=created_by,
                created=now(),
                tags=tags or {},
                access_policies=list(access_policies or []),
            )
        else:
            vault = existing
            if existing.resource_group.lower() != resource_group.lower():
                raise KeyVaultError(
                    409,
                    "VaultAlreadyExists",
                    f"The vault name '{name}' is already in use in resource group '{existing.resource_group}'.",
                )
            if retention_days is not None:
                vault.retention_days = retention_days
            if purge_protection is not None:
                if vault.purge_protection and not purge_protection:
                    raise KeyVaultError(
                        400, "BadRequest", "Purge protection cannot be disabled once it has been enabled."
                    )
                vault.purge_protection = purge_protection
            if rbac_authorization is not None:
                vault.rbac_authorization = rbac_authorization
            if tags is not None:
                vault.tags = tags
            if access_policies is not None:
                vault.access_policies = list(access_policies)
        extra = on_create(vault) if existing is None and on_create is not None else {}
        self.store.write({**extra, _vault_key(name): records.dump(vault.to_record())})
        return vault, existing is None

    def delete(self, name: str) -> Vault:
        vault = self.get(name)
        if vault is None:
            raise vault_resource_not_found(name)
        vault.deleted = now()
        vault.scheduled_purge = vault.deleted + vault.retention_days * DAY
        self.store.write({_vault_key(name): records.dump(vault.to_record())})
        return vault

    def recover(self, name: str) -> Vault:
        vault = self.get(name, include_deleted=True)
        if vault is None or vault.deleted is None:
            raise KeyVaultError(404, "ResourceNotFound", f"Deleted vault '{name}' was not found.")
        vault.deleted = vault.scheduled_purge = None
        self.store.write({_vault_key(name): records.dump(vault.to_record())})
        return vault

    def purge(self, name: str) -> None:
        """Erase a soft-deleted vault and everything in it."""
        vault = self.get(name, include_deleted=True)
        if vault is None or vault.deleted is None:
            raise KeyVaultError(404, "ResourceNotFound", f"Deleted vault '{name}' was not found.")
        if vault.purge_protection and (vault.scheduled_purge or 0) > now():
            raise KeyVaultError(
                409,
                "VaultPurgeProtected",
                f"Vault '{name}' has purge protection enabled; it is purged automatically on its scheduled purge date.",
            )
        changes: dict[str, bytes | None] = {_vault_key(name): None}
        for part in VAULT_CONTENTS:  # every kind of object a vault holds (layout.py)
            changes.update(dict.fromkeys(part.purge_keys(vault.key)))
            for prefix in part.purge_prefixes(vault.key):
                changes.update(dict.fromkeys(self.store.keys(prefix)))
        self.store.write(changes)


def vault_resource_not_found(name: str) -> KeyVaultError:
    return KeyVaultError(
        404,
        "ResourceNotFound",
        f"The Resource 'Microsoft.KeyVault/vaults/{name}' under resource group was not found.",
    )
