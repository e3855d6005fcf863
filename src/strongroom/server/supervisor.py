"""The uvicorn side of `strongroom up`, kept light enough to be a process of its own.

With `--workers N` (N > 1) the `strongroom up` process, once bootstrap has readied
the state dir, replaces itself (exec, same pid) with `python -m
strongroom.server.supervisor LOCK_FD`. Why: a supervisor only spawns and watches
workers, yet the CLI process holds typer, rich, every CLI module and all that
bootstrap imported (~40 MB RSS idle). The workers are forked from it (see `run`),
so each starts with only uvicorn and the settings loaded and imports the app
itself; the tree is this supervisor and its N workers, nothing else.

Nothing here may import the CLI or the app at module level.
"""

from __future__ import annotations

import os
import signal
import ssl
import sys

import uvicorn

from strongroom.settings import Settings

# server/tls.py's CERT_FILE and KEY_FILE, named again here: importing tls.py would load
# cryptography (~9 MB RSS) into a supervisor that never opens the files itself.
CERT_FILE, KEY_FILE = "server.pem", "server.key"


def uvicorn_config(settings: Settings) -> uvicorn.Config:
    kwargs: dict = {"http": "strongroom.server.protocol:CoalescingProtocol"}  # one write per response
    if not settings.insecure_http:
        kwargs = {
            "ssl_certfile": settings.tls_cert_file or str(settings.state_dir / CERT_FILE),
            "ssl_keyfile": settings.tls_key_file or str(settings.state_dir / KEY_FILE),
            "ssl_version": ssl.PROTOCOL_TLS_SERVER,
            "ssl_ciphers": "ECDHE+AESGCM:ECDHE+CHACHA20",
            "http": "strongroom.server.tls_scope:TLSScopeProtocol",  # the audit's tlsVersion
        }
    return uvicorn.Config(
        "strongroom.server.app:app_from_env",
        factory=True,
        host=settings.bind,
        port=settings.port,
        workers=settings.workers if settings.workers > 1 else None,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=30,
        server_header=False,
        # Clients connect directly: trusting X-Forwarded-For from loopback would let any local
        # process write a made-up callerIpAddress into the audit log (and the layer costs CPU).
        proxy_headers=False,
        # Resource limits (server/limits.py): the protocol enforces the rest, the loop the TLS handshake deadline.
        timeout_keep_alive=settings.keep_alive_timeout,  # type: ignore[arg-type]  # uvicorn says int; call_later takes float
        loop="strongroom.server.loop:new_event_loop",
        **kwargs,
    )


def run(settings: Settings) -> None:
    """Serve until stopped: in this process (1 worker) or in spawned workers."""
    config = uvicorn_config(settings)
    if config.workers > 1:
        import multiprocessing

        from uvicorn import _subprocess
        from uvicorn.supervisors import Multiprocess

        # Fork the workers from this light, single-threaded process instead of spawning them:
        # spawning starts multiprocessing's resource tracker (a 12 MB interpreter that tracks
        # nothing here) and re-imports uvicorn in every worker. uvicorn names its context in
        # this module-level attribute; tests/server/test_state_dir.py notices if that changes.
        _subprocess.spawn = multiprocessing.get_context("fork")  # type: ignore[assignment]
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()


def exec_supervisor(lock_fd: int) -> None:
    """Become `python -m strongroom.server.supervisor` (same pid); never returns.

    The state-dir lock is an flock on `lock_fd`: it lives on in the new image as
    long as the descriptor is inherited. The settings travel in STRONGROOM_SETTINGS.
    """
    os.set_inheritable(lock_fd, True)
    sys.stdout.flush()
    sys.stderr.flush()
    # -P: `-m` would put the current directory first on sys.path, and the forked workers import
    # the whole app after the fork: a planted orjson.py in the directory `up` ran from would run.
    os.execv(sys.executable, [sys.executable, "-P", "-m", "strongroom.server.supervisor", str(lock_fd)])


def main() -> None:
    # As `strongroom up` does: SIGTERM is a clean stop (exit 0), not "killed by SIGTERM".
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    lock_fd = int(sys.argv[1])
    try:
        run(Settings.from_env())
    finally:
        os.close(lock_fd)


if __name__ == "__main__":
    main()
