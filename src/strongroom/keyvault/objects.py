"""Versioned vault objects behind the barrier: heads, versions, paging, soft delete, recover, purge.

Secrets, keys and certificates are all kept this way (their prefixes: `layout.py`):

    {heads}/{vault}/{name}                  head: the name's spelling, current version, deletion state
    {versions}/{vault}/{name}/{version}     one version record

`VersionedObjects` reads and writes these records for one kind; what a version
holds is the kind's dataclass (`SecretVersion`, `KeyVersion`, `CertVersion`).
Writes are returned as change sets, so a caller can batch several kinds in one
atomic write (a certificate with its backing key and secret).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from strongroom.barrier import SealedStore, records
from strongroom.keyvault.errors import KeyVaultError, bad_parameter
from strongroom.keyvault.layout import Versioned
from strongroom.keyvault.validation import check_object_name
from strongroom.keyvault.vaults import DAY, Vault


class VersionRecord(Protocol):
    """What every kind's version dataclass has."""

    name: str
    version: str


V = TypeVar("V", bound=VersionRecord)
MAX_PAGE = 25
Changes = dict[str, bytes | None]


@dataclass
class Head:
    name: str
    current: str
    deleted: int | None = None
    scheduled_purge: int | None = None


@dataclass
class Page(Generic[V]):
    items: list[tuple[Head, V]]
    next_token: str | None


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


def dump(record: Any) -> bytes:
    """The stored JSON of a head or version: the same bytes as `records.dump(asdict(record))`.

    `asdict` copies field by field, recursively (~40 us for a version, the largest
    single cost of a SecretSet); the fields are already plain JSON values.
    """
    return records.dump(vars(record))


def purge_protected(vault: Vault) -> KeyVaultError:
    return KeyVaultError(
        403,
        "Forbidden",
        'Operation "purge" is not allowed because purge protection is enabled for this vault. '
        "Key Vault service will automatically purge it after the retention period has passed. "
        f"Vault: {vault.name};location={vault.location}",
    )


