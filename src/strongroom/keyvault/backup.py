"""Backup blobs: opaque, encrypted and integrity-protected, portable within one instance.

A blob is `b"SRBK1" | nonce | AES-256-GCM(backup key, payload)` in base64url. The
backup key is created once per instance and kept behind the barrier, so a blob
restores into any vault of the same instance, and survives master key rotation.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.barrier import SealedStore
from strongroom.keyvault.errors import KeyVaultError


def _malformed(message: str) -> KeyVaultError:
    return KeyVaultError(400, "Malformed backup blob", message)

MAGIC = b"SRBK1"
_AAD = b"strongroom-backup"
_KEY = "instance/backup-key"


class BackupSealer:
    def __init__(self, store: SealedStore) -> None:
        key = store.get(_KEY)
        if key is None:
            key = AESGCM.generate_key(bit_length=256)
            store.write({_KEY: key})
        self._aead = AESGCM(key)

    def seal(self, payload: bytes) -> str:
        nonce = os.urandom(12)
        blob = MAGIC + nonce + self._aead.encrypt(nonce, payload, _AAD)
        return base64.urlsafe_b64encode(blob).decode().rstrip("=")

    def open(self, text: str) -> bytes:
        try:
            blob = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (ValueError, TypeError):
            raise _malformed("Backup blob contains invalid or corrupt version.") from None
        if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 12 + 16:
            raise _malformed("Backup blob contains invalid or corrupt version.")
        nonce = blob[len(MAGIC) : len(MAGIC) + 12]
        try:
            return self._aead.decrypt(nonce, blob[len(MAGIC) + 12 :], _AAD)
        except InvalidTag:
            raise _malformed("Backup blob is corrupt.") from None
