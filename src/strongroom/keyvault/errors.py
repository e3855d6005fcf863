"""Key Vault's error shape: `{"error": {"code", "message", "innererror"}}` with an HTTP status.

The domain raises these; the HTTP layer only serialises them.
"""

from __future__ import annotations

from dataclasses import dataclass

RECOVER_HINT = (
    " If you recently deleted this secret you may be able to recover it using the correct recovery command."
    " For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
)


@dataclass
class KeyVaultError(Exception):
    status: int
    code: str
    message: str
    inner_code: str | None = None

    def __str__(self) -> str:
        return f"({self.code}) {self.message}"

    def body(self) -> dict:
        error: dict = {"code": self.code, "message": self.message}
        if self.inner_code:
            error["innererror"] = {"code": self.inner_code}
        return {"error": error}


def bad_parameter(message: str) -> KeyVaultError:
    return KeyVaultError(400, "BadParameter", message)


def secret_not_found(name: str, version: str | None = None) -> KeyVaultError:
    ident = f"{name}/{version}" if version else name
    return KeyVaultError(404, "SecretNotFound", f"A secret with (name/id) {ident} was not found in this key vault." + RECOVER_HINT)


def deleted_secret_not_found(name: str) -> KeyVaultError:
    return KeyVaultError(404, "SecretNotFound", f"Deleted Secret not found: {name}")


def vault_not_found(host: str) -> KeyVaultError:
    return KeyVaultError(404, "VaultNotFound", f"No vault answers at '{host}'. Check the vault name and the DNS suffix.")
