"""Long CLI work shows progress on a terminal, and nothing when stderr is a pipe (scripts see only the output)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

from tests.conftest import STRONGROOM, Server


def test_listing_many_pages_shows_progress_only_on_a_terminal(server: Server, vault: str, secret_client) -> None:
    prefix = f"prog-{uuid.uuid4().hex[:6]}"
    for i in range(30):  # more than one page
        secret_client.set_secret(f"{prefix}-{i}", "v")
    args = [*STRONGROOM, "keyvault", "secret", "list", "--vault-name", vault, "--query", f"[?starts_with(name, '{prefix}')].name"]
    env = {**os.environ, "STRONGROOM_STATE_DIR": str(server.state_dir)}
    env.pop("FORCE_COLOR", None)

    piped = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    assert piped.returncode == 0 and piped.stderr == ""
    assert len(json.loads(piped.stdout)) == 30

    terminal = subprocess.run(args, capture_output=True, text=True, env={**env, "FORCE_COLOR": "1"}, timeout=60)
    assert terminal.returncode == 0
    assert f"listing secrets of {vault}" in terminal.stderr and " items" in terminal.stderr
    assert json.loads(terminal.stdout) == json.loads(piped.stdout)  # stdout untouched by the progress display
