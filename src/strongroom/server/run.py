"""Starting and stopping the server process(es)."""

from __future__ import annotations

import fcntl
import os
import ssl
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess

from strongroom.server.bootstrap import bootstrap
from strongroom.server.tls import CERT_FILE, KEY_FILE
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
    kwargs: dict = {}
    if not settings.insecure_http:
        kwargs = {
            "ssl_certfile": str(settings.state_dir / CERT_FILE),
            "ssl_keyfile": str(settings.state_dir / KEY_FILE),
            "ssl_version": ssl.PROTOCOL_TLS_SERVER,
            "ssl_ciphers": "ECDHE+AESGCM:ECDHE+CHACHA20",
            "http": "strongroom.server.tls_scope:TLSScopeProtocol",  # the audit's tlsVersion
        }
    config = uvicorn.Config(
        "strongroom.server.app:app_from_env",
        factory=True,
        host=settings.bind,
        port=settings.port,
        workers=settings.workers if settings.workers > 1 else None,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=30,
        server_header=False,
        **kwargs,
    )
    try:
        if config.workers > 1:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            uvicorn.Server(config).run()
    finally:
        os.close(lock_fd)
