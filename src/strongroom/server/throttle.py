"""Per-vault request limits, as Key Vault's service limits: beyond them, 429 Throttled.

Azure allows each vault 300 "creates" (SecretSet, key create/import, certificate
import) and 4,000 other transactions per 10 seconds; a request beyond the limit gets
429 with the `Throttled` error, and throttled requests do not count toward the limit.
Strongroom adds a `Retry-After` header (seconds), which Azure omits.

Per vault, the limits can be changed with vault tags (settable through the ARM vault
PUT, e.g. `strongroom keyvault create --name kv1 --tags strongroom-reads-per-10s=20000`):
`strongroom-reads-per-10s` and `strongroom-creates-per-10s`, positive integers; a tag
that is not one is ignored. `strongroom up --no-throttle` turns limits off for the
whole instance (benchmarks).

Each worker process keeps its own windows and allows limit / processes of the traffic
(at least 1), where processes is this server's workers on SQLite, and on PostgreSQL
every live server process of every replica (`share`, refreshed every few seconds
from the storage's member count: a shared advisory lock per process, released when
it dies). The kernel spreads connections across workers and the load balancer
across replicas, so the instance allows about the vault's limit without any shared
state on the hot path. A skewed spread of connections can throttle a little early;
it never allows more than the limit (but for the few seconds after a replica joins,
before the others have counted it).

The window slides in one-second steps (see SlidingWindow).

Only authenticated requests count against a vault, and each caller (token `oid`)
has the vault's limit to itself: a flood without a valid token, or from another
principal, cannot lock a legitimate caller out. A request that fails
authentication counts instead against its source address (`check_source`,
UNAUTHENTICATED_PER_WINDOW per 10 s, `strongroom up --unauthenticated-per-10s`):
past it the source gets 429 for its failures until its window has room.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from strongroom.errors import Throttled as TooManyRequests
from strongroom.keyvault.vaults import Vault

WINDOW = 10.0
READS_PER_WINDOW = 4000
CREATES_PER_WINDOW = 300
UNAUTHENTICATED_PER_WINDOW = 300
MAX_SOURCES = 10_000  # source windows kept; past it the oldest is forgotten (memory stays bounded)
READS_TAG = "strongroom-reads-per-10s"
CREATES_TAG = "strongroom-creates-per-10s"

# Operations Azure counts as "creates"; every other vault transaction counts as a read.
CREATE_OPERATIONS = frozenset({"SecretSet", "KeyCreate", "KeyImport", "CertificateImport"})

THROTTLED_MESSAGE = (
    "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached"
)


class Throttled(TooManyRequests):
    """429 with Azure's body; `retry_after` (whole seconds) becomes the Retry-After header."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("Throttled", THROTTLED_MESSAGE, retry_after=retry_after)


class SlidingWindow:
    """Admissions in the last WINDOW seconds, counted in one-second buckets.

    O(1) memory per vault and kind; any 10 seconds allow the limit (plus at most what
    one bucket's edge lets through), with no burst of twice the limit at a boundary as
    fixed windows have; and the wait for room is known to the second (Retry-After <= 10).
    """

    __slots__ = ("counts", "last", "total")

    BUCKETS = 10
    WIDTH = WINDOW / BUCKETS

    def __init__(self) -> None:
        self.counts = [0] * self.BUCKETS
        self.last = 0  # the bucket index (time // WIDTH) counts were last advanced to
        self.total = 0

    def _advance(self, index: int) -> None:
        if index - self.last >= self.BUCKETS:
            self.counts = [0] * self.BUCKETS
            self.total = 0
        else:
            for i in range(self.last + 1, index + 1):
                self.total -= self.counts[i % self.BUCKETS]
                self.counts[i % self.BUCKETS] = 0
        self.last = max(self.last, index)

    def admit(self, now: float, limit: int) -> float | None:
        """Count and admit one request (None), or refuse it: seconds until one would be admitted."""
        index = int(now // self.WIDTH)
        self._advance(index)
        if self.total + 1 <= limit:
            self.counts[index % self.BUCKETS] += 1
            self.total += 1
            return None
        # Buckets leave the window oldest first; room appears when enough of them have.
        need, freed = self.total + 1 - limit, 0
        for i in range(index - self.BUCKETS + 1, index + 1):
            freed += self.counts[i % self.BUCKETS]
            if freed >= need:
                return (i + self.BUCKETS) * self.WIDTH - now
        return WINDOW  # unreachable while total counts the buckets


def _tag_limit(vault: Vault, tag: str, default: int) -> int:
    raw = vault.tags.get(tag) if vault.tags else None
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return default
    return value if value > 0 else default


class Throttle:
    """The limits of every vault this worker serves, and of unauthenticated failures per source address."""

    def __init__(
        self, workers: int = 1, clock: Callable[[], float] = time.monotonic,
        unauthenticated: int = UNAUTHENTICATED_PER_WINDOW,
    ) -> None:
        self.workers = max(1, workers)
        self.clock = clock
        self._own_workers = self.workers
        self._unauthenticated_total = unauthenticated
        self.unauthenticated = max(1, unauthenticated // self.workers)
        self._windows: dict[tuple[str, bool, str], SlidingWindow] = {}
        self._sources: dict[str, SlidingWindow] = {}

    def share(self, processes: int | None) -> None:
        """Allow 1/`processes` of every limit here: the live server processes of every replica (None: our workers)."""
        self.workers = max(1, processes) if processes else self._own_workers
        self.unauthenticated = max(1, self._unauthenticated_total // self.workers)

    def limit(self, vault: Vault, create: bool) -> int:
        """This worker's share of the vault's limit for the kind of request."""
        total = _tag_limit(vault, CREATES_TAG, CREATES_PER_WINDOW) if create else _tag_limit(vault, READS_TAG, READS_PER_WINDOW)
        return max(1, total // self.workers)

    def check(self, vault: Vault, operation: str, caller: str = "") -> None:
        """Admit an authenticated caller's request or raise Throttled (the refused request is not counted)."""
        self.admit(vault, operation in CREATE_OPERATIONS, caller)

    def admit(self, vault: Vault, create: bool, caller: str = "") -> None:
        """Admit one request of `caller` of the kind (a create or not) or raise Throttled (a refusal is not counted).

        Routes declare their kind (`server/guards.py`: VAULT_CREATE or VAULT_READ); the guard calls this.
        """
        key = (vault.key, create, caller)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = SlidingWindow()
        wait = window.admit(self.clock(), self.limit(vault, create))
        if wait is not None:
            raise Throttled(max(1, math.ceil(wait)))

    def check_source(self, address: str) -> None:
        """Count one failed authentication from `address`; Throttled once it has failed too often."""
        window = self._sources.get(address)
        if window is None:
            if len(self._sources) >= MAX_SOURCES:
                del self._sources[next(iter(self._sources))]
            window = self._sources[address] = SlidingWindow()
        wait = window.admit(self.clock(), self.unauthenticated)
        if wait is not None:
            raise Throttled(max(1, math.ceil(wait)))

    def source_wait(self, address: str) -> int | None:
        """Seconds `address` must wait because it failed too often (None: it may try), counting nothing.

        The token endpoint asks before it checks a credential, so a source past its limit
        cannot go on guessing secrets; its failures are counted with `check_source`.
        """
        window = self._sources.get(address)
        if window is None:
            return None
        now = self.clock()
        window._advance(int(now // window.WIDTH))
        if window.total < self.unauthenticated:
            return None
        return max(1, math.ceil(WINDOW - (now % window.WIDTH)))
