"""The storage interface every backend implements."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol


def mask_url(url: str) -> str:
    """`url` with any password replaced by `***` (URI userinfo, `password=` parameters, key=value form)."""
    url = re.sub(r"(://[^/@:?#]*:)[^@/?#]*@", r"\1***@", url)
    url = re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", url)
    if "://" in url:
        return url
    return re.sub(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url)


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix` (None: no bound).

    Code point order is UTF-8 byte order, which is how the backends compare keys
    (SQLite TEXT, PostgreSQL's "C" collation), so "increment the last character"
    bounds the range. Appending U+10FFFF instead would drop keys that continue
    with U+10FFFF.
    """
    stem = prefix.rstrip("\U0010ffff")
    if not stem:
        return None
    nxt = ord(stem[-1]) + 1
    if 0xD800 <= nxt <= 0xDFFF:  # surrogates cannot be stored; skip to the next real character
        nxt = 0xE000
    return stem[:-1] + chr(nxt)


class StorageError(Exception):
    """The backend failed; the caller must treat the operation as not done."""


@dataclass(frozen=True, slots=True)
class Write:
    """One change in an atomic batch: `value=None` deletes the key."""

    key: str
    value: bytes | None


class Storage(Protocol):
    """Ordered key/value store with atomic batches.

    Keys are plain strings compared bytewise; values are opaque bytes. A batch
    passed to `write` is applied all-or-nothing and is durable when it returns.
    """

    def get(self, key: str) -> bytes | None: ...

    def scan(self, prefix: str, after: str | None = None, limit: int | None = None) -> Iterator[tuple[str, bytes]]:
        """Yield (key, value) with `key` starting with `prefix`, in key order, strictly after `after`."""
        ...

    def write(self, batch: list[Write]) -> None: ...

    def write_and_append(self, batch: list[Write], stream: str, entries: list[bytes]) -> list[int]:
        """Apply `batch` and append `entries` to `stream` in one atomic, durable transaction.

        The change feed uses it so that a change and its event are never one without
        the other, even across a crash. Returns the entries' sequence numbers, which
        follow the rules of `append` (no gaps, ordered across processes).
        """
        ...

    async def write_and_append_async(self, batch: list[Write], stream: str, entries: list[bytes]) -> list[int]:
        """`write_and_append` for a caller on the event loop: awaits the commit instead of blocking a thread."""
        ...

    # -- append-only logs ------------------------------------------------
    # Numbered streams of opaque entries (the audit log; later the change feed).
    # Entries are never changed or removed through this interface.

    def append(
        self, stream: str, entries: list[bytes], *, sync: bool = True, after: int | None = None
    ) -> list[int]:
        """Append `entries` to `stream` atomically; return their sequence numbers.

        Numbers start at 1 in each stream and have no gaps: each batch continues
        from the stream's last entry, even when several processes append. With
        `after`, append only if the stream's last number is `after` (else
        StorageError, nothing appended). With `sync` the batch is durable when
        this returns; without, it is visible at once but a power failure may lose
        it until a later synced write, which suits callers that keep their own
        durable copy (the audit table mirrors the fsynced audit.jsonl and is
        caught up from it).
        """
        ...

    def read(self, stream: str, after: int = 0, limit: int | None = None) -> list[tuple[int, bytes]]:
        """(seq, entry) of `stream` with seq > `after`, in sequence order."""
        ...

    def last(self, stream: str) -> tuple[int, bytes] | None:
        """The stream's newest (seq, entry), or None while it is empty."""
        ...

    def heads(self, streams: list[str]) -> dict[str, int]:
        """The last sequence number of each of `streams` (0 while empty), in one trip to storage.

        The change feed's watcher asks this for every stream someone waits on, 20 times
        a second: one query for all of them, not one per stream.
        """
        ...

    def streams(self, prefix: str) -> list[str]:
        """Names of the non-empty streams starting with `prefix`, in order."""
        ...

    def listen(self, on_heads: Callable[[dict[str, int] | None], None]) -> Callable[[], None] | None:
        """Push notice of streams grown by `write_and_append` in any process: `on_heads({stream: last})`.

        `on_heads({})` when listening (again): notices may have been missed, re-read
        the heads once; `on_heads(None)` when the listener lost its connection: poll
        until the next `{}`. Returns the function that stops
        listening, or None where the backend cannot push (SQLite: callers poll `heads`).
        """
        ...

    # -- leadership --------------------------------------------------------

    def try_lead(self, name: str) -> bool:
        """Hold (or keep holding) the leadership called `name`; True while this handle holds it.

        One handle at a time holds it among all that share the store (processes,
        replicas). It is let go by `close` or when the holder dies, and is then
        free for the next caller. Background work that must run once calls this
        before each round.
        """
        ...

    def count_members(self, group: str) -> int | None:
        """Join `group` for this handle's life and count the live handles in it (every replica's processes).

        None where the backend cannot count across machines (SQLite: one machine,
        whose worker count the server knows) or cannot be asked right now.
        """
        ...

    def close(self) -> None: ...

