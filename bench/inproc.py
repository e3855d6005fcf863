"""CPU per request of the read path without sockets: requests through the ASGI app in-process.

    python -m bench.inproc [--requests 20000] [--concurrency 32] [--scenario hot|spread|write]

wrk figures on a shared 2-core machine move with whatever else runs; the CPU time this
process spends per request (user + system, all its threads) moves much less, so a small change to the
request path can be measured here before `make bench` confirms it. It runs the same app
`strongroom up` serves (audit group commit, SQLite, barrier, authorization) on uvloop,
minus uvicorn's HTTP parsing and the kernel's socket work (the bare endpoint's cost).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.populate import put_all
from bench.run import HOT, SPREAD, WRITE, free_port
from bench.strongroom_target import API, VAULT, Strongroom


def scope(port: int, method: str, path: str, token: str) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": API.encode(), "root_path": "",
        "headers": [(b"host", f"{VAULT}.vault.localhost:{port}".encode()), (b"authorization", f"Bearer {token}".encode()),
                    (b"content-type", b"application/json"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", port), "state": {},
    }


async def drive(app, make_scope, n: int, concurrency: int, body: bytes = b"") -> tuple[float, float, dict[int, int]]:
    statuses: dict[int, int] = {}
    left = n

    async def one() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            sent = False

            async def receive():
                nonlocal sent
                if sent:
                    await asyncio.sleep(3600)
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message):
                if message["type"] == "http.response.start":
                    statuses[message["status"]] = statuses.get(message["status"], 0) + 1

            await app(make_scope(), receive, send)

    r0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(concurrency)))
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    statuses["kernel_share_%"] = round(100 * (r1.ru_stime - r0.ru_stime) / max(1e-9, cpu))
    return cpu, time.perf_counter() - wall0, statuses


def measure(label: str, make, body: bytes, requests: int, concurrency: int, repeat: int, warmup: int,
            cprofile: Path | None) -> None:
    """Serve `make()` requests with the app of STRONGROOM_SETTINGS in this process; print CPU per request.

    Shared by the in-process tools (this one and bench.inproc_login).
    """
    import uvloop

    from strongroom.server.app import app_from_env

    async def run() -> list[tuple[float, float, dict[int, int]]]:
        app = app_from_env()
        await drive(app, make, warmup, concurrency, body)  # warm-up: caches, first fsyncs, issuer keys
        out = [await drive(app, make, requests, concurrency, body) for _ in range(repeat)]
        if cprofile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
            await drive(app, make, requests, concurrency, body)
            prof.disable()
            prof.dump_stats(str(cprofile))
        return out

    results = uvloop.run(run())
    per = [cpu / requests * 1e6 for cpu, _, _ in results]
    for cpu, wall, statuses in results:
        print(f"{label}: {requests} requests, CPU {cpu / requests * 1e6:6.1f} µs/request, "
              f"{requests / wall:,.0f} req/s in-process, statuses {statuses}")
    print(f"median CPU {statistics.median(per):.1f} µs/request (load average {os.getloadavg()[0]:.2f})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.inproc")
    p.add_argument("--scenario", choices=["hot", "spread", "write"], default="hot")
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--secrets", type=int, default=1000)
    p.add_argument("--cprofile", type=Path,
                   help="also write cProfile stats of one measured batch here (slower: the figure is not comparable)")
    a = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-inproc-"))
    sr = Strongroom(workdir / "strongroom", free_port(), 1)
    try:
        sr.start()
        sr.setup()
        sr.federate()
        put_all(sr.url, False, sr.put_request, [HOT], 1)
        put_all(sr.url, False, sr.put_request, [f"{SPREAD}{i}" for i in range(a.secrets)], 1)
        put_all(sr.url, False, sr.put_request, [f"{WRITE}{i}" for i in range(100)], 1)
        sr.stop()  # the state is ready; from here the app runs in this process

        from strongroom.settings import Settings

        settings = Settings(state_dir=sr.state_dir, port=sr.port, insecure_http=True, throttle=False, log_level="warning")
        os.environ["STRONGROOM_SETTINGS"] = settings.to_env()
        reader, writer = sr.reader.access_token, sr.writer.access_token
        if a.scenario == "hot":
            make, body = (lambda: scope(sr.port, "GET", f"/secrets/{HOT}", reader)), b""
        elif a.scenario == "spread":
            make, body = (lambda: scope(sr.port, "GET", f"/secrets/{SPREAD}{random.randrange(a.secrets)}", reader)), b""
        else:
            make, body = (
                (lambda: scope(sr.port, "PUT", f"/secrets/{WRITE}{random.randrange(100)}", writer)),
                b'{"value":"0123456789abcdef0123456789abcdef"}',
            )

        measure(a.scenario, make, body, a.requests, a.concurrency, a.repeat, 2000, a.cprofile)
    finally:
        sr.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
