"""Secret semantics: versions, attributes, soft delete, recovery, backup.

Secrets are versioned objects (`objects.VersionedObjects`) under `layout.SECRETS`;
this module adds what is particular to them: values, disabled versions, a
certificate's backing secret (`managed`), and SecretSet's loop-side group commit.
Writes take typed inputs (`SecretInput`, `SecretUpdate`) that the HTTP layer
parses from request bodies (server/secret_bodies.py).
"""

from __future__ import annotations

import builtins
import json
import secrets as pysecrets
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace

from strongroom.audit import service as service_audit
from strongroom.barrier import SealedStore
from strongroom.events.feed import Change, ObjectChange, write_with_events, write_with_events_async
from strongroom.keyvault.backup import BackupSealer
from strongroom.keyvault.errors import (
    KeyVaultError,
    bad_parameter,
    deleted_secret_not_found,
    secret_not_found,
)
from strongroom.keyvault.layout import SECRETS
from strongroom.keyvault.managed import managed_by_key_vault
from strongroom.keyvault.objects import Head, Page, VersionedObjects, purge_protected
from strongroom.keyvault.validation import check_object_name
from strongroom.keyvault.vaults import Vault
from strongroom.util.clock import vault_now


@dataclass
class SecretVersion:
    name: str
    version: str
    value: str
    content_type: str | None = None
    tags: dict[str, str] | None = None
    enabled: bool = True
    nbf: int | None = None
    exp: int | None = None
    created: int = 0
    updated: int = 0
    previous_version: str | None = None
    kid: str | None = None
    managed: bool | None = None

    def __repr__(self) -> str:  # never let a value reach a log through repr()
        return f"SecretVersion(name={self.name!r}, version={self.version!r})"


@dataclass
class SecretInput:
    """SecretSet: the new version's value and properties."""

    value: str = field(repr=False)
    content_type: str | None = None
    tags: dict[str, str] | None = None
    enabled: bool | None = None  # None: enabled
    nbf: int | None = None
    exp: int | None = None


@dataclass
class SecretUpdate:
    """UpdateSecret: the properties given (`set_*` says whether one was; a given null clears it)."""

    content_type: str | None = None
    set_content_type: bool = False
    tags: dict[str, str] | None = None
    set_tags: bool = False
    enabled: bool | None = None  # None: unchanged
    nbf: int | None = None
    set_nbf: bool = False
    exp: int | None = None
    set_exp: bool = False


def new_version_id() -> str:
    return pysecrets.token_hex(16)


def secret_objects(store: SealedStore) -> VersionedObjects[SecretVersion]:
    """The vaults' secrets as versioned objects (certificates write their backing secrets through this too)."""
    return VersionedObjects(store, SECRETS, SecretVersion, secret_not_found, deleted_secret_not_found)


def secret_event(change: Change, sv: SecretVersion) -> ObjectChange:
    """The change-feed event for `sv`: names and times only, never the value."""
    return ObjectChange("secret", change, sv.name, sv.version, sv.nbf, sv.exp)


