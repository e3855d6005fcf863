"""The change feed as the domain writes it: one event per change, in the change's own transaction."""

from __future__ import annotations

import sqlite3
from datetime import UTC
from pathlib import Path

import pytest

from strongroom.barrier import Barrier, Keyring, MasterKey, SealedStore
from strongroom.events import Change, ObjectChange, read, write_with_events
from strongroom.events.feed import stream_name
from strongroom.keyvault.backup import BackupSealer
from strongroom.keyvault.secrets import SecretInput, SecretStore, SecretUpdate
from strongroom.keyvault.vaults import Vault
from strongroom.storage import StorageError
from strongroom.storage.sqlite import SQLiteStorage

CANARY = "feed-canary-value-7f3a"


@pytest.fixture
def env(tmp_path: Path):
    storage = SQLiteStorage(tmp_path / "s.db")
    store = SealedStore(storage, Barrier(Keyring([MasterKey.generate()])))
    vault = Vault("kv1", "sub", "rg", "tenant", created=1700000000)
    yield storage, store, vault, SecretStore(store, BackupSealer(store))
    storage.close()


def test_every_secret_change_is_one_numbered_event_without_the_value(env, tmp_path):
    storage, store, vault, secrets = env
    v1 = secrets.set(vault, "Db-Password", SecretInput(CANARY, nbf=1700000001, exp=1900000000))
    v2 = secrets.set(vault, "db-password", SecretInput(CANARY + "2", tags={"t": CANARY}))
    secrets.update(vault, "db-password", v1.version, SecretUpdate(enabled=False))
    blob = secrets.backup(vault, "db-password")  # reads only: no event
    secrets.delete(vault, "db-password")
    secrets.recover(vault, "db-password")
    secrets.delete(vault, "db-password")
    secrets.purge(vault, "db-password")
    secrets.restore(vault, blob, "https://kv1.vault.localhost")

    events = read(store, vault)
    assert [e.seq for e in events] == list(range(1, 9))
    assert [e.change for e in events] == [
        Change.NEW_VERSION, Change.NEW_VERSION, Change.UPDATED, Change.DELETED,
        Change.RECOVERED, Change.DELETED, Change.PURGED, Change.RESTORED,
    ]
    assert [e.version for e in events] == [v1.version, v2.version, v1.version] + [v2.version] * 5
    assert {e.name for e in events} == {"Db-Password"}  # the spelling the secret was created with
    assert (events[0].nbf, events[0].exp) == (1700000001, 1900000000)
    assert all(e.object_type == "secret" and e.topic == vault.resource_id and e.vault == "kv1" for e in events)
    assert len({e.id for e in events}) == 8
    # Feed entries are stored unsealed, so they must never hold a value or a tag.
    storage.close()
    raw = sqlite3.connect(tmp_path / "s.db").execute("SELECT value FROM log").fetchall()
    assert len(raw) == 8 and not any(CANARY.encode() in bytes(r[0]) for r in raw)


def test_each_vault_has_its_own_gapless_stream(env):
    storage, store, vault, secrets = env
    other = Vault("kv2", "sub", "rg", "tenant")
    secrets.set(vault, "a", SecretInput("x"))
    secrets.set(other, "a", SecretInput("x"))
    secrets.set(vault, "b", SecretInput("x"))
    assert [(e.seq, e.name) for e in read(store, vault)] == [(1, "a"), (2, "b")]
    assert [(e.seq, e.vault) for e in read(store, other)] == [(1, "kv2")]
    assert [e.seq for e in read(store, vault, after=1)] == [2]


def test_change_and_event_are_one_transaction(env, tmp_path):
    """If the event cannot be appended, the change is not written either (and the reverse)."""
    storage, store, vault, secrets = env
    secrets.set(vault, "a", SecretInput("x"))
    # A trigger that refuses the next feed entry, installed from outside as a failing disk would act.
    db = sqlite3.connect(tmp_path / "s.db")
    db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON log WHEN NEW.seq = 2 "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    db.commit()
    with pytest.raises(StorageError):
        secrets.set(vault, "a", SecretInput("y"))
    assert secrets.get(vault, "a").value == "x"
    assert [e.seq for e in read(store, vault)] == [1]
    db.execute("DROP TRIGGER refuse")
    # Refuse the key/value half instead: no event may appear.
    db.execute(
        "CREATE TRIGGER refuse_kv BEFORE INSERT ON entries WHEN NEW.key LIKE 'secretversions/%' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    db.commit()
    with pytest.raises(StorageError):
        secrets.set(vault, "a", SecretInput("z"))
    assert [e.seq for e in read(store, vault)] == [1]
    db.close()


def test_object_change_refuses_unknown_types(env):
    storage, store, vault, _ = env
    with pytest.raises(ValueError):
        ObjectChange("cert", Change.NEW_VERSION, "c")
    seqs = write_with_events(store, vault, {"keys/kv1/k": b"{}"}, [ObjectChange("key", Change.NEW_VERSION, "k", "v1")])
    assert seqs == [1]
    assert store.get("keys/kv1/k") == b"{}" and storage.get("keys/kv1/k") != b"{}"  # sealed on the way in
    assert storage.streams("changes/") == [stream_name(vault)]


def test_event_ids_are_distinct_v4_uuids_and_times_are_rfc3339_utc_microseconds(env):
    import uuid
    from datetime import datetime

    storage, store, vault, secrets = env
    before = datetime.now(UTC)
    for i in range(20):
        secrets.set(vault, f"s{i}", SecretInput("v"))
    after = datetime.now(UTC)
    entries = read(store, vault)
    ids = [uuid.UUID(e.id) for e in entries]
    assert len(set(ids)) == 20 and all(u.version == 4 and u.variant == uuid.RFC_4122 for u in ids)
    assert all(str(u) == e.id for u, e in zip(ids, entries, strict=True))
    for e in entries:
        assert len(e.time) == 27 and e.time.endswith("Z")
        t = datetime.strptime(e.time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert before.replace(microsecond=0) <= t <= after
