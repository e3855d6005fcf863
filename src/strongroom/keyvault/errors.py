"""Key Vault's errors: `KeyVaultError`, the data plane's branch of the one error tree (strongroom.errors).

The domain raises these with Key Vault's codes; the HTTP layer renders them in the
shape of the plane that serves the request (`{"error": {"code", "message", "innererror"}}`
on the data plane). Code outside `keyvault/` raises `strongroom.errors` classes instead.
"""

from __future__ import annotations

from strongroom.errors import ServiceError

RECOVER_HINT = (
    " If you recently deleted this secret you may be able to recover it using the correct recovery command."
    " For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
)


class KeyVaultError(ServiceError):
    """A Key Vault refusal: `KeyVaultError(status, code, message, inner_code=None)`."""

    code: str

    def __init__(self, status: int, code: str, message: str, inner_code: str | None = None) -> None:
        super().__init__(status, code, message, inner_code)


def bad_parameter(message: str) -> KeyVaultError:
    return KeyVaultError(400, "BadParameter", message)


def secret_not_found(name: str, version: str | None = None) -> KeyVaultError:
    ident = f"{name}/{version}" if version else name
    return KeyVaultError(404, "SecretNotFound", f"A secret with (name/id) {ident} was not found in this key vault." + RECOVER_HINT)


def deleted_secret_not_found(name: str) -> KeyVaultError:
    return KeyVaultError(404, "SecretNotFound", f"Deleted Secret not found: {name}")
