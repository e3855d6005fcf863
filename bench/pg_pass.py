"""The PostgreSQL pass (issue #12): Strongroom replicas on one PostgreSQL behind HAProxy, beside OpenBao (raft).

    python -m bench --pg            the SQLite passes, then this one
    python -m bench --pg-only       only this one (with --quick: a short smoke)

What it runs, in this order, all over TLS (the rotation's federated login needs an https
issuer; HAProxy passes TLS through in TCP mode, as docs/operations.md sets it up):

1. one replica behind HAProxy: hot read and durable writes, alternating with OpenBao;
2. two replicas behind HAProxy (round robin): the same two scenarios; CPU is both replicas' trees;
3. rotation across replicas: the PUT goes to replica A's own port, `mount --watch` reaches
   only replica B (HAProxy's backend is B alone), so every new value crosses PostgreSQL.

PostgreSQL is the suite's private cluster (tests/pgcluster.py: initdb in a temporary
directory, its own port, removed at the end); HAProxy is Debian's `haproxy`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.measure import Run, measure
from bench.strongroom_target import Strongroom

if TYPE_CHECKING:
    from bench.run import Bench

# What a second replica copies from the first (docs/operations.md); identity-header for the managed-identity endpoint.
REPLICA_FILES = ("master.key", "ca.pem", "ca.key", "server.pem", "server.key", "admin.json", "identity-header")
PG_SCENARIOS = ("hot", "write")

HAPROXY_CFG = """
global
    maxconn 4096

defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s

frontend strongroom
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server check check-ssl verify none inter 300ms fall 2 rise 1
{servers}
"""


def haproxy_path() -> str | None:
    return shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)


def available() -> str | None:
    """Why the pass cannot run here, or None."""
    from tests.pgcluster import pg_bin_dir

    if pg_bin_dir() is None:
        return "PostgreSQL server binaries not found (apt-get install postgresql)"
    if haproxy_path() is None:
        return "haproxy not found (apt-get install haproxy)"
    return None


class HAProxy:
    """HAProxy in TCP mode in front of the given replica ports (restarted to change them)."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir, self.port = workdir, port
        self.proc: subprocess.Popen | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    def start(self, backends: list[int]) -> None:
        self.stop()
        servers = "\n".join(f"    server r{i} 127.0.0.1:{p}" for i, p in enumerate(backends))
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(HAPROXY_CFG.format(port=self.port, servers=servers))
        haproxy = haproxy_path()
        assert haproxy is not None
        self.proc = subprocess.Popen([haproxy, "-f", str(cfg), "-db"], stdout=open(self.workdir / "haproxy.log", "ab"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                time.sleep(0.7)  # the first health checks (every 300 ms) mark the replicas up
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"haproxy did not listen: {(self.workdir / 'haproxy.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


def pg_pass(bench: Bench) -> dict[str, Any]:
    """Run the pass; its results (also stored under result["postgresql"])."""
    from tests.pgcluster import remove_cluster, start_cluster

    from bench.populate import put_all
    from bench.run import HOT, WRITE, free_port, median_run

    cfg, log = bench.cfg, bench.log
    root = bench.workdir / "pg"
    cluster = start_cluster()
    lb = HAProxy(root / "haproxy", free_port())
    public = ["--storage", cluster.create_database(), "--public-url", f"https://localhost:{lb.port}"]
    a = Strongroom(root / "a", free_port(), cfg.workers, tls=True, public_port=lb.port, extra_args=public, name="Strongroom PG")
    b = Strongroom(root / "b", free_port(), cfg.workers, tls=True, public_port=lb.port, extra_args=public, name="Strongroom PG")
    out: dict[str, Any] = {"setup": f"PostgreSQL {cluster.bin_dir.parent.name} (private cluster), HAProxy TCP mode, "
                                    f"TLS, {cfg.workers} workers per replica"}
    ob = bench.ob
    try:
        lb.start([a.port])
        t = a.start()
        log.info(f"[pg] PostgreSQL on :{cluster.port}, replica A healthy in {t:.2f} s behind HAProxy :{lb.port}")
        a.setup()
        a.federate()
        b.state_dir.mkdir(parents=True, mode=0o700)
        for name in REPLICA_FILES:
            shutil.copy2(a.state_dir / name, b.state_dir / name)
        b.reader, b.writer, b.tenant_id = a.reader, a.writer, a.tenant_id  # one identity store: the same tokens work on both
        put_all(a.url, a.ca_file, a.put_request, [HOT], 1)
        put_all(a.url, a.ca_file, a.put_request, [f"{WRITE}{i}" for i in range(cfg.writes)], 1)
        if ob is not None:
            ob.tls, ob.cert_file, ob.key_file = True, str(a.state_dir / "server.pem"), str(a.state_dir / "server.key")
            ob.ca_file_path = str(a.state_dir / "ca.pem")
            ob.start()
            ob.setup()
            put_all(ob.url, ob.ca_file, ob.put_request, [HOT], 1)
            put_all(ob.url, ob.ca_file, ob.put_request, [f"{WRITE}{i}" for i in range(cfg.writes)], 1)

        out["one_replica"] = _rounds(bench, "pg 1 replica", a, [a.pid], ob, median_run)
        t = b.start()
        lb.start([a.port, b.port])
        log.info(f"[pg] replica B healthy in {t:.2f} s; HAProxy round robin over A and B")
        out["two_replicas"] = _rounds(bench, "pg 2 replicas", a, [a.pid, b.pid], ob, median_run)
        if ob is not None:
            ob.stop()

        if cfg.agent:
            from bench.agent_scenarios import rotation_scenario

            lb.start([b.port])  # the agents reach B only; the PUTs go to A's own port
            d = root / "agent"
            d.mkdir(exist_ok=True)
            r = rotation_scenario(a, d, rotations=10 if cfg.quick else 100, write_url=a.direct_url)
            out["rotation_across_replicas"] = r
            log.info(f"[pg] rotation, set via A -> mount --watch via B: p50 {r['watch']['p50_ms']:.0f} ms "
                     f"p99 {r['watch']['p99_ms']:.0f} ms ({r['watch']['missed_10s']} over 10 s)")
    finally:
        for srv in (a, b):
            srv.stop()
        lb.stop()
        if ob is not None:
            ob.stop()
        remove_cluster(cluster)
    return out


def _rounds(bench: Bench, label: str, sr: Strongroom, pids: list[int], ob, median_run) -> dict[str, Any]:
    """Hot read and durable writes, Strongroom (through HAProxy) and OpenBao in alternation; medians per system."""
    from bench.run import HOT, WRITE

    cfg = bench.cfg
    runs: dict[str, dict[str, list[Run]]] = {}
    systems = [sr] + ([ob] if ob is not None else [])
    for rnd in range(cfg.rounds):
        order = systems if rnd % 2 == 0 else list(reversed(systems))
        for scenario in PG_SCENARIOS:
            for target in order:
                w = target.read_one(HOT) if scenario == "hot" else target.write(WRITE, cfg.writes)
                run = measure(pids if target is sr else target.pid, target.url, w, bench.s, target.ca_file)
                runs.setdefault(scenario, {}).setdefault("Strongroom" if target is sr else target.name, []).append(run)
                bench.log.run(label, scenario, "Strongroom" if target is sr else target.name, run)
    return {sc: {system: median_run(rs) for system, rs in per.items()} for sc, per in runs.items()}
