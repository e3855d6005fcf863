"""Storage: one interface over untrusted bytes.

Like Vault's physical backends, storage knows nothing of Azure or of secrets: it
keeps opaque values under ordered string keys. Everything it holds has already
been sealed by the barrier.
"""

from strongroom.storage.backends import open_storage
from strongroom.storage.base import Storage, StorageError, Write

__all__ = ["Storage", "StorageError", "Write", "open_storage"]
