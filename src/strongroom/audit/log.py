"""One audit chain and its two sinks: a JSONL file and a storage stream.

`audit.jsonl` (state dir, mode 0600) is the primary record; the storage stream
"audit" holds the same lines for queries. Records reach the file first (`write`,
on the event loop), then `commit` fsyncs it and copies them to the table, whose
commit skips its own fsync: a power failure may leave the table behind the file,
and whoever opens the chain next copies the missing records over. When each
request may be answered is the writer's business (`strongroom.audit.writer`).

Worker processes (`--workers N`) never share a chain, so the hot path takes no
cross-process lock: each process claims a free slot at start by holding an
exclusive `flock` on its lock file for as long as it lives. Slot 0 is
audit.jsonl / audit.lock / stream "audit"; slot k is audit-k.jsonl /
audit-k.lock / stream "audit-k". A restarted worker takes over a free slot and
continues its chain. `strongroom audit verify` checks every chain it finds.

The owner of a chain is the only one who writes its file, so the file must look
exactly as the owner left it. If it does not (removed, replaced, truncated,
appended to), writing stops, and every audited request fails closed until the
file is put back; the owner never adopts changes made by someone else.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.audit.chain import GENESIS, Unreadable, canonical, parse, seal_body
from strongroom.storage import Storage, StorageError

log = logging.getLogger("strongroom.audit")

AUDIT_FILE = "audit.jsonl"
STREAM = "audit"
MAX_SLOTS = 256
_CHUNK = 64 * 1024
_SLOT_FILE = re.compile(r"^audit(?:-([1-9][0-9]*))?\.jsonl\Z")
_SLOT_STREAM = re.compile(r"^audit(?:-([1-9][0-9]*))?(?:@([0-9a-f]{16}))?\Z")
REPLICA_FILE = "replica-id"  # present only in the state dir of a replica on shared storage


def replica_of(state_dir: Path) -> str:
    """This state dir's replica id ("" for a lone instance): its chains' streams end in "@<id>".

    Replicas share one storage but each writes its own chains, so their streams
    must differ; a lone instance keeps the plain names it always had.
    """
    try:
        return (state_dir / REPLICA_FILE).read_text().strip()
    except FileNotFoundError:
        return ""


class AuditSinkError(Exception):
    """A record could not be written durably to both sinks; the request must not be answered."""


@dataclass(frozen=True)
class Slot:
    """Where one chain lives."""

    number: int
    replica: str = ""

    @property
    def file(self) -> str:
        return AUDIT_FILE if self.number == 0 else f"audit-{self.number}.jsonl"

    @property
    def lock(self) -> str:
        return "audit.lock" if self.number == 0 else f"audit-{self.number}.lock"

    @property
    def stream(self) -> str:
        name = STREAM if self.number == 0 else f"{STREAM}-{self.number}"
        return f"{name}@{self.replica}" if self.replica else name


def slots(state_dir: Path, storage: Storage) -> list[Slot]:
    """Every chain that has a file or a stream (a chain missing one of them is still listed)."""
    found: set[int] = set()
    replica = replica_of(state_dir)
    for path in state_dir.glob("audit*.jsonl"):
        m = _SLOT_FILE.match(path.name)
        if m:
            found.add(int(m.group(1) or 0))
    for name in storage.streams(STREAM):
        m = _SLOT_STREAM.match(name)
        if m and (m.group(2) or "") == replica:  # other replicas' chains are theirs to verify
            found.add(int(m.group(1) or 0))
    return [Slot(n, replica) for n in sorted(found)]


@dataclass(frozen=True)
class Tail:
    """Where the chain ends: the last record and the file as its owner left it."""

    seq: int
    hash: str
    size: int
    ino: int
    dev: int
    line: bytes | None


@dataclass(frozen=True)
class Sealed:
    """A batch sealed onto the chain, not yet durable."""

    lines: list[bytes]
    data: bytes
    before: Tail
    after: Tail


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def last_lines(fd: int, size: int, n: int) -> list[bytes]:
    """The last `n` complete lines of the first `size` bytes (fewer if the file has fewer)."""
    if n <= 0 or size == 0:
        return []
    pos, buf = size, b""
    while pos > 0 and buf.count(b"\n") <= n:
        step = min(max(_CHUNK, len(buf)), pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
    lines = buf.split(b"\n")[:-1]
    if pos > 0:
        lines = lines[1:]  # the first piece may start mid-line
    return lines[-n:]


def _seq_of(line: bytes) -> int | None:
    try:
        return parse(line)[1].seq
    except Unreadable:
        return None


def claim_slot(state_dir: Path) -> tuple[Slot, int]:
    """The first slot no live process holds, and the descriptor that holds it now."""
    replica = replica_of(state_dir)
    for n in range(MAX_SLOTS):
        slot = Slot(n, replica)
        fd = os.open(state_dir / slot.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return slot, fd
    raise AuditSinkError(f"all {MAX_SLOTS} audit slots are taken")


class AuditLog:
    """The chain this process owns. Not thread-safe: one batch at a time."""

    def __init__(self, state_dir: Path, storage: Storage, *, close_storage: bool = False) -> None:
        """`storage` holds the table (`audit.table.audit_table`); `close_storage`: it is this log's to close."""
        self.state_dir = state_dir
        self.storage = storage
        self._close_storage = close_storage
        self.slot, self._lock_fd = claim_slot(state_dir)
        self.path = state_dir / self.slot.file
        self._fd: int | None = None
        self._tail: Tail | None = None
        try:
            self.adopt()
        except (OSError, StorageError, AuditSinkError) as exc:
            # Start anyway: health checks work and every audited request fails
            # closed, with this reason in the log, until the sinks are repaired.
            log.error("audit log %s unusable, audited requests will be refused: %s", self.path.name, exc)

    # -- taking over the chain (start, recovery) ------------------------------

    @property
    def ready(self) -> bool:
        return self._tail is not None

    def adopt(self) -> None:
        """Open the chain where it ends: repair a torn last line, bring the table up to the file."""
        self._tail = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._create_if_new()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:
            raise AuditSinkError(f"{self.path} is missing") from None
        try:
            st = os.fstat(fd)
            size = st.st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                size = self._repair_torn_end(fd, size)
            tail = self._read_tail(fd, size, st)
            self._catch_up_table(fd, tail)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._tail = fd, tail

    def _create_if_new(self) -> None:
        if self.path.exists() or self.path.is_symlink():
            return
        existing = self.storage.last(self.slot.stream)
        if existing is not None:
            raise AuditSinkError(f"{self.path} is missing but the audit table holds {existing[0]} of its records")
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return
        dir_fd = os.open(self.state_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _read_tail(self, fd: int, size: int, st: os.stat_result) -> Tail:
        if size == 0:
            return Tail(0, GENESIS, 0, st.st_ino, st.st_dev, None)
        (line,) = last_lines(fd, size, 1) or [b""]
        try:
            _, link = parse(line)
        except Unreadable:
            raise AuditSinkError(f"the last record of {self.path} is unreadable; run `strongroom audit verify`") from None
        return Tail(link.seq, link.hash, size, st.st_ino, st.st_dev, line)

    def _repair_torn_end(self, fd: int, size: int) -> int:
        """A writer died mid-line: keep the line if it is a whole record, else cut it off.

        Such a record was never acknowledged (its request got no answer), so
        dropping a partial one loses nothing that was promised.
        """
        start = max(0, size - 4 * _CHUNK)
        data = os.pread(fd, size - start, start)
        cut = data.rfind(b"\n")
        if cut < 0 and start > 0:
            raise AuditSinkError(f"the end of {self.path} is not a record; run `strongroom audit verify`")
        try:
            whole = parse(data[cut + 1 :])[1].intact
        except Unreadable:
            whole = False
        if whole:
            _write_all(fd, b"\n")
            new_size = size + 1
        else:
            new_size = start + cut + 1
            os.ftruncate(fd, new_size)
        os.fsync(fd)
        log.warning("%s ended mid-line (a writer died); %s", self.path.name, "completed it" if whole else "cut it off")
        return new_size

    def _catch_up_table(self, fd: int, tail: Tail) -> None:
        """Make the storage stream hold exactly the file's records."""
        stream = self.slot.stream
        last = self.storage.last(stream)
        table_seq = last[0] if last else 0
        if table_seq > tail.seq:
            raise AuditSinkError(
                f"the audit table has records up to {table_seq} but {self.path} ends at {tail.seq}; "
                "run `strongroom audit verify`"
            )
        missing = tail.seq - table_seq
        lines = last_lines(fd, tail.size, missing + 1 if table_seq else missing)
        if table_seq:
            if len(lines) != missing + 1 or last is None or lines[0] != last[1]:
                raise AuditSinkError(f"{self.path} and the audit table disagree at record {table_seq}; run `strongroom audit verify`")
            lines = lines[1:]
        if not missing:
            return
        if len(lines) != missing or not all(_seq_of(line) == table_seq + i for i, line in enumerate(lines, 1)):
            raise AuditSinkError(f"{self.path} is not numbered as a chain; run `strongroom audit verify`")
        try:
            os.fsync(fd)  # the lines may not be on disk yet (reads are answered before the fsync): never let the table get ahead
            self.storage.append(stream, lines, sync=False, after=table_seq)
        except OSError as exc:
            raise AuditSinkError(f"writing {self.path.name} failed: {exc}") from None
        except StorageError as exc:
            raise AuditSinkError(f"catching up the audit table failed: {exc}") from None
        log.warning("audit table was behind %s (a writer died between them); copied %d records", self.path.name, missing)

    # -- writing: check and seal (cheap), write, commit (fsync + table) -------

    def check(self) -> Tail:
        """The tail, after making sure the file is exactly as this process left it."""
        tail = self._tail
        if tail is None:
            raise AuditSinkError(f"{self.path.name} could not be opened; see the server log")
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise AuditSinkError(f"{self.path} was removed") from None
        except OSError as exc:
            raise AuditSinkError(f"{self.path} cannot be checked: {exc}") from None
        if (st.st_ino, st.st_dev, st.st_size) != (tail.ino, tail.dev, tail.size):
            raise AuditSinkError(
                f"{self.path} was changed by someone else (size {st.st_size}, expected {tail.size}); "
                "put it back or run `strongroom audit verify`"
            )
        return tail

    def seal(self, bodies: list[bytes], tail: Tail) -> Sealed:
        """Chain events serialised with `chain.canonical` onto the tail (no I/O)."""
        lines, prev = [], tail.hash
        for i, body in enumerate(bodies, start=1):
            line, prev = seal_body(body, tail.seq + i, prev)
            lines.append(line)
        data = b"".join(line + b"\n" for line in lines)
        after = Tail(tail.seq + len(lines), prev, tail.size + len(data), tail.ino, tail.dev, lines[-1])
        return Sealed(lines, data, tail, after)

    def write(self, batch: Sealed) -> None:
        """Hand the batch to the file (page cache; cheap, no fsync); the chain now ends after it."""
        assert self._fd is not None
        try:
            _write_all(self._fd, batch.data)
        except OSError as exc:
            self.rollback(batch)
            raise AuditSinkError(f"writing {self.path.name} failed: {exc}") from None
        self._tail = batch.after

    def commit(self, lines: list[bytes], after_seq: int) -> None:
        """Make everything written so far durable in the file, then copy `lines` (records after_seq+1...) to the table.

        Runs in the writer's thread while the event loop may already write the next
        records: fsync covers those too, which does no harm. On failure the caller
        drops the tail (`invalidate`), so the next write takes the chain over again
        and the table catches up from the file.
        """
        fd = self._fd
        assert fd is not None
        try:
            os.fsync(fd)
        except OSError as exc:
            raise AuditSinkError(f"writing {self.path.name} failed: {exc}") from None
        try:
            self.storage.append(self.slot.stream, lines, sync=False, after=after_seq)
        except StorageError as exc:
            raise AuditSinkError(f"writing the audit table failed: {exc}") from None

    def sync(self) -> None:
        """fsync what was written so far (the table follows with the next commit)."""
        assert self._fd is not None
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise AuditSinkError(f"writing {self.path.name} failed: {exc}") from None

    def invalidate(self) -> None:
        """Forget where the chain ends: the next write first takes it over again from the file."""
        self._tail = None

    def rollback(self, batch: Sealed) -> None:
        """Take a failed batch (the last one written) back out of the file, so no record claims an answer that was not given."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, batch.before.size)
            os.fsync(self._fd)
            self._tail = batch.before
        except OSError as exc:
            log.error("could not take a failed batch out of %s: %s", self.path.name, exc)
            self._tail = None

    def append(self, events: list[dict[str, Any]]) -> list[int]:
        """All steps at once, for callers without an event loop; the batch's sequence numbers."""
        if not events:
            return []
        if self._tail is None:
            self.adopt()
        batch = self.seal([canonical(e) for e in events], self.check())
        self.write(batch)
        try:
            self.commit(batch.lines, batch.before.seq)
        except AuditSinkError:
            self.rollback(batch)
            raise
        return list(range(batch.before.seq + 1, batch.after.seq + 1))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        os.close(self._lock_fd)  # frees the slot
        if self._close_storage:
            self.storage.close()
