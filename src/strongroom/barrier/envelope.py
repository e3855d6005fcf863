"""Sealing records: one data key per record, wrapped by the master key.

A sealed record is

    b"SR1" | master key id (4) | AES-KW(master, data key) (40) | nonce (12) | AES-256-GCM ciphertext+tag

and the GCM associated data is the record's storage key, so a ciphertext moved
to another row (another vault, name or version) fails to open.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from strongroom.barrier.keyring import Keyring, MasterKey
from strongroom.storage import Storage, Write, open_storage
from strongroom.util.gil import yield_gil

MAGIC = b"SR1"
_KID = slice(3, 7)
_WRAPPED = slice(7, 47)
_NONCE = slice(47, 59)
_BODY = 59
SCAN_YIELD_EVERY = 16  # records opened between two hand-overs of the GIL (~0.3 ms of work)
MEMO_BYTES = 8 * 2**20  # opened records kept per process, plaintext counted (~16,000 small records)
MEMO_ENTRY_OVERHEAD = 250  # the key, the nonce and tag, the tuple and the dict slot of an entry, roughly
MEMO_MAX_RECORD = 64 * 1024  # a larger record is opened every time rather than crowd out the small ones
# The change counter of the whole store: the records under this prefix, read together. Every batch
# reseals (new bytes) one of them, its process's slot: slots, not one row, so that two replicas'
# commits do not queue on one row lock held until each other's WAL flush. Any commit by anyone
# still changes what one scan of the prefix returns.
CHANGES = "barrier/changes"
CHANGE_SLOTS = 16
PIN_MAX_AGE = 1.0  # seconds a request's pinned counter is trusted; a longer request (an event stream) reads it again

# The change counter as the current request read it: (sealed bytes under CHANGES, monotonic time read).
# A ContextVar, so each request (an asyncio task, and the threadpool calls it makes) has its own.
_pinned: ContextVar[tuple[bytes | None, float] | None] = ContextVar("strongroom_barrier_pin", default=None)


class BarrierError(Exception):
    """A sealed record could not be opened: wrong key, tampered, or moved."""


class Barrier:
    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def seal(self, aad: str, plaintext: bytes) -> bytes:
        master = self.keyring.active
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        body = AESGCM(data_key).encrypt(nonce, plaintext, aad.encode())
        return MAGIC + master.key_id + aes_key_wrap(master.material, data_key) + nonce + body

    def open(self, aad: str, sealed: bytes) -> bytes:
        if len(sealed) < _BODY + 16 or not sealed.startswith(MAGIC):
            raise BarrierError("not a sealed record")
        master = self.keyring.find(sealed[_KID])
        if master is None:
            raise BarrierError("sealed under a master key this server does not hold")
        try:
            data_key = aes_key_unwrap(master.material, sealed[_WRAPPED])
            return AESGCM(data_key).decrypt(sealed[_NONCE], sealed[_BODY:], aad.encode())
        except (InvalidUnwrap, InvalidTag):
            raise BarrierError("sealed record failed its integrity check") from None

    def rewrap(self, sealed: bytes, new: MasterKey) -> bytes:
        """Re-wrap the record's data key under `new`; the ciphertext is untouched."""
        master = self.keyring.find(sealed[_KID])
        if master is None:
            raise BarrierError("sealed under a master key this server does not hold")
        try:
            data_key = aes_key_unwrap(master.material, sealed[_WRAPPED])
        except InvalidUnwrap:
            raise BarrierError("data key failed its integrity check") from None
        return MAGIC + new.key_id + aes_key_wrap(new.material, data_key) + sealed[_NONCE] + sealed[_BODY:]


