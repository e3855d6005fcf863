"""Which backend a storage URL names.

Kept apart from base.py, which every backend imports: opening a backend from
there would make base and the backends import each other.
"""

from __future__ import annotations

from strongroom.storage.base import Storage, StorageError


def open_storage(url: str) -> Storage:
    """Open the backend named by a storage URL (`sqlite:///path`)."""
    if url.startswith("sqlite:"):
        from strongroom.storage.sqlite import SQLiteStorage

        return SQLiteStorage.from_url(url)
    if url.startswith(("postgresql:", "postgres:")):
        raise StorageError("PostgreSQL storage is not available in this version; use sqlite:///PATH")
    raise StorageError(f"unsupported storage URL {url!r}: expected sqlite:///PATH")
