"""Versioned vault objects kept behind the barrier: heads, versions, listing, soft delete.

Keys and certificates share this layout with secrets (see keyvault/secrets.py):

    {kind}/{vault}/{name}                    head: current version, deletion state
    {kind}versions/{vault}/{name}/{version}  one version record ("secretversions" for secrets)

Names are lowercased in storage keys (Key Vault compares them case-insensitively);
the head keeps the spelling of the first version. A `Collection` reads and
writes these records; what a version holds is the caller's dataclass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Generic, Iterator, TypeVar

from strongroom.barrier import SealedStore, records
from strongroom.keyvault.errors import KeyVaultError
from strongroom.keyvault.secrets import check_maxresults, decode_token, encode_token
from strongroom.keyvault.validation import check_object_name
from strongroom.keyvault.vaults import DAY, Vault

V = TypeVar("V")


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


class Collection(Generic[V]):
    """One kind of versioned object (`kind` = "keys", "certs") in a sealed store."""

    def __init__(
        self,
        store: SealedStore,
        kind: str,
        load: Callable[[dict[str, Any]], V],
        not_found: Callable[[str, str | None], KeyVaultError],
        deleted_not_found: Callable[[str], KeyVaultError],
        versions_kind: str | None = None,
    ) -> None:
        self.store = store
        self.kind = kind
        # Secrets, older than this module, keep their versions under "secretversions".
        self.versions_kind = versions_kind or f"{kind}versions"
        self.load = load
        self.not_found = not_found
        self.deleted_not_found = deleted_not_found

    # -- storage keys ---------------------------------------------------------

    def head_prefix(self, vault: Vault) -> str:
        return f"{self.kind}/{vault.key}/"

    def versions_prefix(self, vault: Vault, name: str) -> str:
        return f"{self.versions_kind}/{vault.key}/{name.lower()}/"

    def head_key(self, vault: Vault, name: str) -> str:
        return f"{self.kind}/{vault.key}/{name.lower()}"

    def version_key(self, vault: Vault, name: str, version: str) -> str:
        return f"{self.versions_kind}/{vault.key}/{name.lower()}/{version.lower()}"

    # -- reading --------------------------------------------------------------

    def head(self, vault: Vault, name: str) -> Head | None:
        rec = records.load(self.store, self.head_key(vault, name))
        return None if rec is None else Head(**rec)

    def version(self, vault: Vault, name: str, version: str) -> V | None:
        rec = records.load(self.store, self.version_key(vault, name, version))
        return None if rec is None else self.load(rec)

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

    def scan(self, prefix: str, after: str | None = None, limit: int | None = None) -> Iterator[tuple[str, bytes]]:
        """Scan in chunks so a filtered listing never loads a whole vault at once."""
        chunk = limit or 100
        while True:
            rows = list(self.store.scan(prefix, after, chunk))
            yield from rows
            if len(rows) < chunk or limit is not None:
                return
            after = rows[-1][0]

    def heads(self, vault: Vault) -> Iterator[Head]:
        for _, raw in self.scan(self.head_prefix(vault)):
            yield Head(**records.json_load(raw))

    def versions(self, vault: Vault, name: str) -> Iterator[V]:
        for _, raw in self.scan(self.versions_prefix(vault, name)):
            yield self.load(records.json_load(raw))

    def _more(self, prefix: str, last_key: str | None) -> bool:
        return next(self.store.keys(prefix, last_key, 1), None) is not None

    def list_heads(
        self, vault: Vault, maxresults: int | None, token: str | None, deleted: bool,
        keep: Callable[[Head, V], bool] | None = None,
    ) -> Page[V]:
        limit = check_maxresults(maxresults)
        prefix = self.head_prefix(vault)
        after = decode_token(token, prefix) if token else None
        items: list[tuple[Head, V]] = []
        last_key = after
        for key, raw in self.scan(prefix, after):
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
        prefix = self.versions_prefix(vault, name)
        after = decode_token(token, prefix) if token else None
        items: list[tuple[Head, V]] = []
        last_key = after
        for key, raw in self.scan(prefix, after, limit):
            items.append((head, self.load(records.json_load(raw))))
            last_key = key
        more = len(items) == limit and self._more(prefix, last_key)
        return Page(items, encode_token(last_key) if more and last_key else None)

    # -- writing (change sets, so callers can batch across collections) ----------

    def put_changes(self, vault: Vault, head: Head, version: Any | None = None) -> dict[str, bytes | None]:
        changes: dict[str, bytes | None] = {self.head_key(vault, head.name): records.dump(asdict(head))}
        if version is not None:
            changes[self.version_key(vault, head.name, version.version)] = records.dump(asdict(version))
        return changes

    def version_changes(self, vault: Vault, version: Any) -> dict[str, bytes | None]:
        return {self.version_key(vault, version.name, version.version): records.dump(asdict(version))}

    def delete_changes(self, vault: Vault, head: Head, when: int) -> dict[str, bytes | None]:
        head.deleted = when
        head.scheduled_purge = when + vault.retention_days * DAY
        return {self.head_key(vault, head.name): records.dump(asdict(head))}

    def recover_changes(self, vault: Vault, head: Head) -> dict[str, bytes | None]:
        head.deleted = head.scheduled_purge = None
        return {self.head_key(vault, head.name): records.dump(asdict(head))}

    def purge_changes(self, vault: Vault, name: str) -> dict[str, bytes | None]:
        changes: dict[str, bytes | None] = {self.head_key(vault, name): None}
        for key in self.store.keys(self.versions_prefix(vault, name)):
            changes[key] = None
        return changes

    def raw_versions(self, vault: Vault, name: str) -> list[dict[str, Any]]:
        return [records.json_load(raw) for _, raw in self.scan(self.versions_prefix(vault, name))]

    def due_for_purge(self, vault: Vault, t: int) -> list[str]:
        return [h.name for h in self.heads(vault) if h.deleted is not None and (h.scheduled_purge or 0) <= t]


def purge_protected(vault: Vault) -> KeyVaultError:
    return KeyVaultError(
        403,
        "Forbidden",
        'Operation "purge" is not allowed because purge protection is enabled for this vault. '
        "Key Vault service will automatically purge it after the retention period has passed. "
        f"Vault: {vault.name};location={vault.location}",
    )

