"""Key semantics: versions, attributes, crypto operations, soft delete, backup, rotation.

Keys are versioned objects (`objects.VersionedObjects`) under `layout.KEYS`,
each with its rotation policy beside it (`layout.KEY_POLICIES`); every record is
sealed by the barrier, private key material included.

Key material never leaves this module except as `public_jwk` (and inside sealed
backup blobs). A key backing a certificate is `managed`: it can be read and
used, but created, rotated and deleted only through its certificate.
"""

from __future__ import annotations

import builtins
import json
import os
import secrets as pysecrets
from dataclasses import asdict, dataclass, field
from typing import Any

from strongroom.audit import service as service_audit
from strongroom.barrier import SealedStore, records
from strongroom.events.feed import Change, ObjectChange, write_with_events
from strongroom.keyvault import crypto, jwk
from strongroom.keyvault.backup import BackupSealer
from strongroom.keyvault.errors import RECOVER_HINT, KeyVaultError, bad_parameter
from strongroom.keyvault.layout import KEY_POLICIES, KEYS
from strongroom.keyvault.managed import managed_by_key_vault
from strongroom.keyvault.objects import Head, Page, VersionedObjects, purge_protected
from strongroom.keyvault.rotation import RotationPolicy, default_policy, parse_policy
from strongroom.keyvault.validation import check_bool, check_object_name, check_tags, check_unixtime
from strongroom.keyvault.vaults import Vault
from strongroom.util.clock import vault_now

# Operations Key Vault lets run outside the nbf/exp window ("Date-time controlled operations").
ALLOWED_OUTSIDE_VALIDITY = ("decrypt", "unwrapKey", "verify")
MAX_RANDOM_BYTES = 128


@dataclass
class KeyVersion:
    name: str
    version: str
    kty: str
    material: dict[str, Any]
    key_ops: list[str] = field(default_factory=list)
    enabled: bool = True
    nbf: int | None = None
    exp: int | None = None
    created: int = 0
    updated: int = 0
    tags: dict[str, str] | None = None
    managed: bool | None = None

    def __repr__(self) -> str:  # never let key material reach a log through repr()
        return f"KeyVersion(name={self.name!r}, version={self.version!r}, kty={self.kty!r})"

    @property
    def public(self) -> dict[str, Any]:
        return jwk.public_jwk(self.material)

    @property
    def key_size(self) -> int | None:
        return jwk.key_size(self.material, self.kty)


def key_not_found(name: str, version: str | None = None) -> KeyVaultError:
    ident = f"{name}/{version}" if version else name
    message = f"A key with (name/id) {ident} was not found in this key vault." + RECOVER_HINT.replace("secret", "key")
    return KeyVaultError(404, "KeyNotFound", message)


def deleted_key_not_found(name: str) -> KeyVaultError:
    return KeyVaultError(404, "KeyNotFound", f"Deleted Key not found: {name}")


def new_version_id() -> str:
    return pysecrets.token_hex(16)


def key_event(change: Change, kv: KeyVersion) -> ObjectChange:
    """The change-feed event for `kv`: names and times only, never material or tags."""
    return ObjectChange("key", change, kv.name, kv.version, kv.nbf, kv.exp)


def _attributes(body: dict[str, Any]) -> dict[str, Any]:
    attrs = body.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise bad_parameter("'attributes' must be an object.")
    if attrs.get("exportable") is True or body.get("release_policy") is not None:
        # Secure key release needs an attested confidential environment; a vault here has none.
        raise bad_parameter(
            "Exportable keys and key release policies are not supported by this vault (secure key release needs "
            "Managed HSM or a Premium vault with attestation)."
        )
    return attrs


def _default_ops(kty: str) -> list[str]:
    return list(jwk.DEFAULT_OPS[jwk.family(kty)])