class SealedStore:
    """Storage seen through the barrier: plaintext in, sealed bytes out.

    This is the whole interface below the domain (as Vault's logical storage over
    its barrier): `get`/`load` one record, `scan` records or list only their `keys`,
    a `fingerprint` that notices a change without opening anything, and `write` /
    `write_and_append` (sync and async) committing a batch, with change-feed
    entries in the same transaction; `read_stream`/`last_in_stream` read the feed.
    The storage itself is private: only the composition root and audit/ hold one.

    Opened records are remembered with the nonce and GCM tag they were sealed with:
    a read that finds the same nonce and tag under the same storage key skips the
    unwrap and the decryption (~a quarter of a hot read's CPU). Those 28 bytes name
    one sealing: every seal draws a fresh data key and nonce, so another record
    matches them only by forging a 128-bit tag, and what a hit returns is the
    plaintext that was authenticated when the entry was made. Storage stays the
    truth: every read still fetches the row, so a write by another worker process
    is seen at once. Keeping 28 bytes instead of the whole record lets the same
    memory hold about twice the records (a spread read over 10,000 secrets misses
    less).

    One change counter makes the storage read itself unnecessary on the hot path:
    every batch also rewrites a record under `CHANGES` (fresh sealing, so new bytes;
    this process's slot of `CHANGE_SLOTS`), and a request reads their sealed bytes once,
    in one scan (`pin`). A memo entry is tagged with the
    counter under which its row was last fetched; while the request's counter is
    the same, no process or replica has committed anything since, and the entry is
    returned without a trip to storage. The tag also holds a local epoch bumped
    after each of this process's own commits, so a request that writes reads its
    own change. Caches above the barrier (vault records, the role snapshot) use the
    same `change_token`. Unpinned reads (background work, tools) fetch the row as before.
    """

    def __init__(self, storage: Storage, barrier: Barrier, memo_bytes: int = MEMO_BYTES) -> None:
        self._storage = storage
        self.barrier = barrier
        self._changes_key = f"{CHANGES}/{int.from_bytes(os.urandom(2), 'big') % CHANGE_SLOTS:02d}"
        self._memo: dict[str, tuple[bytes, bytes, int | None]] = {}
        self._epoch = 0  # how many commits this process made (bumped after each): part of every change token
        self._epoch_lock = threading.Lock()
        self._last_token: tuple[bytes | None, int, int] = (None, -1, 0)  # (counter, epoch, its id)
        self._token_ids = 0
        self._memo_budget = memo_bytes
        self._memo_used = 0
        self._memo_lock = threading.Lock()  # misses come from the loop and from threadpool threads

    def pin(self) -> None:
        """Read the change counter once for the current request (task); its reads then skip unchanged rows.

        Called where a request enters (the vault host router). Whatever any worker or
        replica committed before this call is seen by the request.
        """
        _pinned.set((b"".join(v for _, v in self._storage.scan(CHANGES)), time.monotonic()))

    def change_token(self) -> int | None:
        """What a cache compares to know nothing changed: an id of the request's pinned counter and this
        process's commit epoch (one id is never given to two different pairs); None when no fresh pin
        is held (then read storage, as without a cache)."""
        pin = _pinned.get()
        if pin is None or time.monotonic() - pin[1] > PIN_MAX_AGE:
            return None
        epoch = self._epoch
        last = self._last_token
        if last[0] == pin[0] and last[1] == epoch:
            return last[2]
        with self._epoch_lock:  # a new small id per distinct (counter, epoch): memo entries keep an int, not the bytes
            self._token_ids += 1
            self._last_token = (pin[0], epoch, self._token_ids)
            return self._token_ids

    def get(self, key: str) -> bytes | None:
        token = self.change_token()
        if token is not None:
            hit = self._memo.get(key)
            if hit is not None and hit[2] == token:
                return hit[1]
        sealed = self._storage.get(key)
        if sealed is None:
            return None
        return self._open(key, sealed, token)

    def load(self, key: str) -> dict[str, Any] | None:
        """The JSON record at `key` as a dict, or None."""
        raw = self.get(key)
        return None if raw is None else json.loads(raw)

    def scan(self, prefix: str, after: str | None = None, limit: int | None = None) -> Iterator[tuple[str, bytes]]:
        for i, (key, sealed) in enumerate(self._storage.scan(prefix, after, limit), 1):
            if i % SCAN_YIELD_EVERY == 0:
                yield_gil()  # background scans of every record must not stall the event loop
            yield key, self.barrier.open(key, sealed)

    def keys(self, prefix: str, after: str | None = None, limit: int | None = None) -> Iterator[str]:
        """The keys under `prefix` in order, strictly after `after`; nothing is opened."""
        for key, _ in self._storage.scan(prefix, after, limit):
            yield key

    def fingerprint(self, key: str) -> bytes | None:
        """The record's sealed bytes, unopened: they differ after every write of `key` (a fresh nonce
        each time), so a cache compares them to notice a change by any process at the cost of one
        point read and no decryption. None while the key is absent."""
        return self._storage.get(key)

    def read_stream(self, stream: str, after: int = 0, limit: int | None = None) -> list[tuple[int, bytes]]:
        """(seq, entry) of an append-only stream (the change feed) above `after`; entries are not sealed."""
        return self._storage.read(stream, after, limit)

    def last_in_stream(self, stream: str) -> tuple[int, bytes] | None:
        """The stream's newest (seq, entry), or None while it is empty."""
        return self._storage.last(stream)

    def try_lead(self, name: str) -> bool:
        """Hold the storage's leadership `name` (background work that runs once across replicas)."""
        return self._storage.try_lead(name)

    def listen_streams(self, on_heads: Callable[[dict[str, int] | None], None]) -> Callable[[], None] | None:
        """Pushed notice of grown streams, where storage can push (`Storage.listen`); None: poll `stream_heads`."""
        listen = getattr(self._storage, "listen", None)
        return None if listen is None else listen(on_heads)

    def count_members(self, group: str) -> int | None:
        """Live processes sharing the storage that joined `group` (`Storage.count_members`); None: unknown."""
        count = getattr(self._storage, "count_members", None)
        return None if count is None else count(group)

    def stream_heads(self, streams: list[str]) -> dict[str, int]:
        """Each non-empty stream's last sequence number, in one storage call (the feed's poller)."""
        return self._storage.heads(streams)

    def close(self) -> None:
        self._storage.close()

    def _open(self, key: str, sealed: bytes, token: int | None) -> bytes:
        """Open `sealed`, fetched under `token` (the change counter before the fetch, or None)."""
        memo = self._memo
        seal_id = sealed[_NONCE.start :] if len(sealed) < _BODY + 16 else sealed[_NONCE] + sealed[-16:]
        hit = memo.get(key)
        if hit is not None and hit[0] == seal_id:
            if token is not None and hit[2] != token:
                with self._memo_lock:  # same sealing, seen under a newer counter (unless evicted meanwhile)
                    if memo.get(key) is hit:
                        memo[key] = (seal_id, hit[1], token)
            return hit[1]
        plaintext = self.barrier.open(key, sealed)
        size = len(plaintext) + MEMO_ENTRY_OVERHEAD
        if size > MEMO_MAX_RECORD:
            return plaintext
        with self._memo_lock:
            old = memo.pop(key, None)
            if old is not None:
                self._memo_used -= len(old[1]) + MEMO_ENTRY_OVERHEAD
            while memo and self._memo_used + size > self._memo_budget:
                _, p, _ = memo.pop(next(iter(memo)))  # first in, first out: cheap, and hot keys come straight back
                self._memo_used -= len(p) + MEMO_ENTRY_OVERHEAD
            memo[key] = (seal_id, plaintext, token)
            self._memo_used += size
        return plaintext

    def _committed(self) -> None:
        """After any commit of ours (or its failure: it may have landed): tokens taken before it no longer match."""
        with self._epoch_lock:
            self._epoch += 1

    def write(self, changes: dict[str, bytes | None]) -> None:
        try:
            self._storage.write(self.sealed_writes(changes))
        finally:
            self._committed()

    def write_and_append(self, changes: dict[str, bytes | None], stream: str, entries: list[bytes]) -> list[int]:
        """Seal and apply `changes` (None deletes) and append `entries` (unsealed) to `stream` in one
        durable transaction; returns the entries' sequence numbers (`Storage.write_and_append`)."""
        try:
            return self._storage.write_and_append(self.sealed_writes(changes), stream, entries)
        finally:
            self._committed()

    async def write_and_append_async(
        self, changes: dict[str, bytes | None], stream: str, entries: list[bytes]
    ) -> list[int]:
        """`write_and_append` on the event loop: seals here, then awaits the group commit."""
        try:
            return await self._storage.write_and_append_async(self.sealed_writes(changes), stream, entries)
        finally:
            self._committed()

    def sealed_writes(self, changes: dict[str, bytes | None]) -> list[Write]:
        """The storage batch for `changes` (None deletes), sealed; what is remembered of those keys is dropped.

        Their rows are about to change, so the memo's entries could only miss: dropping them
        keeps the memo for records that are read (a write reads the head it then replaces).
        """
        with self._memo_lock:
            for k in changes:
                old = self._memo.pop(k, None)
                if old is not None:
                    self._memo_used -= len(old[1]) + MEMO_ENTRY_OVERHEAD
        writes = [Write(k, None if v is None else self.barrier.seal(k, v)) for k, v in changes.items()]
        if writes:  # every batch moves the change counter, so every process's next request notices it
            writes.append(Write(self._changes_key, self.barrier.seal(self._changes_key, b"")))
        return writes

    def rewrap_all(self, new: MasterKey, batch_size: int = 500, on_batch: Callable[[int], object] | None = None) -> int:
        """Re-wrap every record under `new`; returns how many were re-wrapped (`on_batch(n)` after each batch)."""
        count = 0
        after: str | None = None
        while True:
            rows = list(self._storage.scan("", after, batch_size))
            if not rows:
                return count
            self._storage.write([Write(k, self.barrier.rewrap(v, new)) for k, v in rows])
            self._committed()
            count += len(rows)
            if on_batch is not None:
                on_batch(len(rows))
            after = rows[-1][0]


def open_store(url: str, keyring: Keyring) -> SealedStore:
    """Open the storage named by `url` (running its schema migrations) behind a barrier of `keyring`."""
    return SealedStore(open_storage(url), Barrier(keyring))
