"""Envelope encryption: records are bound to their key, tamper-evident, and re-wrappable."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from strongroom.barrier import Barrier, BarrierError, Keyring, MasterKey, SealedStore
from strongroom.barrier.envelope import _BODY, _KID, _NONCE, _WRAPPED
from strongroom.storage import Write
from strongroom.storage.sqlite import SQLiteStorage

PLAINTEXT = b'{"value":"hunter2-envelope-canary"}'


@pytest.fixture
def barrier() -> Barrier:
    return Barrier(Keyring([MasterKey.generate()]))


def test_round_trip_and_no_plaintext_in_sealed_bytes(barrier: Barrier):
    sealed = barrier.seal("secrets/kv/a", PLAINTEXT)
    assert barrier.open("secrets/kv/a", sealed) == PLAINTEXT
    assert b"hunter2" not in sealed
    # A fresh data key and nonce every time: equal plaintexts do not give equal records.
    assert barrier.seal("secrets/kv/a", PLAINTEXT) != sealed


def test_record_moved_to_another_key_fails_to_open(barrier: Barrier):
    sealed = barrier.seal("secretversions/kv1/db/0001", PLAINTEXT)
    for other in ["secretversions/kv2/db/0001", "secretversions/kv1/db/0002", "secretversions/kv1/DB/0001", ""]:
        with pytest.raises(BarrierError):
            barrier.open(other, sealed)


@pytest.mark.parametrize(
    "region",
    [_KID.start, _WRAPPED.start, _WRAPPED.stop - 1, _NONCE.start, _BODY, -1],
    ids=["key-id", "wrapped-key-first", "wrapped-key-last", "nonce", "ciphertext", "tag"],
)
def test_any_flipped_byte_fails_to_open(barrier: Barrier, region: int):
    sealed = bytearray(barrier.seal("k", PLAINTEXT))
    sealed[region] ^= 0x01
    with pytest.raises(BarrierError):
        barrier.open("k", bytes(sealed))


@pytest.mark.parametrize("junk", [b"", b"SR1", b"XX1" + b"\0" * 100, b"SR1" + b"\0" * 10])
def test_not_a_sealed_record(barrier: Barrier, junk: bytes):
    with pytest.raises(BarrierError):
        barrier.open("k", junk)


def test_truncated_record_fails(barrier: Barrier):
    sealed = barrier.seal("k", PLAINTEXT)
    with pytest.raises(BarrierError):
        barrier.open("k", sealed[:-1])


def test_another_master_key_cannot_open(barrier: Barrier):
    sealed = barrier.seal("k", PLAINTEXT)
    with pytest.raises(BarrierError):
        Barrier(Keyring([MasterKey.generate()])).open("k", sealed)


def test_rewrap_keeps_plaintext_and_drops_the_old_key():
    old, new = MasterKey.generate(), MasterKey.generate()
    sealed = Barrier(Keyring([old])).seal("k", PLAINTEXT)
    rewrapped = Barrier(Keyring([old])).rewrap(sealed, new)
    assert rewrapped[_KID] == new.key_id != old.key_id
    assert Barrier(Keyring([new])).open("k", rewrapped) == PLAINTEXT  # no old key needed
    with pytest.raises(BarrierError):
        Barrier(Keyring([old])).open("k", rewrapped)
    # Still bound to its storage key after re-wrapping.
    with pytest.raises(BarrierError):
        Barrier(Keyring([new])).open("k2", rewrapped)


def test_rewrap_of_a_tampered_wrapped_key_fails():
    old, new = MasterKey.generate(), MasterKey.generate()
    sealed = bytearray(Barrier(Keyring([old])).seal("k", PLAINTEXT))
    sealed[_WRAPPED.start] ^= 0x80
    with pytest.raises(BarrierError):
        Barrier(Keyring([old])).rewrap(bytes(sealed), new)


def test_sealed_store_keeps_only_ciphertext_and_rewraps_everything(tmp_path: Path):
    old, new = MasterKey.generate(), MasterKey.generate()
    storage = SQLiteStorage(tmp_path / "s.db")
    store = SealedStore(storage, Barrier(Keyring([old])))
    records = {f"r/{i:04d}": f"value-{i}-canary".encode() for i in range(1203)}
    store.write(records)
    store.write({"r/0000": None})
    del records["r/0000"]
    assert all(b"canary" not in v for _, v in storage.scan(""))
    assert dict(store.scan("r/")) == records

    both = SealedStore(storage, Barrier(Keyring([old, new])))
    assert both.rewrap_all(new, batch_size=500) == len(records) + 1  # and the change counter's record

    only_new = SealedStore(storage, Barrier(Keyring([new])))
    assert dict(only_new.scan("r/")) == records
    assert only_new.get("r/0500") == records["r/0500"]
    with pytest.raises(BarrierError):
        SealedStore(storage, Barrier(Keyring([old]))).get("r/0500")
    storage.close()


def test_remembered_records_follow_every_change_made_by_another_process(tmp_path: Path):
    """A reader remembers what it opened, yet sees another worker's write, delete or tampering at once."""
    key = MasterKey.generate()
    path = tmp_path / "s.db"
    reader = SealedStore(SQLiteStorage(path), Barrier(Keyring([key])), memo_bytes=600)  # room for two
    writer = SealedStore(SQLiteStorage(path), Barrier(Keyring([key])))
    writer.write({"a": b"one", "b": b"two", "c": b"three"})
    assert [reader.get(k) for k in "abca"] == [b"one", b"two", b"three", b"one"]  # "a" came back after eviction
    writer.write({"a": b"uno"})
    assert reader.get("a") == b"uno"
    reader.write({"a": b"eins"})  # a write through the reader drops what it remembered of "a"
    assert "a" not in reader._memo and reader.get("a") == b"eins"
    writer.write({"a": None})
    assert reader.get("a") is None
    sealed = writer._storage.get("b")
    assert sealed is not None
    writer._storage.write([Write("b", sealed[:-1] + bytes([sealed[-1] ^ 1]))])
    with pytest.raises(BarrierError):
        reader.get("b")


