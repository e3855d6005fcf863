"""The Azure data action each secret operation checks (Microsoft.KeyVault/vaults/...)."""

from __future__ import annotations

SECRETS = "Microsoft.KeyVault/vaults/secrets"

SECRET_ACTIONS: dict[str, str] = {
    "SecretSet": f"{SECRETS}/setSecret/action",
    "SecretGet": f"{SECRETS}/getSecret/action",
    "SecretUpdate": f"{SECRETS}/update/action",
    "SecretDelete": f"{SECRETS}/delete",
    "SecretList": f"{SECRETS}/readMetadata/action",
    "SecretListVersions": f"{SECRETS}/readMetadata/action",
    "SecretListDeleted": f"{SECRETS}/readMetadata/action",
    "SecretGetDeleted": f"{SECRETS}/readMetadata/action",
    "SecretRecover": f"{SECRETS}/recover/action",
    "SecretPurge": f"{SECRETS}/purge/action",
    "SecretBackup": f"{SECRETS}/backup/action",
    "SecretRestore": f"{SECRETS}/restore/action",
}
