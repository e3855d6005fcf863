"""CPU per login without sockets: the federated client-assertion exchange through the ASGI app in-process.

    python -m bench.inproc_login [--requests 5000] [--concurrency 16] [--cprofile FILE]

The companion of bench/inproc.py for scenario 4. Federation needs an https issuer,
so a real `strongroom up` with TLS stays running beside the in-process app: it
serves the local cluster's discovery document and JWKS, which the app fetches once
(then caches for an hour), and nothing else. The figure is the CPU this process
spends per token request (user + system, all its threads): the token endpoint,
audit and storage, minus uvicorn's HTTP parsing, TLS and the kernel's socket work.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlencode

from bench.inproc import measure
from bench.run import free_port
from bench.strongroom_target import Strongroom


def login_scope(sr: Strongroom) -> dict:
    path = f"/{sr.tenant_id}/oauth2/v2.0/token"
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "https",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", f"localhost:{sr.port}".encode()),
                    (b"content-type", b"application/x-www-form-urlencoded"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", sr.port), "state": {},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.inproc_login")
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cprofile", type=Path, help="also write cProfile stats of one measured batch here")
    a = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-inproc-login-"))
    sr = Strongroom(workdir / "strongroom", free_port(), 1, tls=True)
    try:
        sr.start()
        sr.setup()
        sr.federate()  # the federated credential, and one real exchange over TLS

        from strongroom.settings import Settings

        settings = Settings(state_dir=sr.state_dir, port=sr.port, throttle=False, log_level="warning")
        os.environ["STRONGROOM_SETTINGS"] = settings.to_env()
        body = urlencode(sr.token_form(sr.reader)).encode()

        measure("login", lambda: login_scope(sr), body, a.requests, a.concurrency, a.repeat, 500, a.cprofile)
    finally:
        sr.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
