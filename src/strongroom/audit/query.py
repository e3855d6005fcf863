"""Reading the audit table back: filters for `strongroom audit list`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from strongroom.audit.event import azure_time
from strongroom.audit.log import STREAM
from strongroom.storage import Storage

_PAGE = 1000
_CHAIN_STREAM = re.compile(r"^audit(?:-[1-9][0-9]*)?(?:@[0-9a-f]{16})?\Z")  # every worker's and replica's chain
_RELATIVE = re.compile(r"^(\d+)([smhd])\Z")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class BadFilter(ValueError):
    pass


def parse_since(text: str, now: datetime | None = None) -> str:
    """`--since` as Azure's time format: an ISO 8601 instant, or an age like 30m, 12h, 7d."""
    now = now or datetime.now(UTC)
    m = _RELATIVE.match(text.strip())
    if m:
        when = now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    else:
        try:
            when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise BadFilter(f"--since: '{text}' is neither an ISO 8601 time (2026-01-31T12:00:00Z) nor an age (30m, 12h, 7d)") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return azure_time(when.timestamp())


def _vault_of(resource_id: str) -> str | None:
    parts = resource_id.upper().split("/")
    for i, part in enumerate(parts[:-1]):
        if part in ("VAULTS", "DELETEDVAULTS"):
            return parts[i + 1]
    return None


@dataclass
class Filter:
    vault: str | None = None
    operations: frozenset[str] | None = None  # lower-case names
    caller: str | None = None
    result: str | None = None
    since: str | None = None  # Azure time string; they sort as they read

    def matches(self, rec: dict[str, Any]) -> bool:
        if self.since and rec.get("time", "") < self.since:
            return False
        if self.operations and str(rec.get("operationName", "")).lower() not in self.operations:
            return False
        if self.vault and (_vault_of(str(rec.get("resourceId", ""))) or "") != self.vault.upper():
            return False
        if self.caller:
            claim = (rec.get("identity") or {}).get("claim") or {}
            ids = {str(claim.get(k, "")).lower() for k in ("oid", "appid", "xms_mirid")}
            if self.caller.lower() not in ids:
                return False
        if self.result:
            props = rec.get("properties") or {}
            wanted = self.result.lower()
            if wanted not in (
                str(rec.get("resultSignature", "")).lower(),
                str(rec.get("resultType", "")).lower(),
                str(props.get("httpStatusCode", "")),
            ):
                return False
        return True


def make_filter(
    vault: str | None = None,
    operation: str | None = None,
    caller: str | None = None,
    result: str | None = None,
    since: str | None = None,
) -> Filter:
    ops = frozenset(o.strip().lower() for o in operation.split(",") if o.strip()) if operation else None
    return Filter(vault, ops, caller, result, parse_since(since) if since else None)


def records(storage: Storage, flt: Filter, last: int | None = None) -> list[dict[str, Any]]:
    """Matching records, oldest first; only the newest `last` if given.

    Each worker process (and each replica) keeps its own chain (stream); their records are merged by time.
    """
    streams = [s for s in storage.streams(STREAM) if _CHAIN_STREAM.match(s)]
    found = [rec for stream in streams for rec in _all(storage, stream) if flt.matches(rec)]
    if len(streams) > 1:
        found.sort(key=lambda r: (str(r.get("time", "")), (r.get("chain") or {}).get("seq", 0)))
    return found[-last:] if last else found


def _all(storage: Storage, stream: str) -> Iterator[dict[str, Any]]:
    after = 0
    while True:
        rows = storage.read(stream, after, _PAGE)
        if not rows:
            return
        for _, value in rows:
            try:
                rec = json.loads(value)
            except (ValueError, UnicodeDecodeError):
                continue  # `audit verify` reports it
            if isinstance(rec, dict):
                yield rec
        after = rows[-1][0]


def table_row(rec: dict[str, Any]) -> dict[str, Any]:
    """One line for people: `-o table`."""
    claim = (rec.get("identity") or {}).get("claim") or {}
    props = rec.get("properties") or {}
    return {
        "Seq": (rec.get("chain") or {}).get("seq"),
        "Time": rec.get("time"),
        "Operation": rec.get("operationName"),
        "Result": rec.get("resultSignature"),
        "Caller": claim.get("appid") or claim.get("oid") or "",
        "CallerIp": rec.get("callerIpAddress"),
        "Vault": (_vault_of(str(rec.get("resourceId", ""))) or "").lower(),
        "Id": props.get("id"),
        "DurationMs": rec.get("durationMs"),
    }
