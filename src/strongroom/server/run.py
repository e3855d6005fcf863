"""Starting and stopping the server process(es)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from strongroom.server.bootstrap import bootstrap
from strongroom.server.supervisor import exec_supervisor, run
from strongroom.settings import Settings

LOCK_FILE = "server.lock"


class StateDirBusy(Exception):
    pass


def lock_state_dir(state_dir: Path) -> int:
    """Hold an exclusive lock while the server runs, so offline admin commands can refuse to race it."""
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateDirBusy(f"another strongroom server is using {state_dir}") from None
    return fd


def serve(settings: Settings, on_ready=None) -> None:
    admin = bootstrap(settings)
    lock_fd = lock_state_dir(settings.state_dir)
    os.environ["STRONGROOM_SETTINGS"] = settings.to_env()
    if on_ready is not None:
        on_ready(admin)
    if settings.workers > 1:
        # Supervising needs none of what this process imported (CLI, bootstrap): shed it.
        exec_supervisor(lock_fd)
    try:
        run(settings)
    finally:
        os.close(lock_fd)
