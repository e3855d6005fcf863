"""Crash-safe file writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_file_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` so a reader sees the old file or the new one, never a mix.

    The temporary file is fsynced before the rename and the directory after it,
    so the new content survives a crash once this returns.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_private_file(path: Path, data: bytes) -> None:
    """Atomic write readable by the owner only (0600)."""
    write_file_atomically(path, data, mode=0o600)
