"""The audit log's sinks on real files and a real SQLite database: chain, repair, locking, group commit."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from strongroom.audit import AuditLog, AuditSinkError, AuditWriter
from strongroom.audit.chain import record_hash, seal
from strongroom.audit.verify import verify
from strongroom.storage.sqlite import SQLiteStorage


def event(i: int, op: str = "SecretGet") -> dict:
    return {"time": f"2026-01-01T00:00:{i % 60:02d}.0000000Z", "operationName": op, "n": i}


@pytest.fixture
def state(tmp_path: Path):
    storage = SQLiteStorage(tmp_path / "strongroom.db")
    yield tmp_path, storage
    storage.close()


def lines(state_dir: Path) -> list[bytes]:
    return (state_dir / "audit.jsonl").read_bytes().splitlines()


def test_batches_form_one_chain_in_both_sinks(state):
    state_dir, storage = state
    log = AuditLog(state_dir, storage)
    assert log.append([event(1), event(2)]) == [1, 2]
    assert log.append([event(3)]) == [3]
    log.close()

    assert stat.S_IMODE((state_dir / "audit.jsonl").stat().st_mode) == 0o600
    file_lines = lines(state_dir)
    assert [v for _, v in storage.read("audit")] == file_lines
    records = [json.loads(x) for x in file_lines]
    assert [r["chain"]["seq"] for r in records] == [1, 2, 3]
    assert records[0]["chain"]["prev"] == "0" * 64
    assert [r["chain"]["prev"] for r in records[1:]] == [r["chain"]["hash"] for r in records[:-1]]
    assert all(record_hash(r) == r["chain"]["hash"] for r in records)
    (chain,) = verify(state_dir, storage).chains
    assert chain.problem is None and chain.records == chain.table_records == 3
    assert chain.head == {"seq": 3, "hash": records[-1]["chain"]["hash"]}


def _tamper_table(db: Path, seq: int, value: bytes) -> None:
    conn = sqlite3.connect(db)
    conn.execute("UPDATE log SET value = ? WHERE stream = 'audit' AND seq = ?", (value, seq))
    conn.commit()
    conn.close()


def test_verify_catches_a_rehashed_forgery_through_the_table(state):
    """Whoever rewrites a record and recomputes its hash still differs from the table's copy."""
    state_dir, storage = state
    log = AuditLog(state_dir, storage)
    log.append([event(i) for i in range(1, 6)])
    log.close()
    records = [json.loads(x) for x in lines(state_dir)]
    forged = dict(records[2], operationName="SecretList")
    forged_line, _ = seal({k: v for k, v in forged.items() if k != "chain"}, 3, records[1]["chain"]["hash"])
    file_lines = lines(state_dir)
    file_lines[2] = forged_line
    (state_dir / "audit.jsonl").write_bytes(b"".join(x + b"\n" for x in file_lines))

    report = verify(state_dir, storage)
    assert not report.ok
    assert (report.problem.line, report.problem.seq, report.problem.kind) == (3, 3, "mismatch")


def test_verify_catches_an_altered_table_row(state):
    state_dir, storage = state
    log = AuditLog(state_dir, storage)
    log.append([event(i) for i in range(1, 4)])
    log.close()
    _tamper_table(state_dir / "strongroom.db", 2, lines(state_dir)[1].replace(b'"SecretGet"', b'"SecretSet"'))

    report = verify(state_dir, storage)
    assert (report.problem.source, report.problem.seq, report.problem.kind) == ("table", 2, "altered")


def test_verify_catches_a_record_rewritten_in_both_sinks_at_the_next_link(state):
    state_dir, storage = state
    log = AuditLog(state_dir, storage)
    log.append([event(i) for i in range(1, 5)])
    log.close()
    records = [json.loads(x) for x in lines(state_dir)]
    body = {k: v for k, v in records[1].items() if k != "chain"}
    forged_line, _ = seal({**body, "operationName": "SecretPurge"}, 2, records[0]["chain"]["hash"])
    file_lines = lines(state_dir)
    file_lines[1] = forged_line
    (state_dir / "audit.jsonl").write_bytes(b"".join(x + b"\n" for x in file_lines))
    _tamper_table(state_dir / "strongroom.db", 2, forged_line)

    report = verify(state_dir, storage)
    assert (report.problem.line, report.problem.seq, report.problem.kind) == (2, 2, "altered")
    assert "line 3 (seq 3) chains to a different hash" in report.problem.message


