"""`strongroom audit verify`: find the first altered, inserted or removed record.

Each chain (audit.jsonl, and audit-k.jsonl for further worker processes) is
checked on its own. The file is walked line by line and the table by sequence
number, in step. For each line, in this order: is it a record at all, does its
content match its own hash, is its sequence number the next one, does the table
hold the same record under that number, does it chain to the previous record.
The first failure is reported with the file, line and sequence number. Records
the table holds beyond the end of the file were removed from the file;
records the file holds beyond the table are missing from the table.

It takes no lock and may run while the server writes: the table's length is
read before the file's, and the file is written first, so the file can only be
ahead, by a batch in flight, which is given a moment to reach the table.

What a hash chain cannot show: someone able to rewrite both sinks can rewrite a
whole history consistently. The head (last seq and hash) printed on success is
the value to note elsewhere to notice that later.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from strongroom.audit.chain import GENESIS, Link, Unreadable, canonical, parse
from strongroom.audit.log import Slot, slots
from strongroom.storage import Storage

_PAGE = 1000
IN_FLIGHT_GRACE = 2.0  # seconds a batch in flight gets to reach the table


@dataclass
class Problem:
    kind: str  # altered | inserted | removed | unreadable | mismatch | missing
    source: str  # file | table
    file: str
    line: int | None
    seq: int | None
    message: str


@dataclass
class ChainReport:
    file: str
    stream: str
    records: int = 0
    table_records: int = 0
    head: dict[str, Any] | None = None
    problem: Problem | None = None
    notes: list[str] = field(default_factory=list)
    # Changes recorded as started (an intent record) with no outcome record: a crash or a sink failure came
    # between them, so the change may or may not have been committed. Not tampering; listed to be looked at.
    unfinished: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Report:
    chains: list[ChainReport]

    @property
    def problem(self) -> Problem | None:
        return next((c.problem for c in self.chains if c.problem is not None), None)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": sum(c.records for c in self.chains),
            "problem": asdict(self.problem) if self.problem else None,
            "chains": [asdict(c) for c in self.chains],
        }


def _table_len(storage: Storage, stream: str) -> int:
    last = storage.last(stream)
    return last[0] if last else 0


def _file_lines(path: Path, size: int) -> Iterator[bytes]:
    """Complete lines within the first `size` bytes (a line still being written is left out)."""
    with open(path, "rb") as f:
        remaining = size
        for line in f:
            if remaining < len(line) or not line.endswith(b"\n"):
                return
            remaining -= len(line)
            yield line[:-1]


def _table_rows(storage: Storage, stream: str, after: int = 0) -> Iterator[tuple[int, bytes]]:
    while True:
        rows = storage.read(stream, after, _PAGE)
        if not rows:
            return
        yield from rows
        after = rows[-1][0]


def _same(a: bytes, b: bytes) -> bool:
    if a == b:
        return True
    try:  # the same record re-serialised is the same record
        return canonical(json.loads(a)) == canonical(json.loads(b))
    except (ValueError, UnicodeDecodeError):
        return False


def _intact(raw: bytes) -> bool:
    try:
        return parse(raw)[1].intact
    except Unreadable:
        return False


def _removed(first: int, last: int) -> str:
    return f"record {first} was removed" if first == last else f"records {first}..{last} were removed"


class _Table:
    """The table's rows of one stream, read forward in step with the file."""

    def __init__(self, storage: Storage, stream: str, length: int, grace: float) -> None:
        self.storage, self.stream, self.length, self.grace = storage, stream, length, grace
        self._rows = _table_rows(storage, stream)
        self._pending = next(self._rows, None)
        self._seen = 0

    def row(self, seq: int) -> bytes | None:
        if seq > self.length and not self._wait_for(seq):
            return None
        if self._pending is None:  # the rows ran out earlier; more may have arrived since
            self._rows = _table_rows(self.storage, self.stream, self._seen)
            self._pending = next(self._rows, None)
        while self._pending is not None and self._pending[0] < seq:
            self._seen = self._pending[0]
            self._pending = next(self._rows, None)
        return self._pending[1] if self._pending is not None and self._pending[0] == seq else None

    def _wait_for(self, seq: int) -> bool:
        """A record beyond the table: a batch in flight reaches it within moments."""
        deadline = time.monotonic() + self.grace
        while True:
            self.length = _table_len(self.storage, self.stream)
            if self.length >= seq:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def verify_chain(state_dir: Path, storage: Storage, slot: Slot, grace: float = IN_FLIGHT_GRACE) -> ChainReport:
    path = state_dir / slot.file
    report = ChainReport(file=str(path), stream=slot.stream)
    table_len = _table_len(storage, slot.stream)  # before the file: the file is written first
    report.table_records = table_len
    name = path.name

    def problem(kind: str, source: str, line: int | None, seq: int | None, message: str) -> ChainReport:
        report.problem = Problem(kind, source, name, line, seq, message)
        return report

    if not path.exists():
        if table_len:
            return problem("removed", "file", None, 1, f"{name} is missing but the table holds {table_len} of its records")
        return report
    size = path.stat().st_size
    table = _Table(storage, slot.stream, table_len, grace)
    expected, prev, lineno = 1, GENESIS, 0
    started: dict[str, dict[str, Any]] = {}  # requestId -> the intent still waiting for its outcome
    for lineno, raw in enumerate(_file_lines(path, size), start=1):
        report.records = lineno
        try:
            record, link = parse(raw)
        except Unreadable as exc:
            return problem("unreadable", "file", lineno, None, f"{name} line {lineno} is not an audit record ({exc}): inserted or damaged")
        where = f"{name} line {lineno} (seq {link.seq})"
        if not link.intact:
            return problem("altered", "file", lineno, link.seq, f"{where} was altered: its content does not match its hash")
        if link.seq > expected:
            return problem("removed", "file", lineno, expected, f"{_removed(expected, link.seq - 1)} before {where}")
        if link.seq < expected:
            return problem("inserted", "file", lineno, link.seq, f"{where} was inserted: seq {link.seq} came before (expected {expected})")
        found = _compare_with_table(table.row(link.seq), raw, lineno, link, where, table.length)
        if found is not None:
            return problem(*found)
        if link.prev != prev:
            return problem(
                "altered", "file", lineno - 1, link.seq - 1,
                f"{name} line {lineno - 1} (seq {link.seq - 1}) was altered or replaced: {where} chains to a different hash",
            )
        expected, prev = link.seq + 1, link.hash
        _pair(record, link.seq, started)
    report.table_records = table.length
    if table.length >= expected:
        return problem(
            "removed", "file", lineno + 1, expected,
            f"{_removed(expected, table.length)} from the end of {name} (the table still has them)",
        )
    if path.stat().st_size > size or (size and _ends_mid_line(path, size)):
        report.notes.append("the file ends in a line being written (or left half-written by a crash; the server cuts it off at start)")
    if expected > 1:
        report.head = {"seq": expected - 1, "hash": prev}
    if started:
        report.unfinished = sorted(started.values(), key=lambda u: u["seq"])[:MAX_UNFINISHED]
        report.notes.append(
            f"{len(started)} change(s) recorded as started have no outcome record: the server stopped or its audit sink "
            "failed in between (or the answer is still being written); see `unfinished`"
        )
    return report


