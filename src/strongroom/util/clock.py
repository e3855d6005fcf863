"""The server's idea of now, in whole Unix seconds (Key Vault's unit).

`now()` is the real time: tokens, audit records and everything identity-related
use it. `vault_now(vault)` is the time as one vault's objects see it: the real
time plus a dev-mode shift (all vaults, or one), as Lowkey Vault's time shift
lets a test "wait" a year for a certificate to renew. The shift lives in this
module's memory; the server loads it from storage and keeps every worker in
step (see `keyvault/timeshift.py`). With no shift set, `vault_now` costs one
boolean test more than `now`.
"""

from __future__ import annotations

import time

_shifted = False
_all_vaults = 0
_per_vault: dict[str, int] = {}


def now() -> int:
    return int(time.time())


def vault_now(vault: str) -> int:
    """Now for the objects of vault `vault` (its lowercase name)."""
    t = int(time.time())
    if _shifted:
        t += _all_vaults + _per_vault.get(vault, 0)
    return t


def shift_of(vault: str) -> int:
    """Seconds `vault_now(vault)` runs ahead of the real time."""
    return _all_vaults + _per_vault.get(vault, 0) if _shifted else 0


def set_shifts(all_vaults: int, per_vault: dict[str, int]) -> None:
    """Replace the shifts (seconds ahead of real time); zero everywhere turns shifting off."""
    global _shifted, _all_vaults, _per_vault
    clean = {k.lower(): int(v) for k, v in per_vault.items() if v}
    _all_vaults, _per_vault = int(all_vaults), clean
    _shifted = bool(_all_vaults or clean)


def shifts() -> tuple[int, dict[str, int]]:
    return _all_vaults, dict(_per_vault)
