"""Envelope encryption between the logical layers and untrusted storage."""

from strongroom.barrier.envelope import Barrier, BarrierError, SealedStore, open_store
from strongroom.barrier.keyring import Keyring, MasterKey
from strongroom.storage import StorageError  # what every store operation may raise: nothing was done

__all__ = ["Barrier", "BarrierError", "SealedStore", "Keyring", "MasterKey", "open_store", "StorageError"]
