"""ISO 8601 durations as key rotation policies use them ("P90D", "P1Y", "P2M", "P1Y2M3D", "PT12H").

Years and months are calendar units: a key created on 31 January with "P1M"
rotates on the last day of February, as Azure's date arithmetic does.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime

_DURATION = re.compile(
    r"^P(?!\Z)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?!\Z)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?\Z"
)


@dataclass(frozen=True)
class Duration:
    text: str
    years: int = 0
    months: int = 0
    days: int = 0
    seconds: int = 0

    def add_to(self, ts: int) -> int:
        """`ts` (Unix seconds) plus this duration."""
        dt = datetime.fromtimestamp(ts, UTC)
        months = dt.month - 1 + self.months + 12 * self.years
        year, month = dt.year + months // 12, months % 12 + 1
        day = min(dt.day, calendar.monthrange(year, month)[1])
        base = int(dt.replace(year=year, month=month, day=day).timestamp())
        return base + self.days * 86400 + self.seconds

    def subtract_from(self, ts: int) -> int:
        dt = datetime.fromtimestamp(ts, UTC)
        months = dt.month - 1 - self.months - 12 * self.years
        year, month = dt.year + months // 12, months % 12 + 1
        day = min(dt.day, calendar.monthrange(year, month)[1])
        base = int(dt.replace(year=year, month=month, day=day).timestamp())
        return base - self.days * 86400 - self.seconds

    def approx_seconds(self) -> int:
        """For comparing against minimums (a month counted as 30 days, a year as 365)."""
        return (self.years * 365 + self.months * 30 + self.days) * 86400 + self.seconds


def parse(text: object) -> Duration | None:
    """The duration, or None when `text` is not an ISO 8601 duration."""
    if not isinstance(text, str):
        return None
    m = _DURATION.match(text.strip().upper())
    if not m:
        return None
    y, mo, w, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return Duration(text.strip(), y, mo, w * 7 + d, h * 3600 + mi * 60 + s)