def test_a_torn_last_line_is_cut_off_and_the_chain_continues(state):
    """A writer killed mid-write leaves half a record that nobody was answered for."""
    state_dir, storage = state
    log = AuditLog(state_dir, storage)
    log.append([event(1), event(2)])
    log.close()
    whole = lines(state_dir)[1]
    with open(state_dir / "audit.jsonl", "ab") as f:
        f.write(whole[: len(whole) // 2])

    log = AuditLog(state_dir, storage)  # a restarted server
    assert log.append([event(3)]) == [3]
    log.close()
    assert len(lines(state_dir)) == 3
    assert verify(state_dir, storage).ok


def test_the_table_catches_up_when_a_writer_died_between_the_sinks(state):
    state_dir, storage = state
    log = AuditLog(state_dir, storage)
    log.append([event(1)])
    log.close()
    prev = json.loads(lines(state_dir)[0])["chain"]["hash"]
    orphan, prev = seal(event(2), 2, prev)  # fsynced to the file, never reached the table
    with open(state_dir / "audit.jsonl", "ab") as f:
        f.write(orphan + b"\n")
    assert not verify(state_dir, storage, grace=0.1).ok  # the table is behind until a writer starts

    log = AuditLog(state_dir, storage)
    assert log.append([event(3)]) == [3]
    log.close()
    assert [v for _, v in storage.read("audit")] == lines(state_dir)
    assert verify(state_dir, storage).ok


def test_a_file_changed_by_someone_else_stops_writing(state):
    """The owner of a chain never adopts lines it did not write: truncated or appended to, it stops."""
    state_dir, storage = state
    log = AuditLog(state_dir, storage)
    log.append([event(1), event(2)])
    original = (state_dir / "audit.jsonl").read_bytes()
    (state_dir / "audit.jsonl").write_bytes(b"")
    with pytest.raises(AuditSinkError, match="changed by someone else"):
        log.append([event(3)])
    forged, _ = seal(event(99), 3, json.loads(original.splitlines()[-1])["chain"]["hash"])
    (state_dir / "audit.jsonl").write_bytes(original + forged + b"\n")
    with pytest.raises(AuditSinkError, match="changed by someone else"):
        log.append([event(3)])
    (state_dir / "audit.jsonl").write_bytes(original)  # put back as it was: writing resumes
    assert log.append([event(3)]) == [3]
    log.close()
    assert verify(state_dir, storage).ok


def test_a_restart_refuses_a_file_shorter_than_the_table(state):
    state_dir, storage = state
    log = AuditLog(state_dir, storage)
    log.append([event(1), event(2)])
    log.close()
    (state_dir / "audit.jsonl").write_bytes(b"")
    log = AuditLog(state_dir, storage)
    assert not log.ready
    with pytest.raises(AuditSinkError, match="audit table has records up to 2"):
        log.append([event(3)])
    log.close()
    assert storage.last("audit")[0] == 2


def test_a_full_disk_fails_the_write(state):
    """/dev/full answers every write with ENOSPC, as a full file system does."""
    state_dir, storage = state
    (state_dir / "audit.jsonl").symlink_to("/dev/full")
    log = AuditLog(state_dir, storage)
    with pytest.raises(AuditSinkError, match="No space left"):
        log.append([event(1)])
    log.close()
    assert storage.last("audit") is None


def _append_many(state_dir: str, worker: int, n: int) -> None:
    storage = SQLiteStorage(Path(state_dir) / "strongroom.db")
    log = AuditLog(Path(state_dir), storage)
    i = 0
    while i < n:
        size = 1 + (i + worker) % 7
        log.append([event(worker * 10000 + j) for j in range(i, min(n, i + size))])
        i += size
    log.close()
    storage.close()


def test_worker_processes_each_keep_a_chain_and_all_verify(state):
    state_dir, storage = state
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(state_dir), w, 150)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    report = verify(state_dir, storage)
    assert report.ok, report.problem
    assert len(report.chains) in (1, 2, 3)  # a process that started after another ended reuses its slot
    assert sum(c.records for c in report.chains) == sum(c.table_records for c in report.chains) == 450
    ns = sorted(json.loads(x)["n"] for c in report.chains for x in Path(c.file).read_bytes().splitlines())
    assert ns == sorted(w * 10000 + j for w in range(3) for j in range(150))


def test_a_second_process_takes_the_next_slot_and_a_restart_takes_over_a_chain(state):
    state_dir, storage = state
    first, second = AuditLog(state_dir, storage), AuditLog(state_dir, storage)
    assert (first.path.name, second.path.name) == ("audit.jsonl", "audit-1.jsonl")
    first.append([event(1)])
    second.append([event(2), event(3)])
    second.close()
    third = AuditLog(state_dir, storage)  # a restarted worker: the free slot 1, continued
    assert third.path.name == "audit-1.jsonl" and third.append([event(4)]) == [3]
    first.close()
    third.close()
    report = verify(state_dir, storage)
    assert report.ok and [c.records for c in report.chains] == [1, 3]


class CountingLog(AuditLog):
    """The real log, counting its batches."""

    batches: list[int]

    def seal(self, events, tail):
        self.batches.append(len(events))
        return super().seal(events, tail)


def test_group_commit_batches_concurrent_records(state):
    state_dir, storage = state
    log = CountingLog(state_dir, storage)
    log.batches = []
    writer = AuditWriter(log)

    async def burst(n: int) -> float:
        t = time.perf_counter()
        await asyncio.gather(*(writer.write(event(i)) for i in range(n)))
        return time.perf_counter() - t

    elapsed = asyncio.run(burst(2000))
    writer.close()
    assert sum(log.batches) == 2000
    assert len(log.batches) < 100, log.batches  # one fsync per record would be 2000
    assert len(lines(state_dir)) == 2000 and verify(state_dir, storage).ok
    print(f"\n2000 concurrent records: {len(log.batches)} batches, {2000 / elapsed:.0f} records/s")


def test_writer_fails_every_waiting_request_closed_and_recovers(state):
    state_dir, storage = state
    writer = AuditWriter(AuditLog(state_dir, storage))
    path = state_dir / "audit.jsonl"

    async def attempt(n: int) -> list:
        return await asyncio.gather(*(writer.write(event(i)) for i in range(n)), return_exceptions=True)

    assert asyncio.run(attempt(3)) == [None] * 3
    path.rename(state_dir / "aside")
    os.mkdir(path)  # the log's place is taken: it cannot be opened for writing
    results = asyncio.run(attempt(5))
    assert all(isinstance(r, AuditSinkError) for r in results)
    os.rmdir(path)
    (state_dir / "aside").rename(path)
    assert asyncio.run(attempt(2)) == [None] * 2
    writer.close()
    report = verify(state_dir, storage)
    assert report.ok and report.chains[0].records == 5


class SlowDiskLog(AuditLog):
    """The real log whose fsync waits for a gate: a disk flush that takes its time."""

    gate: threading.Event

    def commit(self, lines, after_seq):
        self.gate.wait(10)
        super().commit(lines, after_seq)


def test_reads_are_answered_once_written_changes_once_on_disk(state):
    import threading

    state_dir, storage = state
    log = SlowDiskLog(state_dir, storage)
    log.gate = threading.Event()
    writer = AuditWriter(log)

    async def scenario() -> tuple[bool, bool, int]:
        change = asyncio.ensure_future(writer.write(event(1, "SecretSet"), durable=True))
        await asyncio.wait_for(writer.write(event(2), durable=False), 5)  # answered while the fsync hangs
        in_file = len(lines(state_dir))
        await asyncio.sleep(0.2)
        change_waited = not change.done()
        log.gate.set()
        await asyncio.wait_for(change, 5)
        return change_waited, change.done(), in_file

    change_waited, change_done, in_file = asyncio.run(scenario())
    writer.close()
    assert in_file == 2  # the read's record was in the file before it was answered
    assert change_waited and change_done  # the change was answered only after the flush
    report = verify(state_dir, storage)
    assert report.ok and report.chains[0].records == 2
    assert [r[0] for r in storage.read("audit")] == [1, 2]  # the table caught up too
