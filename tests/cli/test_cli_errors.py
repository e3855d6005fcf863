"""The CLI fails as az does: one `ERROR:` line on stderr, exit 1, a traceback only with `--debug`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import STRONGROOM, free_port


def run_strongroom(state_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "STRONGROOM_STATE_DIR": str(state_dir)}
    env.pop("STRONGROOM_SERVER", None)
    return subprocess.run([*STRONGROOM, *args], capture_output=True, text=True, env=env, timeout=60)


def assert_one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), proc.stderr
    return lines[0]


def admin_json(state_dir: Path, server: str) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "admin.json").write_text(json.dumps(
        {"server": server, "tenantId": "t", "clientId": "c", "clientSecret": "not-a-real-secret"}
    ))


def test_server_unreachable_is_one_line(tmp_path: Path) -> None:
    admin_json(tmp_path, f"https://127.0.0.1:{free_port()}")  # nothing listens there
    line = assert_one_error_line(run_strongroom(tmp_path, "keyvault", "list"))
    assert "cannot reach https://127.0.0.1:" in line
    assert "not-a-real-secret" not in line


def test_unexpected_failure_is_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    """admin.json that is a directory: no error the CLI expects, so the last line of defence answers."""
    (tmp_path / "admin.json").mkdir()
    line = assert_one_error_line(run_strongroom(tmp_path, "keyvault", "list"))
    assert line.startswith("ERROR: IsADirectoryError: ") and "--debug" in line

    debug = run_strongroom(tmp_path, "keyvault", "list", "--debug")
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("ERROR: IsADirectoryError: ")


def test_corrupt_admin_json_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "admin.json").write_text("{not json")
    line = assert_one_error_line(run_strongroom(tmp_path, "keyvault", "secret", "list", "--vault-name", "kv1"))
    assert "JSONDecodeError" in line


def test_usage_errors_stay_clicks(tmp_path: Path) -> None:
    """A bad flag is click's usage message (exit 2), not swallowed by the error handler."""
    proc = run_strongroom(tmp_path, "keyvault", "list", "--no-such-flag")
    assert proc.returncode == 2
    assert "No such option" in proc.stderr and "Traceback" not in proc.stderr


def test_debug_after_double_dash_is_left_to_the_child(tmp_path: Path) -> None:
    from strongroom.cli.errors import pop_debug_flag

    assert pop_debug_flag(["run", "--debug", "--", "app", "--debug"]) == (["run", "--", "app", "--debug"], True)
    assert pop_debug_flag(["run", "--", "app", "--debug"]) == (["run", "--", "app", "--debug"], False)
