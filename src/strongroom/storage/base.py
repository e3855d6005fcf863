"""The storage interface every backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol


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

    def close(self) -> None: ...


def open_storage(url: str) -> Storage:
    """Open the backend named by a storage URL (`sqlite:///path`)."""
    if url.startswith("sqlite:"):
        from strongroom.storage.sqlite import SQLiteStorage

        return SQLiteStorage.from_url(url)
    if url.startswith(("postgresql:", "postgres:")):
        raise StorageError("PostgreSQL storage is not available in this version; use sqlite:///PATH")
    raise StorageError(f"unsupported storage URL {url!r}: expected sqlite:///PATH")