class KeyStore:
    def __init__(self, store: SealedStore, backups: BackupSealer) -> None:
        self.store = store
        self.backups = backups
        self.objects = VersionedObjects(store, KEYS, KeyVersion, key_not_found, deleted_key_not_found)

    # -- reading -----------------------------------------------------------------

    def get(self, vault: Vault, name: str, version: str = "") -> KeyVersion:
        """A key version's public parts and attributes (disabled versions too, as Key Vault answers them)."""
        return self.objects.live(vault, name, version)[1]

    def list(self, vault: Vault, maxresults: int | None, token: str | None) -> Page[KeyVersion]:
        return self.objects.list_heads(vault, maxresults, token, deleted=False)

    def list_deleted(self, vault: Vault, maxresults: int | None, token: str | None) -> Page[KeyVersion]:
        return self.objects.list_heads(vault, maxresults, token, deleted=True)

    def list_versions(self, vault: Vault, name: str, maxresults: int | None, token: str | None) -> Page[KeyVersion]:
        return self.objects.list_versions(vault, name, maxresults, token)

    def get_deleted(self, vault: Vault, name: str) -> tuple[Head, KeyVersion]:
        return self.objects.deleted(vault, name)

    # -- writing -----------------------------------------------------------------

    def _check_name_free(self, vault: Vault, name: str) -> Head | None:
        head = self.objects.head(vault, name)
        if head is not None and head.deleted is not None:
            raise KeyVaultError(
                409,
                "Conflict",
                f"Key {name} is currently in a deleted but recoverable state, and its name cannot be reused; "
                "in this state, the key can only be recovered or purged.",
                "ObjectIsDeletedButRecoverable",
            )
        return head

    def _new_version(
        self, vault: Vault, name: str, head: Head | None, kty: str, material: dict[str, Any], body: dict[str, Any],
        ops: builtins.list[str] | None, *, managed: bool = False, version: str | None = None,
    ) -> KeyVersion:
        attrs = _attributes(body)
        t = vault_now(vault.key)
        enabled = check_bool(attrs.get("enabled"), "enabled")
        return KeyVersion(
            name=head.name if head else name,
            version=version or new_version_id(),
            kty=kty,
            material=material,
            key_ops=ops if ops is not None else _default_ops(kty),
            enabled=True if enabled is None else enabled,
            nbf=check_unixtime(attrs.get("nbf"), "nbf"),
            exp=check_unixtime(attrs.get("exp"), "exp"),
            created=t,
            updated=t,
            tags=check_tags(body.get("tags")),
            managed=True if managed else None,
        )

    def _store_version(self, vault: Vault, kv: KeyVersion) -> KeyVersion:
        changes = self.objects.put_changes(vault, Head(kv.name, kv.version), kv)
        write_with_events(self.store, vault, changes, [key_event(Change.NEW_VERSION, kv)])
        return kv

    def _refuse_managed(self, vault: Vault, head: Head | None, operation: str) -> None:
        if head is None:
            return
        current = self.objects.version(vault, head.name, head.current)
        if current is not None and current.managed:
            raise managed_by_key_vault(operation, "KeyManagedByKeyVault")

    def create(self, vault: Vault, name: str, body: Any) -> KeyVersion:
        check_object_name(name)
        if not isinstance(body, dict):
            raise bad_parameter("The request body must be a JSON object with a 'kty' property.")
        kty = jwk.check_kty(body.get("kty"))
        ops = jwk.check_key_ops(body.get("key_ops"))
        material = jwk.generate(kty, body.get("key_size"), body.get("crv"), body.get("public_exponent"))
        head = self._check_name_free(vault, name)
        self._refuse_managed(vault, head, "create")
        return self._store_version(vault, self._new_version(vault, name, head, kty, material, body, ops))

    def import_key(self, vault: Vault, name: str, body: Any) -> KeyVersion:
        check_object_name(name)
        if not isinstance(body, dict):
            raise bad_parameter("The request body must be a JSON object with a 'key' property.")
        kty, material = jwk.import_material(body.get("key"))
        if body.get("Hsm") is True and not kty.endswith("-HSM"):
            kty += "-HSM"
        ops = jwk.check_key_ops(body["key"].get("key_ops"))
        head = self._check_name_free(vault, name)
        self._refuse_managed(vault, head, "import")
        return self._store_version(vault, self._new_version(vault, name, head, kty, material, body, ops))

    def update(self, vault: Vault, name: str, version: str, body: Any) -> KeyVersion:
        check_object_name(name)
        if not isinstance(body, dict):
            raise bad_parameter("The request body must be a JSON object.")
        head, kv = self.objects.live(vault, name, version)
        attrs = _attributes(body)
        if kv.managed and (attrs or "key_ops" in body):
            raise managed_by_key_vault("update", "KeyManagedByKeyVault")
        if "key_ops" in body:
            kv.key_ops = jwk.check_key_ops(body["key_ops"]) or []
        if "tags" in body:
            kv.tags = check_tags(body["tags"])
        if attrs.get("enabled") is not None:
            kv.enabled = bool(check_bool(attrs["enabled"], "enabled"))
        if "nbf" in attrs:
            kv.nbf = check_unixtime(attrs["nbf"], "nbf")
        if "exp" in attrs:
            kv.exp = check_unixtime(attrs["exp"], "exp")
        kv.updated = vault_now(vault.key)
        write_with_events(self.store, vault, self.objects.version_changes(vault, kv), [key_event(Change.UPDATED, kv)])
        return kv

    def delete(self, vault: Vault, name: str) -> tuple[Head, KeyVersion]:
        head, kv = self.objects.live(vault, name)
        if kv.managed:
            raise managed_by_key_vault("delete", "KeyManagedByKeyVault")
        changes = self.objects.delete_changes(vault, head, vault_now(vault.key))
        write_with_events(self.store, vault, changes, [key_event(Change.DELETED, kv)])
        return head, kv

    def recover(self, vault: Vault, name: str) -> KeyVersion:
        head, kv = self.objects.deleted(vault, name)
        if kv.managed:
            raise managed_by_key_vault("recover", "KeyManagedByKeyVault")
        write_with_events(self.store, vault, self.objects.recover_changes(vault, head), [key_event(Change.RECOVERED, kv)])
        return kv

    def purge(self, vault: Vault, name: str, *, scheduled: bool = False) -> None:
        head, kv = self.objects.deleted(vault, name)
        if kv.managed and not scheduled:
            raise managed_by_key_vault("purge", "KeyManagedByKeyVault")
        if vault.purge_protection and not scheduled:
            raise purge_protected(vault)
        changes = self.objects.purge_changes(vault, head.name)  # the rotation policy with it
        write_with_events(self.store, vault, changes, [key_event(Change.PURGED, kv)])

    def purge_expired(self, vault: Vault) -> int:
        due = self.objects.due_for_purge(vault, vault_now(vault.key))
        for name in due:
            with service_audit.action("KeyPurge", vault, "deletedkeys", name):  # recorded as the service's own change
                self.purge(vault, name, scheduled=True)
        return len(due)

    # -- certificate-backed keys ---------------------------------------------------

    def managed_version(
        self, vault: Vault, name: str, version: str, kty: str, material: dict[str, Any], ops: builtins.list[str],
        *, nbf: int | None, exp: int | None, enabled: bool = True, tags: dict[str, str] | None = None,
    ) -> tuple[KeyVersion, dict[str, bytes | None]]:
        """A certificate's backing key version, and the writes that store it (for the certificate's batch)."""
        head = self.objects.head(vault, name)
        t = vault_now(vault.key)
        kv = KeyVersion(
            name=head.name if head else name, version=version, kty=kty, material=material, key_ops=ops,
            enabled=enabled, nbf=nbf, exp=exp, created=t, updated=t, tags=tags, managed=True,
        )
        return kv, self.objects.put_changes(vault, Head(kv.name, kv.version), kv)

    # -- cryptography --------------------------------------------------------------

    def usable(self, vault: Vault, name: str, version: str, operation: str) -> KeyVersion:
        """The version, if it may perform `operation` now; Key Vault's 403s otherwise."""
        kv = self.get(vault, name, version)
        if not kv.enabled:
            raise KeyVaultError(403, "Forbidden", f"Operation {operation} is not allowed on a disabled key.", "KeyDisabled")
        if operation not in ALLOWED_OUTSIDE_VALIDITY:
            t = vault_now(vault.key)
            if kv.nbf is not None and t < kv.nbf:
                raise KeyVaultError(
                    403, "Forbidden", f"Operation {operation} is not allowed on a key that is not yet valid (nbf).",
                    "KeyNotYetValid",
                )
            if kv.exp is not None and t >= kv.exp:
                raise KeyVaultError(403, "Forbidden", f"Operation {operation} is not allowed on an expired key.", "KeyExpired")
        if operation not in kv.key_ops:
            raise KeyVaultError(
                403, "Forbidden", f"Operation {operation} is not permitted on this key.", "KeyOperationForbidden"
            )
        return kv

    def sign(self, vault: Vault, name: str, version: str, alg: Any, digest: bytes) -> tuple[KeyVersion, bytes]:
        kv = self.usable(vault, name, version, "sign")
        return kv, crypto.sign(kv.material, kv.kty, alg, digest)

    def verify(self, vault: Vault, name: str, version: str, alg: Any, digest: bytes, signature: bytes) -> tuple[KeyVersion, bool]:
        kv = self.usable(vault, name, version, "verify")
        return kv, crypto.verify(kv.material, kv.kty, alg, digest, signature)

    def encrypt(
        self, vault: Vault, name: str, version: str, alg: Any, plaintext: bytes, iv: bytes | None, aad: bytes | None
    ) -> tuple[KeyVersion, crypto.Result]:
        kv = self.usable(vault, name, version, "encrypt")
        return kv, crypto.encrypt(kv.material, kv.kty, alg, plaintext, iv, aad)

    def decrypt(
        self, vault: Vault, name: str, version: str, alg: Any, ciphertext: bytes, iv: bytes | None, aad: bytes | None,
        tag: bytes | None,
    ) -> tuple[KeyVersion, crypto.Result]:
        kv = self.usable(vault, name, version, "decrypt")
        return kv, crypto.decrypt(kv.material, kv.kty, alg, ciphertext, iv, aad, tag)

    def wrap(self, vault: Vault, name: str, version: str, alg: Any, key_bytes: bytes) -> tuple[KeyVersion, bytes]:
        kv = self.usable(vault, name, version, "wrapKey")
        return kv, crypto.wrap(kv.material, kv.kty, alg, key_bytes)

    def unwrap(self, vault: Vault, name: str, version: str, alg: Any, wrapped: bytes) -> tuple[KeyVersion, bytes]:
        kv = self.usable(vault, name, version, "unwrapKey")
        return kv, crypto.unwrap(kv.material, kv.kty, alg, wrapped)

    @staticmethod
    def random_bytes(body: Any) -> bytes:
        count = body.get("count") if isinstance(body, dict) else None
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_RANDOM_BYTES:
            raise bad_parameter(f"'count' must be an integer between 1 and {MAX_RANDOM_BYTES}.")
        return os.urandom(count)

    # -- rotation ------------------------------------------------------------------

    def rotate(self, vault: Vault, name: str) -> KeyVersion:
        """A new version like the current one (type, size, curve, operations, tags), expiring per the policy."""
        head, current = self.objects.live(vault, name)
        if current.managed:
            raise managed_by_key_vault("rotate", "KeyManagedByKeyVault")
        fam = jwk.family(current.kty)
        material = jwk.generate(
            current.kty, current.key_size if fam != "EC" else None, current.material.get("crv"),
            jwk.public_exponent(current.material) if fam == "RSA" else None,
        )
        t = vault_now(vault.key)
        policy = self.get_policy(vault, name)
        kv = KeyVersion(
            name=head.name, version=new_version_id(), kty=current.kty, material=material,
            key_ops=list(current.key_ops), enabled=True, created=t, updated=t, tags=current.tags,
            exp=policy.expiry.add_to(t) if policy.expiry else None,
        )
        return self._store_version(vault, kv)

    def get_policy(self, vault: Vault, name: str) -> RotationPolicy:
        self.objects.live_head(vault, name)
        rec = records.load(self.store, _policy_key(vault, name))
        return default_policy() if rec is None else RotationPolicy.from_record(rec)

    def set_policy(self, vault: Vault, name: str, body: Any) -> RotationPolicy:
        head, current = self.objects.live(vault, name)
        if current.managed:
            raise managed_by_key_vault("setrotationpolicy", "KeyManagedByKeyVault")
        policy = parse_policy(body)
        t = vault_now(vault.key)
        old = records.load(self.store, _policy_key(vault, name))
        policy.created = old["created"] if old else t
        policy.updated = t
        self.store.write({_policy_key(vault, name): records.dump(policy.to_record())})
        return policy

    # -- backup ------------------------------------------------------------------

    def backup(self, vault: Vault, name: str) -> str:
        head, kv = self.objects.live(vault, name)
        if kv.managed:
            raise managed_by_key_vault("backup", "KeyManagedByKeyVault")
        policy = records.load(self.store, _policy_key(vault, name))
        payload = {"kind": "key", "head": asdict(head), "versions": self.objects.raw_versions(vault, name), "policy": policy}
        return self.backups.seal(json.dumps(payload).encode())

    def restore(self, vault: Vault, body: Any, base_url: str) -> KeyVersion:
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            raise bad_parameter("The request body must be a JSON object with a 'value' property holding the backup.")
        payload = json.loads(self.backups.open(body["value"]))
        if payload.get("kind") != "key":
            raise bad_parameter("The backup blob is not a key backup.")
        head = Head(**payload["head"])
        if self.objects.head(vault, head.name) is not None:
            raise KeyVaultError(
                409,
                "Conflict",
                f"There was a conflict restoring the key '{base_url}/keys/{head.name}/{head.current}'. This can happen "
                "if either: a second key with the same name was created after the first key was deleted; thus trying "
                "to restore a key whose name is already in use. To fix this, rename the second key to something else "
                "so that the restore works. The second probable cause of this exception is when multiple operations "
                "are performed in parallel against the key. To avoid this error, perform operations against a key in "
                "a sequential manner.",
            )
        changes, current = self.objects.restore_changes(vault, head, payload["versions"])
        if payload.get("policy"):
            changes[_policy_key(vault, head.name)] = records.dump(payload["policy"])
        write_with_events(self.store, vault, changes, [key_event(Change.RESTORED, current)])
        return current


def _policy_key(vault: Vault, name: str) -> str:
    return KEY_POLICIES.key(vault.key, name)
