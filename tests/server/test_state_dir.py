"""Starting on a state dir whose master key is missing or wrong is refused clearly, never with a traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import STRONGROOM, start_server


def _up(state_dir: Path, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [*STRONGROOM, "up", "--state-dir", str(state_dir), "--port", "1"],  # refused before binding
        capture_output=True, text=True, timeout=60, env=env,
    )


def test_missing_master_key_is_refused_and_no_new_key_is_written(tmp_path):
    srv = start_server(tmp_path)
    srv.stop()
    key = srv.state_dir / "master.key"
    key.rename(tmp_path / "kept.key")
    proc = _up(srv.state_dir)
    assert proc.returncode == 1
    assert "master key" in proc.stderr and "Traceback" not in proc.stderr
    assert not key.exists(), "a fresh key would make the sealed data unreadable for good"


def test_wrong_master_key_is_refused(tmp_path):
    srv = start_server(tmp_path)
    srv.stop()
    other = tmp_path / "other"
    start_server(other).stop()
    proc = _up(srv.state_dir, {"STRONGROOM_MASTER_KEY_FILE": str(other / "state" / "master.key")})
    assert proc.returncode == 1
    assert "does not open this database" in proc.stderr and "Traceback" not in proc.stderr


def test_two_workers_serve_the_same_vault(tmp_path):
    srv = start_server(tmp_path, "--workers", "2")
    try:
        srv.cli("keyvault", "create", "--name", "kv-workers")
        for i in range(8):  # new connections spread over both workers
            srv.cli("keyvault", "secret", "set", "--vault-name", "kv-workers", "--name", f"s{i}", "--value", f"v{i}")
        values = [srv.cli_json("keyvault", "secret", "show", "--vault-name", "kv-workers", "--name", f"s{i}")["value"] for i in range(8)]
        assert values == [f"v{i}" for i in range(8)]
    finally:
        srv.stop()
    assert srv.proc is None


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode()


def test_workers_are_forked_and_a_killed_one_is_replaced(tmp_path):
    """`up --workers 2` is three processes (no multiprocessing resource tracker), and a dead worker comes back."""
    import os
    import signal
    import time

    srv = start_server(tmp_path, "--workers", "2")
    try:
        assert srv.proc is not None
        workers = _children(srv.proc.pid)
        assert len(workers) == 2, [_cmdline(p) for p in workers]
        assert not any("resource_tracker" in _cmdline(p) for p in workers)
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = _children(srv.proc.pid)
            if len(now) == 2 and workers[0] not in now:
                break
            time.sleep(0.2)
        assert len(now) == 2 and workers[0] not in now
        srv.cli("keyvault", "create", "--name", "kv-respawn")
        for i in range(6):  # new connections reach both workers, the new one included
            srv.cli("keyvault", "secret", "set", "--vault-name", "kv-respawn", "--name", f"s{i}", "--value", f"v{i}")
    finally:
        srv.stop()
    assert srv.proc is None
