"""The hash chain that makes the audit log tamper-evident.

A stored record is the AuditEvent as canonical JSON (keys sorted, no spaces,
UTF-8) with one field appended last: `chain: {"seq", "prev", "hash"}`, its
position (1, 2, ...), the previous record's hash (64 zeros for the first) and

    hash = SHA-256( "<seq>\\n<prev>\\n" + canonical JSON of the record without "chain" )

Changing any field breaks the record's own hash; removing, inserting or
reordering records breaks `seq` or `prev`. Writing the line as the canonical
bytes themselves costs one serialisation per record on the hot path.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from strongroom.util import jsonbytes

GENESIS = "0" * 64


canonical = jsonbytes.canonical


def _digest(seq: int, prev: str, body: bytes) -> str:
    return hashlib.sha256(b"%d\n%s\n" % (seq, prev.encode()) + body).hexdigest()


def record_hash(record: dict[str, Any]) -> str:
    """The hash a parsed record should carry, from its content and its chain position."""
    chain = record.get("chain") or {}
    event = {k: v for k, v in record.items() if k != "chain"}
    return _digest(chain.get("seq", 0), str(chain.get("prev", "")), canonical(event))


def seal(event: dict[str, Any], seq: int, prev: str) -> tuple[bytes, str]:
    """The JSONL line (without newline) for `event` at position `seq`, and its hash."""
    return seal_body(canonical(event), seq, prev)


def seal_body(body: bytes, seq: int, prev: str) -> tuple[bytes, str]:
    """Like `seal`, for an event already serialised with `canonical`."""
    digest = _digest(seq, prev, body)
    chain = b',"chain":{"seq":%d,"prev":"%s","hash":"%s"}}' % (seq, prev.encode(), digest.encode())
    return (body[:-1] + chain if body != b"{}" else b"{" + chain[1:]), digest


@dataclass(frozen=True)
class Link:
    """The chain fields of one stored record, as far as they could be read."""

    seq: int
    prev: str
    hash: str
    intact: bool  # the record's content matches its own hash


class Unreadable(ValueError):
    """Not a JSON audit record with chain fields."""


def parse(line: bytes) -> tuple[dict[str, Any], Link]:
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise Unreadable("not JSON") from None
    chain = record.get("chain") if isinstance(record, dict) else None
    if not isinstance(chain, dict):
        raise Unreadable("no chain fields")
    seq, prev, digest = chain.get("seq"), chain.get("prev"), chain.get("hash")
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(prev, str) or not isinstance(digest, str):
        raise Unreadable("malformed chain fields")
    return record, Link(seq, prev, digest, record_hash(record) == digest)