MAX_UNFINISHED = 100


def _pair(record: dict[str, Any], seq: int, started: dict[str, dict[str, Any]]) -> None:
    """Match an intent record with the outcome of the same request (properties.requestId)."""
    props = record.get("properties")
    if not isinstance(props, dict) or not isinstance(props.get("requestId"), str):
        return
    request_id = props["requestId"]
    if props.get("auditStage") == "intent":
        started[request_id] = {"seq": seq, "operationName": record.get("operationName"), "requestId": request_id,
                               "time": record.get("time")}
    elif "auditStage" not in props:
        started.pop(request_id, None)


def _ends_mid_line(path: Path, size: int) -> bool:
    with open(path, "rb") as f:
        f.seek(size - 1)
        return f.read(1) != b"\n"


def _compare_with_table(
    row: bytes | None, raw: bytes, lineno: int, link: Link, where: str, table_len: int
) -> tuple[str, str, int, int, str] | None:
    if row is None:
        if link.seq <= table_len:
            return ("removed", "table", lineno, link.seq, f"the table lacks record {link.seq} ({where}): removed from the table")
        return ("missing", "table", lineno, link.seq, f"the table ends at {table_len}; {where} and any later records are not in it")
    if _same(row, raw):
        return None
    if not _intact(row):
        return ("altered", "table", lineno, link.seq,
                f"the table's record {link.seq} was altered: it differs from {where} and does not match its hash")
    return (
        "mismatch", "file", lineno, link.seq,
        f"{where} differs from the table's record {link.seq}; both match their hashes, so one of them was rewritten",
    )


def verify(state_dir: Path, storage: Storage, grace: float = IN_FLIGHT_GRACE) -> Report:
    return Report([verify_chain(state_dir, storage, slot, grace) for slot in slots(state_dir, storage)])
