"""Secret semantics: versions, attributes, soft delete, recovery, backup.

Storage layout (every value sealed by the barrier):

    secrets/{vault}/{name}                      head: current version, deletion state
    secretversions/{vault}/{name}/{version}     one SecretVersion each

Names are stored lowercased in keys because Key Vault compares them
case-insensitively; the head keeps the spelling the secret was created with.
"""

from __future__ import annotations

import builtins
import base64
import json
import secrets as pysecrets
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Iterator

from strongroom.audit import service as service_audit
from strongroom.barrier import SealedStore, records
from strongroom.events.feed import Change, ObjectChange, write_with_events, write_with_events_async
from strongroom.keyvault.backup import BackupSealer
from strongroom.keyvault.errors import (
    KeyVaultError,
    bad_parameter,
    deleted_secret_not_found,
    secret_not_found,
)
from strongroom.keyvault.validation import (
    check_bool,
    check_content_type,
    check_object_name,
    check_secret_value,
    check_tags,
    check_unixtime,
)
from strongroom.keyvault.vaults import DAY, Vault
from strongroom.keyvault.managed import managed_by_key_vault
from strongroom.util.clock import vault_now

MAX_PAGE = 25


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
class SecretHead:
    name: str
    current: str
    deleted: int | None = None
    scheduled_purge: int | None = None


@dataclass
class Page:
    items: list[tuple[SecretHead, SecretVersion]]
    next_token: str | None


def new_version_id() -> str:
    return pysecrets.token_hex(16)


def _head_key(vault: Vault, name: str) -> str:
    return f"secrets/{vault.key}/{name.lower()}"


def _version_key(vault: Vault, name: str, version: str) -> str:
    return f"secretversions/{vault.key}/{name.lower()}/{version.lower()}"


def encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_token(token: str, prefix: str) -> str:
    try:
        key = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise bad_parameter("The continuation token ($skiptoken) is invalid.") from None
    if not key.startswith(prefix):
        raise bad_parameter("The continuation token ($skiptoken) is invalid.")
    return key


def check_maxresults(value: int | None) -> int:
    if value is None:
        return MAX_PAGE
    if not 1 <= value <= MAX_PAGE:
        raise bad_parameter(f"Invalid maxresults value {value}. It must be between 1 and {MAX_PAGE}.")
    return value


def _event(change: Change, sv: SecretVersion) -> ObjectChange:
    """The change-feed event for `sv`: names and times only, never the value."""
    return ObjectChange("secret", change, sv.name, sv.version, sv.nbf, sv.exp)


def _dump(record: SecretVersion | SecretHead) -> bytes:
    """The stored JSON of a head or version: the same bytes as `records.dump(asdict(record))`.

    `asdict` copies field by field, recursively (~40 us for a version, the largest
    single cost of a SecretSet); the fields are already plain JSON values.
    """
    return records.dump(vars(record))


