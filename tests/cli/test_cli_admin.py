"""`strongroom admin rotate-master-key`: offline re-wrap under a new master key."""

from __future__ import annotations

import stat

import pytest

from strongroom.barrier import Barrier, BarrierError, Keyring, SealedStore
from strongroom.storage.sqlite import SQLiteStorage
from tests.conftest import start_server

VALUES = {"rot-a": "alpha-value", "rot-b": "beta-value", "rot-c": "gamma-value"}


def test_rotate_master_key(tmp_path):
    srv = start_server(tmp_path)
    try:
        srv.cli("keyvault", "create", "--name", "kv-rotate")
        for name, value in VALUES.items():
            srv.cli("keyvault", "secret", "set", "--vault-name", "kv-rotate", "--name", name, "--value", value)
        key_file = srv.state_dir / "master.key"
        old_text = key_file.read_text()

        # Refused while the server runs: the server holds the old key in memory.
        proc = srv.cli("admin", "rotate-master-key", check=False)
        assert proc.returncode != 0
        assert proc.stderr.startswith("ERROR: (Conflict)") and "stop it first" in proc.stderr
        assert key_file.read_text() == old_text

        srv.stop()
        srv.cli("admin", "rotate-master-key")
        new_text = key_file.read_text()
        assert len(new_text.split()) == 1 and new_text.split()[0] not in old_text
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

        # Every record now opens with the new key alone, and none with the old one.
        storage = SQLiteStorage(srv.state_dir / "strongroom.db")
        try:
            rows = list(storage.scan(""))
            assert len(rows) > len(VALUES)
            new_store = SealedStore(storage, Barrier(Keyring.load(key_file)))
            assert len(list(new_store.scan(""))) == len(rows)
            (tmp_path / "old.key").write_text(old_text)
            old_barrier = Barrier(Keyring.load(tmp_path / "old.key"))
            for key, sealed in rows:
                with pytest.raises(BarrierError):
                    old_barrier.open(key, sealed)
        finally:
            storage.close()

        srv.start()
        for name, value in VALUES.items():
            shown = srv.cli_json("keyvault", "secret", "show", "--vault-name", "kv-rotate", "--name", name)
            assert shown["value"] == value
        srv.cli("keyvault", "secret", "set", "--vault-name", "kv-rotate", "--name", "rot-after", "--value", "after")
    finally:
        srv.stop()
