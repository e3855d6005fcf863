"""Dev-mode time travel: shift the clock of one vault, or of all, forward.

Lowkey Vault offers the same to people who test renewal: "wait" 11 months and
see the certificate renew. The shifts are kept (sealed, like everything) in
one record so every worker applies the same ones; `util.clock` holds the
applied values. Shifts only move forward and only add up: a vault's objects
never see time go backwards. Outside dev mode shifts are neither accepted nor
loaded, whatever the record says.
"""

from __future__ import annotations

from typing import Any

from strongroom.barrier import SealedStore, records
from strongroom.keyvault.errors import bad_parameter
from strongroom.util import clock

_KEY = "instance/timeshift"
MAX_SHIFT = 100 * 365 * 86400


def load(store: SealedStore) -> tuple[int, dict[str, int]]:
    rec = records.load(store, _KEY)
    if rec is None:
        return 0, {}
    return int(rec.get("all", 0)), {k: int(v) for k, v in (rec.get("vaults") or {}).items()}


def apply(store: SealedStore) -> bool:
    """Load the stored shifts into the clock; True when they changed."""
    stored = load(store)
    if stored == clock.shifts():
        return False
    clock.set_shifts(*stored)
    return True


def shift(store: SealedStore, seconds: Any, vault: str | None) -> tuple[int, dict[str, int]]:
    """Move `vault` (None: every vault) `seconds` further ahead and apply it here at once."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
        raise bad_parameter("'seconds' must be a positive whole number: time only moves forward.")
    all_vaults, per_vault = load(store)
    if vault is None:
        all_vaults += seconds
    else:
        per_vault[vault.lower()] = per_vault.get(vault.lower(), 0) + seconds
    if max([all_vaults, *per_vault.values()]) > MAX_SHIFT:
        raise bad_parameter("A time shift may not exceed 100 years.")
    store.write({_KEY: records.dump({"all": all_vaults, "vaults": per_vault})})
    clock.set_shifts(all_vaults, per_vault)
    return all_vaults, per_vault


def reset(store: SealedStore) -> None:
    store.write({_KEY: None})
    clock.set_shifts(0, {})