class SecretStore:
    def __init__(self, store: SealedStore, backups: BackupSealer) -> None:
        self.store = store
        self.backups = backups

    # -- reading -----------------------------------------------------------

    def _head(self, vault: Vault, name: str) -> SecretHead | None:
        rec = records.load(self.store, _head_key(vault, name))
        return None if rec is None else SecretHead(**rec)

    def _version(self, vault: Vault, name: str, version: str) -> SecretVersion | None:
        rec = records.load(self.store, _version_key(vault, name, version))
        return None if rec is None else SecretVersion(**rec)

    def _live_head(self, vault: Vault, name: str) -> SecretHead:
        head = self._head(vault, name)
        if head is None or head.deleted is not None:
            raise secret_not_found(name)
        return head

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
        head = self._live_head(vault, name)
        sv = self._version(vault, name, version or head.current)
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

    def _refuse_managed(self, vault: Vault, head: SecretHead | None, operation: str) -> None:
        """A certificate's backing secret changes only through its certificate, as in Key Vault."""
        if head is None:
            return
        current = self._version(vault, head.name, head.current)
        if current is not None and current.managed:
            raise managed_by_key_vault(operation, "SecretManagedByKeyVault")

    def head_and_version(self, vault: Vault, name: str) -> tuple[SecretHead, SecretVersion]:
        head = self._head(vault, name)
        if head is None:
            raise secret_not_found(name)
        sv = self._version(vault, name, head.current)
        assert sv is not None, "a head always points at a stored version"
        return head, sv

    def list(self, vault: Vault, maxresults: int | None, token: str | None) -> Page:
        return self._list_heads(vault, maxresults, token, deleted=False)

    def list_deleted(self, vault: Vault, maxresults: int | None, token: str | None) -> Page:
        return self._list_heads(vault, maxresults, token, deleted=True)

    def _list_heads(self, vault: Vault, maxresults: int | None, token: str | None, deleted: bool) -> Page:
        limit = check_maxresults(maxresults)
        prefix = f"secrets/{vault.key}/"
        after = decode_token(token, prefix) if token else None
        items: list[tuple[SecretHead, SecretVersion]] = []
        last_key = after
        for key, raw in self._scan(prefix, after):
            head = SecretHead(**records.json_load(raw))
            last_key = key
            if (head.deleted is not None) != deleted:
                continue
            sv = self._version(vault, head.name, head.current)
            if sv is not None:
                items.append((head, sv))
            if len(items) == limit:
                break
        more = len(items) == limit and next(self.store.keys(prefix, last_key, 1), None) is not None
        return Page(items, encode_token(last_key) if more and last_key else None)

    def list_versions(self, vault: Vault, name: str, maxresults: int | None, token: str | None) -> Page:
        check_object_name(name)
        limit = check_maxresults(maxresults)
        head = self._head(vault, name)
        if head is None or head.deleted is not None:
            return Page([], None)
        prefix = f"secretversions/{vault.key}/{name.lower()}/"
        after = decode_token(token, prefix) if token else None
        items = []
        last_key = after
        for key, raw in self._scan(prefix, after, limit):
            items.append((head, SecretVersion(**records.json_load(raw))))
            last_key = key
        more = len(items) == limit and next(self.store.keys(prefix, last_key, 1), None) is not None
        return Page(items, encode_token(last_key) if more and last_key else None)

    def current_values(self, vault: Vault) -> Iterator[tuple[str, Callable[[], str | None]]]:
        """(name, loader of its current value if enabled) per live secret, for lint's value match.

        The loader opens the version only when called, so a caller's unreadable secrets are never decrypted.
        """
        for _, raw in self._scan(f"secrets/{vault.key}/", None):
            head = SecretHead(**records.json_load(raw))
            if head.deleted is not None:
                continue

            def load(head: SecretHead = head) -> str | None:
                sv = self._version(vault, head.name, head.current)
                return sv.value if sv is not None and sv.enabled else None

            yield head.name, load

    def _scan(self, prefix: str, after: str | None, limit: int | None = None) -> Iterator[tuple[str, bytes]]:
        """Scan in chunks so a filtered listing never loads a whole vault at once."""
        chunk = limit or 100
        while True:
            rows = list(self.store.scan(prefix, after, chunk))
            yield from rows
            if len(rows) < chunk or limit is not None:
                return
            after = rows[-1][0]

    def get_deleted(self, vault: Vault, name: str) -> tuple[SecretHead, SecretVersion]:
        check_object_name(name)
        head = self._head(vault, name)
        if head is None or head.deleted is None:
            raise deleted_secret_not_found(name)
        sv = self._version(vault, name, head.current)
        assert sv is not None
        return head, sv

    def show_deleted(self, vault: Vault, name: str) -> tuple[SecretHead, SecretVersion]:
        """GetDeletedSecret: like get_deleted, but Azure refuses it when the current version is disabled.

        Recorded from the real service (azure-sdk-for-js recording "cant get a disabled
        secret"); the SDKs' delete pollers treat this 403 as "deletion finished".
        """
        head, sv = self.get_deleted(vault, name)
        if not sv.enabled:
            raise KeyVaultError(403, "Forbidden", "Operation get is not permitted on this object.", "AccessDenied")
        return head, sv

    # -- writing -----------------------------------------------------------

    def set(self, vault: Vault, name: str, body: Any) -> SecretVersion:
        sv, changes, events = self._prepare_set(vault, name, body)
        write_with_events(self.store, vault, changes, events)
        return sv

    async def set_async(self, vault: Vault, name: str, body: Any) -> SecretVersion:
        """`set` from the event loop: checks, reads and seals here, then awaits the group commit.

        No threadpool thread per write: the reads are quick and the only wait, the
        fsync, happens in the storage's commit thread for every write pending at once.
        """
        sv, changes, events = self._prepare_set(vault, name, body)
        await write_with_events_async(self.store, vault, changes, events)
        return sv

    def _prepare_set(
        self, vault: Vault, name: str, body: Any
    ) -> tuple[SecretVersion, dict[str, bytes | None], builtins.list[ObjectChange]]:
        """The new version, the records to write and the event of a SecretSet (KeyVaultError if refused)."""
        check_object_name(name)
        if not isinstance(body, dict):
            raise bad_parameter("The request body must be a JSON object with a 'value' property.")
        value = check_secret_value(body.get("value"))
        attrs = body.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise bad_parameter("'attributes' must be an object.")
        head = self._head(vault, name)
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
        enabled = check_bool(attrs.get("enabled"), "enabled")
        sv = SecretVersion(
            name=head.name if head else name,
            version=new_version_id(),
            value=value,
            content_type=check_content_type(body.get("contentType")),
            tags=check_tags(body.get("tags")),
            enabled=True if enabled is None else enabled,
            nbf=check_unixtime(attrs.get("nbf"), "nbf"),
            exp=check_unixtime(attrs.get("exp"), "exp"),
            created=t,
            updated=t,
            previous_version=head.current if head else None,
        )
        new_head = SecretHead(name=sv.name, current=sv.version)
        changes: dict[str, bytes | None] = {
            _version_key(vault, name, sv.version): _dump(sv),
            _head_key(vault, name): _dump(new_head),
        }
        return sv, changes, [_event(Change.NEW_VERSION, sv)]

    def update(self, vault: Vault, name: str, version: str, body: Any) -> SecretVersion:
        check_object_name(name)
        if not isinstance(body, dict):
            raise bad_parameter("The request body must be a JSON object.")
        head = self._live_head(vault, name)
        sv = self._version(vault, name, version or head.current)
        if sv is None:
            raise secret_not_found(name, version)
        if sv.managed:
            raise managed_by_key_vault("update", "SecretManagedByKeyVault")
        attrs = body.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise bad_parameter("'attributes' must be an object.")
        if "contentType" in body:
            sv.content_type = check_content_type(body["contentType"])
        if "tags" in body:
            sv.tags = check_tags(body["tags"])
        if attrs.get("enabled") is not None:
            sv.enabled = bool(check_bool(attrs["enabled"], "enabled"))
        if "nbf" in attrs:
            sv.nbf = check_unixtime(attrs["nbf"], "nbf")
        if "exp" in attrs:
            sv.exp = check_unixtime(attrs["exp"], "exp")
        sv.updated = vault_now(vault.key)
        write_with_events(
            self.store, vault, {_version_key(vault, name, sv.version): _dump(sv)}, [_event(Change.UPDATED, sv)]
        )
        return sv

    def delete(self, vault: Vault, name: str) -> tuple[SecretHead, SecretVersion]:
        check_object_name(name)
        head = self._live_head(vault, name)
        sv = self._version(vault, name, head.current)
        assert sv is not None
        self._refuse_managed(vault, head, "delete")
        head.deleted = vault_now(vault.key)
        head.scheduled_purge = head.deleted + vault.retention_days * DAY
        write_with_events(self.store, vault, {_head_key(vault, name): _dump(head)}, [_event(Change.DELETED, sv)])
        return head, sv

    def recover(self, vault: Vault, name: str) -> SecretVersion:
        check_object_name(name)
        head = self._head(vault, name)
        if head is None or head.deleted is None:
            raise secret_not_found(name)
        head, sv = self.get_deleted(vault, name)
        self._refuse_managed(vault, head, "recover")
        head.deleted = head.scheduled_purge = None
        write_with_events(self.store, vault, {_head_key(vault, name): _dump(head)}, [_event(Change.RECOVERED, sv)])
        return sv

    def purge(self, vault: Vault, name: str, *, scheduled: bool = False) -> None:
        head, sv = self.get_deleted(vault, name)
        if not scheduled:
            self._refuse_managed(vault, head, "purge")
        if vault.purge_protection and not scheduled:
            raise KeyVaultError(
                403,
                "Forbidden",
                'Operation "purge" is not allowed because purge protection is enabled for this vault. '
                "Key Vault service will automatically purge it after the retention period has passed. "
                f"Vault: {vault.name};location={vault.location}",
            )
        changes: dict[str, bytes | None] = {_head_key(vault, name): None}
        for key in self.store.keys(f"secretversions/{vault.key}/{name.lower()}/"):
            changes[key] = None
        write_with_events(self.store, vault, changes, [_event(Change.PURGED, sv)])

    def purge_expired(self, vault: Vault) -> int:
        """Purge deleted secrets whose scheduled purge date has passed."""
        t = vault_now(vault.key)
        due = []
        for _, raw in self._scan(f"secrets/{vault.key}/", None):
            head = SecretHead(**records.json_load(raw))
            if head.deleted is not None and (head.scheduled_purge or 0) <= t:
                due.append(head.name)
        for name in due:
            with service_audit.action("SecretPurge", vault, "deletedsecrets", name):  # recorded as the service's own change
                self.purge(vault, name, scheduled=True)
        return len(due)

    # -- backup ------------------------------------------------------------

    def backup(self, vault: Vault, name: str) -> str:
        check_object_name(name)
        head = self._live_head(vault, name)
        self._refuse_managed(vault, head, "backup")
        versions = [
            records.json_load(raw)
            for _, raw in self._scan(f"secretversions/{vault.key}/{name.lower()}/", None)
        ]
        payload = {"kind": "secret", "head": asdict(head), "versions": versions}
        return self.backups.seal(json.dumps(payload).encode())

    def restore(self, vault: Vault, body: Any, base_url: str) -> SecretVersion:
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            raise bad_parameter("The request body must be a JSON object with a 'value' property holding the backup.")
        payload = json.loads(self.backups.open(body["value"]))
        if payload.get("kind") != "secret":
            raise bad_parameter("The backup blob is not a secret backup.")
        head = SecretHead(**payload["head"])
        if self._head(vault, head.name) is not None:
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
        head.deleted = head.scheduled_purge = None
        changes: dict[str, bytes | None] = {_head_key(vault, head.name): records.dump(asdict(head))}
        current = None
        for rec in payload["versions"]:
            sv = SecretVersion(**rec)
            changes[_version_key(vault, head.name, sv.version)] = records.dump(rec)
            if sv.version == head.current:
                current = sv
        assert current is not None
        write_with_events(self.store, vault, changes, [_event(Change.RESTORED, current)])
        return current
