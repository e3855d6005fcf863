"""Objects whose lifetime Key Vault manages: a certificate's backing key and secret."""

from __future__ import annotations

from strongroom.keyvault.errors import KeyVaultError


def managed_by_key_vault(operation: str, inner: str) -> KeyVaultError:
    """Key Vault's answer to a direct write of a certificate's backing key or secret (as the Azure SDKs recorded it):
    403 Forbidden, innererror KeyManagedByKeyVault or SecretManagedByKeyVault."""
    return KeyVaultError(
        403, "Forbidden", f'Operation "{operation}" is not allowed as this object\'s lifetime is managed by Key Vault.', inner
    )
