"""The server's idea of now, in whole Unix seconds (Key Vault's unit)."""

from __future__ import annotations

import time


def now() -> int:
    return int(time.time())