class SecretStore:
    def __init__(self, store: SealedStore, backups: BackupSealer) -> None:
        self.store = store
        self.backups = backups
        self.objects = secret_objects(store)

    # -- reading -----------------------------------------------------------

    def get(self, vault: Vault, name: str, version: str = "", out_content_type: str | None = None) -> SecretVersion:
        """The value of a version (the current one when `version` is empty).

        `out_content_type` (GetSecret's outContentType) converts a certificate's
        PKCS#12 secret to PEM; any other combination answers the value as stored.
        """
        check_object_name(name)
        if out_content_type not in (None, "", "application/x-pkcs12", "application/x-pem-file"):
            raise bad_parameter(
                f"The outContentType '{out_content_type}' is not valid. Valid values: application/x-pkcs12, application/x-pem-file."
            )
        # The hot read: the head and the version, two point reads (not `objects.live`, which checks the name again).
        head = self.objects.head(vault, name)
        if head is None or head.deleted is not None:
            raise secret_not_found(name)
        sv = self.objects.version(vault, name, version or head.current)
        if sv is None:
            raise secret_not_found(name, version)
        if not sv.enabled:
            raise KeyVaultError(403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled")
        if sv.managed and out_content_type == "application/x-pem-file" and sv.content_type == "application/x-pkcs12":
            from strongroom.keyvault.x509build import pfx_to_pem

            pem = pfx_to_pem(sv.value)
            if pem is not None:
                return replace(sv, value=pem, content_type="application/x-pem-file")
        return sv

    def _refuse_managed(self, vault: Vault, head: Head | None, operation: str) -> None:
        """A certificate's backing secret changes only through its certificate, as in Key Vault."""
        if head is None:
            return
        current = self.objects.current(vault, head)
        if current is not None and current.managed:
            raise managed_by_key_vault(operation, "SecretManagedByKeyVault")

    def list(self, vault: Vault, maxresults: int | None, token: str | None) -> Page[SecretVersion]:
        return self.objects.list_heads(vault, maxresults, token, deleted=False)

    def list_deleted(self, vault: Vault, maxresults: int | None, token: str | None) -> Page[SecretVersion]:
        return self.objects.list_heads(vault, maxresults, token, deleted=True)

    def list_versions(self, vault: Vault, name: str, maxresults: int | None, token: str | None) -> Page[SecretVersion]:
        return self.objects.list_versions(vault, name, maxresults, token)

    def current_values(self, vault: Vault) -> Iterator[tuple[str, Callable[[], str | None]]]:
        """(name, loader of its current value if enabled) per live secret, for lint's value match.

        The loader opens the version only when called, so a caller's unreadable secrets are never decrypted.
        """
        for head in self.objects.heads(vault):
            if head.deleted is not None:
                continue

            def load(head: Head = head) -> str | None:
                sv = self.objects.current(vault, head)
                return sv.value if sv is not None and sv.enabled else None

            yield head.name, load

    def get_deleted(self, vault: Vault, name: str) -> tuple[Head, SecretVersion]:
        return self.objects.deleted(vault, name)

    def show_deleted(self, vault: Vault, name: str) -> tuple[Head, SecretVersion]:
        """GetDeletedSecret: like get_deleted, but Azure refuses it when the current version is disabled.

        Recorded from the real service (azure-sdk-for-js recording "cant get a disabled
        secret"); the SDKs' delete pollers treat this 403 as "deletion finished".
        """
        head, sv = self.get_deleted(vault, name)
        if not sv.enabled:
            raise KeyVaultError(403, "Forbidden", "Operation get is not permitted on this object.", "AccessDenied")
        return head, sv

    # -- writing -----------------------------------------------------------

    def set(self, vault: Vault, name: str, given: SecretInput) -> SecretVersion:
        sv, changes, events = self._prepare_set(vault, name, given)
        write_with_events(self.store, vault, changes, events)
        return sv

    async def set_async(self, vault: Vault, name: str, given: SecretInput) -> SecretVersion:
        """`set` from the event loop: checks, reads and seals here, then awaits the group commit.

        No threadpool thread per write: the reads are quick and the only wait, the
        fsync, happens in the storage's commit thread for every write pending at once.
        """
        sv, changes, events = self._prepare_set(vault, name, given)
        await write_with_events_async(self.store, vault, changes, events)
        return sv

    def _prepare_set(
        self, vault: Vault, name: str, given: SecretInput
    ) -> tuple[SecretVersion, dict[str, bytes | None], builtins.list[ObjectChange]]:
        """The new version, the records to write and the event of a SecretSet (KeyVaultError if refused)."""
        check_object_name(name)
        head = self.objects.head(vault, name)
        if head is not None and head.deleted is not None:
            raise KeyVaultError(
                409,
                "Conflict",
                f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; "
                "in this state, the secret can only be recovered or purged.",
                "ObjectIsDeletedButRecoverable",
            )
        self._refuse_managed(vault, head, "set")
        t = vault_now(vault.key)
        sv = SecretVersion(
            name=head.name if head else name,
            version=new_version_id(),
            value=given.value,
            content_type=given.content_type,
            tags=given.tags,
            enabled=True if given.enabled is None else given.enabled,
            nbf=given.nbf,
            exp=given.exp,
            created=t,
            updated=t,
            previous_version=head.current if head else None,
        )
        changes = self.objects.put_changes(vault, Head(name=sv.name, current=sv.version), sv)
        return sv, changes, [secret_event(Change.NEW_VERSION, sv)]

    def update(self, vault: Vault, name: str, version: str, given: SecretUpdate) -> SecretVersion:
        _, sv = self.objects.live(vault, name, version)
        if sv.managed:
            raise managed_by_key_vault("update", "SecretManagedByKeyVault")
        if given.set_content_type:
            sv.content_type = given.content_type
        if given.set_tags:
            sv.tags = given.tags
        if given.enabled is not None:
            sv.enabled = given.enabled
        if given.set_nbf:
            sv.nbf = given.nbf
        if given.set_exp:
            sv.exp = given.exp
        sv.updated = vault_now(vault.key)
        write_with_events(self.store, vault, self.objects.version_changes(vault, sv), [secret_event(Change.UPDATED, sv)])
        return sv

    def delete(self, vault: Vault, name: str) -> tuple[Head, SecretVersion]:
        head, sv = self.objects.live(vault, name)
        self._refuse_managed(vault, head, "delete")
        changes = self.objects.delete_changes(vault, head, vault_now(vault.key))
        write_with_events(self.store, vault, changes, [secret_event(Change.DELETED, sv)])
        return head, sv

    def recover(self, vault: Vault, name: str) -> SecretVersion:
        check_object_name(name)
        head = self.objects.head(vault, name)
        if head is None or head.deleted is None:
            raise secret_not_found(name)
        head, sv = self.get_deleted(vault, name)
        self._refuse_managed(vault, head, "recover")
        write_with_events(self.store, vault, self.objects.recover_changes(vault, head), [secret_event(Change.RECOVERED, sv)])
        return sv

    def purge(self, vault: Vault, name: str, *, scheduled: bool = False) -> None:
        head, sv = self.get_deleted(vault, name)
        if not scheduled:
            self._refuse_managed(vault, head, "purge")
        if vault.purge_protection and not scheduled:
            raise purge_protected(vault)
        write_with_events(self.store, vault, self.objects.purge_changes(vault, head.name), [secret_event(Change.PURGED, sv)])

    def purge_expired(self, vault: Vault) -> int:
        """Purge deleted secrets whose scheduled purge date has passed."""
        due = self.objects.due_for_purge(vault, vault_now(vault.key))
        for name in due:
            with service_audit.action("SecretPurge", vault, "deletedsecrets", name):  # recorded as the service's own change
                self.purge(vault, name, scheduled=True)
        return len(due)

    # -- backup ------------------------------------------------------------

    def backup(self, vault: Vault, name: str) -> str:
        head = self.objects.live_head(vault, name)
        self._refuse_managed(vault, head, "backup")
        payload = {"kind": "secret", "head": asdict(head), "versions": self.objects.raw_versions(vault, name)}
        return self.backups.seal(json.dumps(payload).encode())

    def restore(self, vault: Vault, blob: str, base_url: str) -> SecretVersion:
        payload = json.loads(self.backups.open(blob))
        if payload.get("kind") != "secret":
            raise bad_parameter("The backup blob is not a secret backup.")
        head = Head(**payload["head"])
        if self.objects.head(vault, head.name) is not None:
            raise KeyVaultError(
                409,
                "Conflict",
                f"There was a conflict restoring the secret '{base_url}/secrets/{head.name}/{head.current}'. "
                "This can happen if either: a second secret with the same name was created after the first secret "
                "was deleted; thus trying to restore a secret whose name is already in use. To fix this, rename the "
                "second secret to something else so that the restore works. The second probable cause of this "
                "exception is when multiple operations are performed in parallel against the secret. To avoid this "
                "error, perform operations against a secret in a sequential manner.",
            )
        changes, current = self.objects.restore_changes(vault, head, payload["versions"])
        write_with_events(self.store, vault, changes, [secret_event(Change.RESTORED, current)])
        return current
