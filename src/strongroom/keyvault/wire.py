"""Azure wire models for secrets (secrets.json: SecretBundle, SecretItem, DeletedSecret*)."""

from __future__ import annotations

from typing import Any

from strongroom.keyvault.objects import Head
from strongroom.keyvault.secrets import SecretVersion
from strongroom.keyvault.vaults import Vault


def secret_attributes(sv: SecretVersion, vault: Vault) -> dict[str, Any]:
    attrs: dict[str, Any] = {"enabled": sv.enabled}
    if sv.nbf is not None:
        attrs["nbf"] = sv.nbf
    if sv.exp is not None:
        attrs["exp"] = sv.exp
    attrs["created"] = sv.created
    attrs["updated"] = sv.updated
    attrs["recoverableDays"] = vault.retention_days
    attrs["recoveryLevel"] = vault.recovery_level
    return attrs


def _common(sv: SecretVersion, vault: Vault, out: dict[str, Any], base_url: str = "") -> dict[str, Any]:
    if sv.content_type is not None:
        out["contentType"] = sv.content_type
    out["attributes"] = secret_attributes(sv, vault)
    if sv.tags:
        out["tags"] = sv.tags
    if sv.kid:
        # A certificate's backing secret stores its key id relative to the vault (the URL is the caller's).
        out["kid"] = base_url + sv.kid if sv.kid.startswith("/") else sv.kid
    if sv.managed:
        out["managed"] = True
    return out


def secret_bundle(sv: SecretVersion, vault: Vault, base_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {"value": sv.value, "id": f"{base_url}/secrets/{sv.name}/{sv.version}"}
    _common(sv, vault, out, base_url)
    if sv.previous_version:
        out["previousVersion"] = sv.previous_version
    return out


def secret_item(sv: SecretVersion, vault: Vault, base_url: str, versioned: bool = False) -> dict[str, Any]:
    ident = f"{base_url}/secrets/{sv.name}" + (f"/{sv.version}" if versioned else "")
    return _common(sv, vault, {"id": ident}, base_url)


def _deleted_fields(head: Head, base_url: str, out: dict[str, Any]) -> dict[str, Any]:
    out["recoveryId"] = f"{base_url}/deletedsecrets/{head.name}"
    out["deletedDate"] = head.deleted
    out["scheduledPurgeDate"] = head.scheduled_purge
    return out


def deleted_secret_bundle(head: Head, sv: SecretVersion, vault: Vault, base_url: str) -> dict[str, Any]:
    out = secret_bundle(sv, vault, base_url)
    out.pop("value", None)  # Azure's delete and get-deleted answers carry no value
    return _deleted_fields(head, base_url, out)


def deleted_secret_item(head: Head, sv: SecretVersion, vault: Vault, base_url: str) -> dict[str, Any]:
    return _deleted_fields(head, base_url, secret_item(sv, vault, base_url))
