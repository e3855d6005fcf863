"""The change feed: every change of a vault object, numbered, written with the change itself.

Writers (secrets now; keys and certificates the same way) call `write_with_events`
in place of `SealedStore.write`: the sealed records and the feed entries go to
storage in ONE transaction (`SealedStore.write_and_append`), so a change is never
answered without its event, and an event never names a change that was rolled
back. Each vault has its own stream, `changes/<vault key>`, numbered 1, 2, 3 ...
without gaps; SQLite's single writer commits them in order, so a reader that
sees number N has seen every number below it.

Entries are plain JSON, not sealed: they hold only what Key Vault's Event Grid
events hold (names, version ids, nbf/exp), never a value or a tag; the storage
keys already carry the names in the clear.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from strongroom.barrier import SealedStore
from strongroom.util import jsonbytes

STREAM_PREFIX = "changes/"
OBJECT_TYPES = ("secret", "key", "certificate")


class Topic(Protocol):
    """What the feed needs to know of the vault whose objects changed (a `keyvault.vaults.Vault` is one).

    The feed depends on these four values, not on the Key Vault domain: `key` names
    the stream, the rest is copied into each entry.
    """

    @property
    def key(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def created(self) -> int: ...

    @property
    def resource_id(self) -> str: ...


class Change(str, Enum):
    """What happened to the object. The first three are Azure's Event Grid events; the rest are ours."""

    NEW_VERSION = "NewVersionCreated"
    NEAR_EXPIRY = "NearExpiry"  # 30 days before exp (the certificates/keys scheduler records it)
    EXPIRED = "Expired"
    UPDATED = "Updated"  # attributes, tags or content type of a version changed
    DELETED = "Deleted"  # soft-deleted
    RECOVERED = "Recovered"
    PURGED = "Purged"
    RESTORED = "Restored"  # brought back from a backup blob

    @property
    def azure(self) -> bool:
        """True for the types Key Vault itself publishes to Event Grid."""
        return self in (Change.NEW_VERSION, Change.NEAR_EXPIRY, Change.EXPIRED)


@dataclass(frozen=True)
class ObjectChange:
    """One event to record: `object_type` is "secret", "key" or "certificate".

    `version` is the version the change concerns (for deletes and purges, the
    current one); `nbf`/`exp` are that version's Unix times, or None.
    """

    object_type: str
    change: Change
    name: str
    version: str | None = None
    nbf: int | None = None
    exp: int | None = None

    def __post_init__(self) -> None:
        if self.object_type not in OBJECT_TYPES:
            raise ValueError(f"object_type must be one of {OBJECT_TYPES}, not {self.object_type!r}")
        if not isinstance(self.change, Change):
            raise ValueError(f"change must be a Change, not {self.change!r}")


@dataclass(frozen=True)
class FeedEntry:
    """A recorded event, as read back from the stream."""

    seq: int
    id: str
    time: str  # RFC 3339 with microseconds, UTC
    vault: str
    vault_created: int
    topic: str  # the vault's resource id
    object_type: str
    change: Change
    name: str
    version: str | None
    nbf: int | None
    exp: int | None


def stream_name(vault: Topic) -> str:
    return STREAM_PREFIX + vault.key


_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def _event_time() -> str:
    # strftime once per second (it cost ~3% of a write when called for each event); then microseconds
    global _second
    secs, ns = divmod(time.time_ns(), 1_000_000_000)
    second = _second  # one read: another thread may move the global to the next second meanwhile
    if second[0] != secs:
        second = _second = (secs, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)))
    return f"{second[1]}.{ns // 1000:06d}Z"


def _event_id() -> str:
    """A random (version 4) UUID as text, as str(uuid.uuid4()) spells it, for a third of its cost."""
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40
    b[8] = b[8] & 0x3F | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def encode(vault: Topic, change: ObjectChange) -> bytes:
    """The stored form of one event (compact JSON, short keys: the feed is read far more than written)."""
    record: dict[str, Any] = {
        "id": _event_id(),
        "t": _event_time(),
        "v": vault.name,
        "vc": vault.created,
        "topic": vault.resource_id,
        "ot": change.object_type,
        "c": change.change.value,
        "n": change.name,
        "ver": change.version,
        "nbf": change.nbf,
        "exp": change.exp,
    }
    return jsonbytes.dumps(record)


def decode(seq: int, raw: bytes) -> FeedEntry:
    r = json.loads(raw)
    return FeedEntry(
        seq=seq,
        id=r["id"],
        time=r["t"],
        vault=r["v"],
        vault_created=int(r.get("vc") or 0),
        topic=r["topic"],
        object_type=r["ot"],
        change=Change(r["c"]),
        name=r["n"],
        version=r.get("ver"),
        nbf=r.get("nbf"),
        exp=r.get("exp"),
    )


def write_with_events(
    store: SealedStore, vault: Topic, changes: dict[str, bytes | None], events: Iterable[ObjectChange]
) -> list[int]:
    """Apply `changes` (plaintext records, sealed by `SealedStore.sealed_writes` as `SealedStore.write` does)
    and append `events` to the vault's change feed, all in one durable transaction.

    This is THE way to record a change of a secret, key or certificate. Call it
    where you would call `store.write(changes)`; pass one ObjectChange per
    object affected, e.g.

        write_with_events(self.store, vault, {head_key: ..., version_key: ...},
                          [ObjectChange("key", Change.NEW_VERSION, name, version, nbf, exp)])

    Returns the events' sequence numbers in the vault's feed. Raises StorageError
    (nothing written) like `store.write`. Never put a secret value, key material
    or tags in an ObjectChange: feed entries are stored unsealed.
    """
    return store.write_and_append(changes, stream_name(vault), [encode(vault, e) for e in events])


async def write_with_events_async(
    store: SealedStore, vault: Topic, changes: dict[str, bytes | None], events: Iterable[ObjectChange]
) -> list[int]:
    """`write_with_events` for a request handler on the event loop.

    Seals here, on the loop, then awaits the group commit (storage/asyncgroup.py)
    instead of holding a threadpool thread for the fsync: same transaction, same
    durability when it returns, same errors.
    """
    return await store.write_and_append_async(changes, stream_name(vault), [encode(vault, e) for e in events])


def read(store: SealedStore, vault: Topic, after: int = 0, limit: int | None = None) -> list[FeedEntry]:
    """The vault's events with sequence numbers above `after`, oldest first."""
    return [decode(seq, raw) for seq, raw in store.read_stream(stream_name(vault), after, limit)]


def last_sequence(store: SealedStore, vault: Topic) -> int:
    """The newest sequence number of the vault's feed (0 while it is empty)."""
    row = store.last_in_stream(stream_name(vault))
    return 0 if row is None else row[0]