class VersionedObjects(Generic[V]):
    """The versioned objects of one kind (its `layout`), whose versions are `version_type` records."""

    def __init__(
        self,
        store: SealedStore,
        layout: Versioned,
        version_type: Callable[..., V],
        not_found: Callable[[str, str | None], KeyVaultError],
        deleted_not_found: Callable[[str], KeyVaultError],
    ) -> None:
        self.store = store
        self.layout = layout
        self.version_type = version_type
        self.not_found = not_found
        self.deleted_not_found = deleted_not_found

    # -- reading --------------------------------------------------------------

    def head(self, vault: Vault, name: str) -> Head | None:
        rec = records.load(self.store, self.layout.head_key(vault.key, name))
        return None if rec is None else Head(**rec)

    def version(self, vault: Vault, name: str, version: str) -> V | None:
        rec = records.load(self.store, self.layout.version_key(vault.key, name, version))
        return None if rec is None else self.version_type(**rec)

    def spelling(self, vault: Vault, name: str) -> str:
        """The name as the object was first created (ids answer it so), else `name` as given."""
        head = self.head(vault, name)
        return head.name if head else name

    def live_head(self, vault: Vault, name: str) -> Head:
        check_object_name(name)
        head = self.head(vault, name)
        if head is None or head.deleted is not None:
            raise self.not_found(name, None)
        return head

    def live(self, vault: Vault, name: str, version: str = "") -> tuple[Head, V]:
        """A live object's version (the current one when `version` is empty)."""
        head = self.live_head(vault, name)
        v = self.version(vault, name, version or head.current)
        if v is None:
            raise self.not_found(name, version)
        return head, v

    def deleted(self, vault: Vault, name: str) -> tuple[Head, V]:
        check_object_name(name)
        head = self.head(vault, name)
        if head is None or head.deleted is None:
            raise self.deleted_not_found(name)
        v = self.version(vault, name, head.current)
        assert v is not None, "a head always points at a stored version"
        return head, v

    def current(self, vault: Vault, head: Head) -> V | None:
        return self.version(vault, head.name, head.current)

    def _scan(self, prefix: str, after: str | None = None, limit: int | None = None) -> Iterator[tuple[str, bytes]]:
        """Scan in chunks so a filtered listing never loads a whole vault at once."""
        chunk = limit or 100
        while True:
            rows = list(self.store.scan(prefix, after, chunk))
            yield from rows
            if len(rows) < chunk or limit is not None:
                return
            after = rows[-1][0]

    def heads(self, vault: Vault) -> Iterator[Head]:
        """Every head in the vault, live and deleted, in key order."""
        for _, raw in self._scan(self.layout.head_prefix(vault.key)):
            yield Head(**records.json_load(raw))

    def raw_versions(self, vault: Vault, name: str) -> list[dict[str, Any]]:
        """Every version's record as stored (for backups)."""
        return [records.json_load(raw) for _, raw in self._scan(self.layout.versions_prefix(vault.key, name))]

    def _more(self, prefix: str, last_key: str | None) -> bool:
        return next(self.store.keys(prefix, last_key, 1), None) is not None

    def list_heads(
        self, vault: Vault, maxresults: int | None, token: str | None, deleted: bool,
        keep: Callable[[Head, V], bool] | None = None,
    ) -> Page[V]:
        """A page of live (or deleted) objects with their current versions; `keep` filters them."""
        limit = check_maxresults(maxresults)
        prefix = self.layout.head_prefix(vault.key)
        after = decode_token(token, prefix) if token else None
        items: list[tuple[Head, V]] = []
        last_key = after
        for key, raw in self._scan(prefix, after):
            head = Head(**records.json_load(raw))
            last_key = key
            if (head.deleted is not None) != deleted:
                continue
            v = self.version(vault, head.name, head.current)
            if v is not None and (keep is None or keep(head, v)):
                items.append((head, v))
            if len(items) == limit:
                break
        more = len(items) == limit and self._more(prefix, last_key)
        return Page(items, encode_token(last_key) if more and last_key else None)

    def list_versions(self, vault: Vault, name: str, maxresults: int | None, token: str | None) -> Page[V]:
        check_object_name(name)
        limit = check_maxresults(maxresults)
        head = self.head(vault, name)
        if head is None or head.deleted is not None:
            return Page([], None)
        prefix = self.layout.versions_prefix(vault.key, name)
        after = decode_token(token, prefix) if token else None
        items: list[tuple[Head, V]] = []
        last_key = after
        for key, raw in self._scan(prefix, after, limit):
            items.append((head, self.version_type(**records.json_load(raw))))
            last_key = key
        more = len(items) == limit and self._more(prefix, last_key)
        return Page(items, encode_token(last_key) if more and last_key else None)

    def due_for_purge(self, vault: Vault, t: int) -> list[str]:
        return [h.name for h in self.heads(vault) if h.deleted is not None and (h.scheduled_purge or 0) <= t]

    # -- writing: change sets, so callers can batch across kinds ----------------

    def put_changes(self, vault: Vault, head: Head, version: V | None = None) -> Changes:
        """Store `version` (if any) and make `head` the object's head."""
        changes: Changes = {}
        if version is not None:
            changes[self.layout.version_key(vault.key, head.name, version.version)] = dump(version)
        changes[self.layout.head_key(vault.key, head.name)] = dump(head)
        return changes

    def version_changes(self, vault: Vault, version: V) -> Changes:
        return {self.layout.version_key(vault.key, version.name, version.version): dump(version)}

    def delete_changes(self, vault: Vault, head: Head, when: int) -> Changes:
        """Soft delete: the head records when, and when the object will be purged."""
        head.deleted = when
        head.scheduled_purge = when + vault.retention_days * DAY
        return {self.layout.head_key(vault.key, head.name): dump(head)}

    def recover_changes(self, vault: Vault, head: Head) -> Changes:
        head.deleted = head.scheduled_purge = None
        return {self.layout.head_key(vault.key, head.name): dump(head)}

    def purge_changes(self, vault: Vault, name: str) -> Changes:
        """The head, every version and the records kept beside the object, deleted."""
        changes: Changes = {self.layout.head_key(vault.key, name): None}
        for key in self.store.keys(self.layout.versions_prefix(vault.key, name)):
            changes[key] = None
        for beside in self.layout.beside:
            changes[beside.key(vault.key, name)] = None
        return changes

    def restore_changes(self, vault: Vault, head: Head, versions: list[dict[str, Any]]) -> tuple[Changes, V]:
        """A backup's head (live again) and versions as a change set, and its current version."""
        head.deleted = head.scheduled_purge = None
        changes = self.put_changes(vault, head)
        current = None
        for rec in versions:
            v = self.version_type(**rec)
            changes.update(self.version_changes(vault, v))
            if v.version == head.current:
                current = v
        assert current is not None, "a backup holds its head's current version"
        return changes, current
