"""Envelope encryption between the logical layers and untrusted storage."""

from strongroom.barrier.envelope import Barrier, BarrierError, SealedStore
from strongroom.barrier.keyring import Keyring, MasterKey

__all__ = ["Barrier", "BarrierError", "SealedStore", "Keyring", "MasterKey"]
