"""Which backend a storage URL names.

Kept apart from base.py, which every backend imports: opening a backend from
there would make base and the backends import each other.
"""

from __future__ import annotations

from strongroom.storage.base import Storage, StorageError, mask_url


def open_storage(url: str) -> Storage:
    """Open the backend named by a storage URL (`sqlite:///path`, `postgresql://...`)."""
    if url.startswith("sqlite:"):
        from strongroom.storage.sqlite import SQLiteStorage

        return SQLiteStorage.from_url(url)
    if url.startswith(("postgresql:", "postgres:")):
        from strongroom.storage.postgresql import PostgreSQLStorage

        return PostgreSQLStorage.from_url(url)
    raise StorageError(f"unsupported storage URL {mask_url(url)!r}: expected sqlite:///PATH or postgresql://...")
