"""Azure wire models for keys (keys.json: KeyBundle, KeyItem, DeletedKey*, KeyRotationPolicy)."""

from __future__ import annotations

from typing import Any

from strongroom.keyvault.keys import KeyVersion
from strongroom.keyvault.objects import Head
from strongroom.keyvault.rotation import RotationPolicy
from strongroom.keyvault.vaults import Vault


def kid(kv: KeyVersion, base_url: str) -> str:
    return f"{base_url}/keys/{kv.name}/{kv.version}"


def key_attributes(kv: KeyVersion, vault: Vault) -> dict[str, Any]:
    attrs: dict[str, Any] = {"enabled": kv.enabled}
    if kv.nbf is not None:
        attrs["nbf"] = kv.nbf
    if kv.exp is not None:
        attrs["exp"] = kv.exp
    attrs["created"] = kv.created
    attrs["updated"] = kv.updated
    attrs["recoverableDays"] = vault.retention_days
    attrs["recoveryLevel"] = vault.recovery_level
    attrs["exportable"] = False
    return attrs


def _common(kv: KeyVersion, vault: Vault, out: dict[str, Any]) -> dict[str, Any]:
    out["attributes"] = key_attributes(kv, vault)
    if kv.tags:
        out["tags"] = kv.tags
    if kv.managed:
        out["managed"] = True
    return out


def key_bundle(kv: KeyVersion, vault: Vault, base_url: str) -> dict[str, Any]:
    """The public JWK and attributes: private material never appears here."""
    key: dict[str, Any] = {"kid": kid(kv, base_url), "kty": kv.kty, "key_ops": list(kv.key_ops), **kv.public}
    return _common(kv, vault, {"key": key})


def key_item(kv: KeyVersion, vault: Vault, base_url: str, versioned: bool = False) -> dict[str, Any]:
    ident = f"{base_url}/keys/{kv.name}" + (f"/{kv.version}" if versioned else "")
    return _common(kv, vault, {"kid": ident})


def _deleted(head: Head, base_url: str, out: dict[str, Any]) -> dict[str, Any]:
    out["recoveryId"] = f"{base_url}/deletedkeys/{head.name}"
    out["deletedDate"] = head.deleted
    out["scheduledPurgeDate"] = head.scheduled_purge
    return out


def deleted_key_bundle(head: Head, kv: KeyVersion, vault: Vault, base_url: str) -> dict[str, Any]:
    return _deleted(head, base_url, key_bundle(kv, vault, base_url))


def deleted_key_item(head: Head, kv: KeyVersion, vault: Vault, base_url: str) -> dict[str, Any]:
    return _deleted(head, base_url, key_item(kv, vault, base_url))


def rotation_policy(policy: RotationPolicy, name: str, base_url: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if policy.expiry is not None:
        attrs["expiryTime"] = policy.expiry.text
    if policy.created is not None:
        attrs["created"] = policy.created
        attrs["updated"] = policy.updated
    return {
        "id": f"{base_url}/keys/{name}/rotationpolicy",
        "lifetimeActions": [a.to_wire() for a in policy.actions],
        "attributes": attrs,
    }