def test_remembered_records_stay_within_their_byte_budget(tmp_path: Path):
    """Large values cannot push a worker's memory up: the memo counts bytes, and skips outsized records."""
    key = MasterKey.generate()
    storage = SQLiteStorage(tmp_path / "s.db")
    store = SealedStore(storage, Barrier(Keyring([key])), memo_bytes=100_000)
    records = {f"r/{i:03d}": bytes([i % 250 + 1]) * 20_000 for i in range(40)}
    records["huge"] = b"x" * 200_000
    store.write(records)
    for _ in range(2):
        for k, v in records.items():
            assert store.get(k) == v
    assert store._memo_used <= 100_000 and "huge" not in store._memo
    assert 2 <= len(store._memo) <= 5  # ~40 KB an entry (sealed + plain): the newest few
    storage.close()


def test_keyring_file_is_private_and_ordered(tmp_path: Path):
    a, b = MasterKey.generate(), MasterKey.generate()
    path = tmp_path / "master.key"
    Keyring([a, b]).save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = Keyring.load(path)
    assert loaded.active == b
    assert loaded.find(a.key_id) == a
    path.write_text("c2hvcnQ=\n")  # 5 bytes: not a master key
    with pytest.raises(ValueError):
        Keyring.load(path)
    with pytest.raises(ValueError):
        Keyring([])


def test_the_store_lists_keys_and_notices_changes_without_opening_records(tmp_path: Path):
    """Key listing and the change fingerprint never decrypt: they work even where the key cannot open a record."""
    path = tmp_path / "s.db"
    writer = SealedStore(SQLiteStorage(path), Barrier(Keyring([MasterKey.generate()])))
    stranger = SealedStore(SQLiteStorage(path), Barrier(Keyring([MasterKey.generate()])))  # holds another key
    writer.write({"authz/generation": b"generation-one", "v/kv/a": b'{"n": 1}', "v/kv/b": b'{"n": 2}', "w/x": b"{}"})
    assert list(stranger.keys("v/")) == ["v/kv/a", "v/kv/b"]
    assert list(stranger.keys("v/", "v/kv/a", 1)) == ["v/kv/b"]
    before = stranger.fingerprint("authz/generation")
    assert before is not None and b"generation-one" not in before  # sealed bytes, not the plaintext
    writer.write({"authz/generation": b"generation-one"})  # the same plaintext written again still changes the fingerprint
    assert stranger.fingerprint("authz/generation") not in (None, before)
    assert stranger.fingerprint("absent") is None
    assert writer.load("v/kv/b") == {"n": 2} and writer.load("absent") is None
    with pytest.raises(BarrierError):
        stranger.load("v/kv/b")


def test_a_batch_and_its_feed_entries_commit_together(tmp_path: Path):
    store = SealedStore(SQLiteStorage(tmp_path / "s.db"), Barrier(Keyring([MasterKey.generate()])))
    assert store.write_and_append({"k/a": PLAINTEXT}, "changes/x", [b"e1", b"e2"]) == [1, 2]
    assert store.get("k/a") == PLAINTEXT and store.last_in_stream("changes/x") == (2, b"e2")
    assert store.read_stream("changes/x", 1) == [(2, b"e2")]
    store.close()
