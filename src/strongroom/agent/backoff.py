"""Exponential backoff with jitter, for retrying a vault that does not answer.

Delays grow 0.5 s, 1 s, 2 s, ... up to `cap`; each is drawn between half and
all of that (the "equal jitter" scheme), so agents that lost the vault at the
same moment do not come back at the same moment.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next(self) -> float:
        ceiling = min(self.cap, self.base * self.factor ** min(self.attempt, 64))
        self.attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0
