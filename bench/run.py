"""The benchmark run: both servers on loopback, equivalent state, each scenario against both
in alternation (A B, then B A, ...), one table and one JSON file.

    python -m bench               the full run (HTTP pass, then TLS pass)
    python -m bench --quick       a short run (fewer secrets, shorter and fewer rounds, HTTP only)
    python -m bench --only strongroom --rounds 1 --duration 1 --secrets 100 --versions 1 --writes 50 --no-tls
                                  what the smoke test runs (no OpenBao)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import load, report
from bench.measure import Probe, Run, Settings, measure, paced
from bench.procs import pss_bytes, rss_bytes, tree
from bench.strongroom_target import NAMESPACE, Strongroom

RESULTS = Path(__file__).resolve().parent / "results"
HOT = "hot"
SPREAD = "s"
WRITE = "w"
CSI_DEFAULT_POLL_S = 120  # the Secrets Store CSI driver's default --rotation-poll-interval


def free_port(pair: bool = False) -> int:
    """A free port (and the one after it, for OpenBao's cluster port)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not pair:
            return port
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue


@dataclass
class Config:
    rounds: int = 3
    duration: float = 10.0
    threads: int = 2
    connections: int = 32
    workers: int = 2
    secrets: int = 10_000
    versions: int = 3
    writes: int = 1_000
    tls: bool = True
    only_strongroom: bool = False
    generator: str = "wrk"
    scenarios: list[str] = field(default_factory=lambda: list(SCENARIOS))
    overload: bool = True
    agent: bool = True
    quick: bool = False
    pg: bool = False  # also the PostgreSQL pass (bench/pg_pass.py)
    pg_only: bool = False  # only the PostgreSQL pass
    out: Path | None = None


SCENARIOS = ("bare", "hot", "hot_half", "spread", "write", "login")
TITLES = {
    "bare": "Python ceiling: bare ASGI endpoint",
    "hot": "1 hot read (one secret)",
    "hot_half": "1b hot read at half peak rate",
    "spread": "2 spread read (random of N)",
    "write": "3 write (new versions)",
    "login": "4 login (SA token -> token)",
}


class Bare:
    """The bare endpoint on uvicorn (httptools, uvloop), with Strongroom's worker count and TLS files."""

    name = "bare ASGI"

    def __init__(self, workdir: Path, port: int, workers: int, body: bytes, tls_files: tuple[str, str] | None) -> None:
        self.workdir, self.port, self.workers, self.body, self.tls_files = workdir, port, workers, body, tls_files
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_files else 'http'}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        args = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1", "--port", str(self.port),
                # Strongroom's own protocol class (httptools, one write per response): the same stack.
                "--loop", "uvloop", "--http", "strongroom.server.protocol:CoalescingProtocol", "--no-access-log", "--log-level", "warning",
                "--no-server-header"]
        if self.workers > 1:
            args += ["--workers", str(self.workers)]
        if self.tls_files:
            args += ["--ssl-certfile", self.tls_files[0], "--ssl-keyfile", self.tls_files[1]]
        env = {**os.environ, "BENCH_BARE_BODY": self.body.decode()}
        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(args, env=env, cwd=root, stdout=open(self.workdir / "bare.log", "ab"),
                                     stderr=subprocess.STDOUT)
        import httpx

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/secrets/x", verify=False, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("bare endpoint did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None

    def workload(self) -> load.Workload:
        return load.Workload("GET", "/secrets/hot")


def median_run(runs: list[Run]) -> dict[str, Any]:
    """Medians over the rounds (and the spread of requests/s, so noise shows)."""
    med = lambda attr: statistics.median(getattr(r, attr) for r in runs)  # noqa: E731
    out = {k: med(k) for k in ("rps", "p50_ms", "p99_ms", "cpu_s", "peak_rss_mb")}
    out["rps_min"] = min(r.rps for r in runs)
    out["rps_max"] = max(r.rps for r in runs)
    out["non_2xx"] = sum(r.non_2xx for r in runs)
    out["socket_errors"] = sum(r.socket_errors for r in runs)
    out["cpu_us_per_request"] = statistics.median(
        (r.cpu_s / r.requests * 1e6) if r.requests else 0.0 for r in runs)
    out["rounds"] = [r.to_json() for r in runs]
    if runs and "target_rps" in runs[0].extra:
        out["target_rps"] = statistics.median(r.extra["target_rps"] for r in runs)
    return out


class Bench:
    def __init__(self, cfg: Config, workdir: Path) -> None:
        self.cfg = cfg
        self.workdir = workdir
        self.s = Settings(cfg.threads, cfg.connections, cfg.duration, cfg.generator)
        self.sr = Strongroom(workdir / "strongroom", free_port(), cfg.workers)
        self.ob = None
        if not cfg.only_strongroom:
            from bench.openbao_target import OpenBao

            self.ob = OpenBao(workdir / "openbao", free_port(pair=True))
        self.results: dict[str, Any] = {"passes": {}, "extras": {}}
        self.log = report.Log()

    # -- the passes ------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        passes = [] if self.cfg.pg_only else ["http", "tls"] if self.cfg.tls else ["http"]
        for i, mode in enumerate(passes):
            self.run_pass(mode, first=i == 0)
        if self.cfg.pg or self.cfg.pg_only:
            from bench.pg_pass import available, pg_pass

            missing = available()
            if missing:
                self.log.info(f"PostgreSQL pass skipped: {missing}")
                self.results["postgresql"] = {"skipped": missing}
            else:
                self.results["postgresql"] = pg_pass(self)
        return self.results

    def start_all(self, tls: bool, first: bool) -> None:
        self.sr.tls = tls
        t = self.sr.start()
        self.results["extras"].setdefault("startup", {})["strongroom_first_start_s" if first else "strongroom_restart_s"] = t
        self.log.info(f"Strongroom up ({'TLS' if tls else 'HTTP'}, {self.cfg.workers} workers) healthy in {t:.2f} s")
        self.sr.setup()
        self.sr.federate()
        if self.ob is not None:
            tls_dir = self.sr.state_dir
            self.ob.tls, self.ob.cert_file, self.ob.key_file = tls, str(tls_dir / "server.pem"), str(tls_dir / "server.key")
            self.ob.ca_file_path = str(tls_dir / "ca.pem")
            t = self.ob.start()
            self.results["extras"]["startup"]["openbao_first_start_s" if first else "openbao_restart_s"] = t
            self.log.info(f"OpenBao up ({'TLS' if tls else 'HTTP'}) initialised/unsealed and active in {t:.2f} s")
            self.ob.setup()
            ca_pem = (tls_dir / "ca.pem").read_text() if tls else None
            self.ob.configure_jwt(self.sr.issuer(), self.sr.jwks_url(), f"system:serviceaccount:{NAMESPACE}:{self.sr.reader.name}",
                                  "api://AzureADTokenExchange", ca_pem)

    def stop_all(self) -> None:
        self.sr.stop()
        if self.ob is not None:
            self.ob.stop()

    def populate(self) -> None:
        cfg = self.cfg
        from bench.populate import put_all

        t0 = time.monotonic()
        for target in [self.sr] + ([self.ob] if self.ob else []):
            verify = target.ca_file or False
            put_all(target.url, verify, target.put_request, [HOT], 1)
            put_all(target.url, verify, target.put_request, [f"{SPREAD}{i}" for i in range(cfg.secrets)], cfg.versions)
            put_all(target.url, verify, target.put_request, [f"{WRITE}{i}" for i in range(cfg.writes)], 1)
        self.log.info(f"populated {cfg.secrets:,} secrets x {cfg.versions} versions + {cfg.writes:,} in each system "
                      f"in {time.monotonic() - t0:.0f} s")
        time.sleep(1.0)
        sr_pids = tree(self.sr.pid)
        rss = {"strongroom_mb": rss_bytes(sr_pids) / 2**20, "strongroom_pss_mb": pss_bytes(sr_pids) / 2**20,
               "strongroom_processes": len(sr_pids)}
        if self.ob is not None:
            ob_pids = tree(self.ob.pid)
            rss["openbao_mb"], rss["openbao_pss_mb"] = rss_bytes(ob_pids) / 2**20, pss_bytes(ob_pids) / 2**20
        rss["secrets"], rss["versions"] = cfg.secrets, cfg.versions
        self.results["extras"]["idle_rss_after_populate"] = rss

    def run_pass(self, mode: str, first: bool) -> None:
        cfg = self.cfg
        tls = mode == "tls"
        self.start_all(tls, first)
        bare = None
        try:
            if first:
                self.populate()
            if "bare" in cfg.scenarios:
                files = (str(self.sr.state_dir / "server.pem"), str(self.sr.state_dir / "server.key")) if tls else None
                bare = Bare(self.workdir, free_port(), cfg.workers, self.sr.get_body(HOT), files)
                bare.start()
            runs: dict[str, dict[str, list[Run]]] = {}
            systems = [self.sr] + ([self.ob] if self.ob else [])
            for rnd in range(cfg.rounds):
                order = systems if rnd % 2 == 0 else list(reversed(systems))
                self.log.info(f"[{mode}] round {rnd + 1}/{cfg.rounds}: {' then '.join(t.name for t in order)}")
                if bare is not None:
                    runs.setdefault("bare", {}).setdefault("bare ASGI", []).append(
                        measure(bare.pid, bare.url, bare.workload(), self.s, None))
                for scenario in cfg.scenarios:
                    if scenario == "bare":
                        continue
                    for target in order:
                        run = self.scenario(scenario, target, runs)
                        if run is not None:
                            runs.setdefault(scenario, {}).setdefault(target.name, []).append(run)
                            self.log.run(mode, scenario, target.name, run)
            self.results["passes"][mode] = {
                sc: {system: median_run(rs) for system, rs in per.items()} for sc, per in runs.items()
            }
            if mode == "http" and cfg.overload:
                self.overload()
            if mode == "tls" and cfg.agent:
                self.agent()
        finally:
            if bare is not None:
                bare.stop()
            self.stop_all()

    def scenario(self, name: str, target, runs: dict[str, dict[str, list[Run]]]) -> Run | None:
        cfg, ca = self.cfg, target.ca_file
        if name == "hot":
            return measure(target.pid, target.url, target.read_one(HOT), self.s, ca)
        if name == "hot_half":
            hot = runs.get("hot", {}).get(target.name)
            if not hot:
                return None
            return paced(target.pid, target.url, target.read_one(HOT), self.s, hot[-1].rps / 2, ca)
        if name == "spread":
            return measure(target.pid, target.url, target.read_spread(SPREAD, cfg.secrets), self.s, ca)
        if name == "write":
            return measure(target.pid, target.url, target.write(WRITE, cfg.writes), self.s, ca)
        if name == "login":
            if target is self.sr and not self.sr.can_federate:
                return None  # plain HTTP cannot federate: see Strongroom.federate
            w = target.login() if target is self.sr else target.login_workload(self.sr.reader.sa_token)
            return measure(target.pid, target.url, w, self.s, ca)
        raise ValueError(f"unknown scenario {name}")

    # -- the agent side: mount and rotation (TLS only: federation needs an https issuer) --------

    def agent(self) -> None:
        from bench.agent_scenarios import mount_scenario, rotation_scenario

        if not agent_available():
            self.results["agent"] = {"mount": "not yet", "rotation": "not yet"}
            return
        d = self.workdir / "agent"
        d.mkdir(exist_ok=True)
        names = [f"{SPREAD}{i}" for i in range(min(10, self.cfg.secrets))]
        m = mount_scenario(self.sr, d, names, mounts=5 if self.cfg.quick else 20)
        self.log.info(f"mount --once of {m['objects']} objects: p50 {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms "
                      f"(as a process {m['process_p50_ms']:.0f} ms)")
        r = rotation_scenario(self.sr, d, rotations=10 if self.cfg.quick else 100)
        self.log.info(f"rotation: --watch p50 {r['watch']['p50_ms']:.0f} ms p99 {r['watch']['p99_ms']:.0f} ms; "
                      f"run p50 {r['run']['p50_ms']:.0f} ms p99 {r['run']['p99_ms']:.0f} ms")
        self.results["agent"] = {"mount": m, "rotation": r}

    # -- overload: twice the saturating concurrency, limits on ---------------------------------

    def overload(self) -> None:
        """Hot reads at twice the connections that saturate the server, with Azure's default limits on.

        The server must keep answering (429 beyond the vault's limit, no 5xx), its memory must
        not keep growing, and a slow probe beside the flood measures the latency of requests
        that were admitted.
        """
        sr = self.sr
        sr.stop()
        sr.throttle = True
        t = sr.start()
        self.results["extras"]["startup"]["strongroom_restart_s"] = t
        self.log.info(f"Strongroom restarted with limits on ({self.cfg.secrets:,} x {self.cfg.versions} secrets) in {t:.2f} s")
        w = sr.read_one(HOT)
        w.count_status = True
        try:
            with Probe(sr.url, sr.read_one(HOT), ca_file=sr.ca_file) as probe:
                run = measure(sr.pid, sr.url, w, self.s, sr.ca_file, connections=2 * self.cfg.connections,
                              duration=2 * self.cfg.duration)
            self.results["extras"]["overload"] = {
                "connections": 2 * self.cfg.connections, "duration_s": 2 * self.cfg.duration,
                "limit": "4,000 reads / 10 s per vault (Azure's default)",
                "load": run.to_json(), "probe": probe.summary(),
            }
            self.log.info(f"overload: {run.statuses} probe {probe.summary()}")
        finally:
            sr.stop()
            sr.throttle = False


def agent_available() -> bool:
    """`strongroom mount` and `strongroom run` exist (the agent side landed)."""
    return all(
        subprocess.run([sys.executable, "-m", "strongroom.cli.main", cmd, "--help"], capture_output=True, timeout=60).returncode == 0
        for cmd in ("mount", "run"))


def meta(cfg: Config) -> dict[str, Any]:
    m: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
        "generator": cfg.generator,
        "wrk": {"threads": cfg.threads, "connections": cfg.connections, "duration_s": cfg.duration},
        "rounds": cfg.rounds,
        "strongroom_workers": cfg.workers,
        "data": {"secrets": cfg.secrets, "versions": cfg.versions, "write_set": cfg.writes},
        "quick": cfg.quick,
    }
    if not cfg.only_strongroom:
        from bench.openbao_target import bao_version

        m["openbao"] = bao_version()
    return m


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


FAIRNESS = [
    "Both servers on this machine, on loopback, sharing its cores with the load generator.",
    "Pass 1: plain HTTP on both (strongroom up --insecure-http; OpenBao tls_disable). Pass 2: TLS on both, the same certificate and key.",
    "OpenBao: integrated raft storage on local disk, initialised and unsealed here, KV v2, file audit device declared in its config, "
    "tokens limited by policy to secret/data/* (read; create+update for writes).",
    "Strongroom: SQLite, audit log on, per-vault limits off (--no-throttle; on in the overload scenario); a managed identity with "
    "'Key Vault Secrets User' on the vault (Secrets Officer for writes), its token from the federated client-assertion exchange "
    "(TLS pass; plain HTTP cannot federate, so there the same identities take tokens from the managed-identity endpoint).",
    "Same generator, threads, connections and duration for both; scenarios alternate which system goes first each round; "
    "figures are medians over the rounds.",
    "Login: OpenBao JWT auth (jwks_url = Strongroom's local cluster JWKS) vs Strongroom's token endpoint, the same service-account token.",
]


def parse(argv: list[str] | None) -> Config:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2 rounds of 3 s, 1,000 secrets x 1 version, HTTP only")
    p.add_argument("--rounds", type=int)
    p.add_argument("--duration", type=float, help="seconds per measured run")
    p.add_argument("--threads", type=int)
    p.add_argument("--connections", type=int)
    p.add_argument("--workers", type=int, help="Strongroom (and bare endpoint) worker processes")
    p.add_argument("--secrets", type=int)
    p.add_argument("--versions", type=int)
    p.add_argument("--writes", type=int, help="how many secrets the write scenario writes new versions of")
    p.add_argument("--no-tls", action="store_true", help="skip the TLS pass")
    p.add_argument("--no-overload", action="store_true")
    p.add_argument("--no-agent", action="store_true", help="skip scenarios 5 and 6 (mount, rotation)")
    p.add_argument("--pg", action="store_true",
                   help="also the PostgreSQL pass: 1 and 2 replicas behind HAProxy, hot read and writes vs OpenBao, "
                        "rotation across replicas (needs postgresql and haproxy from Debian)")
    p.add_argument("--pg-only", action="store_true", help="only the PostgreSQL pass")
    p.add_argument("--only", choices=["all", "strongroom"], default="all")
    p.add_argument("--scenarios", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    p.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto",
                   help="load generator (auto: wrk when installed, else a small Python one, not for figures)")
    p.add_argument("--out", type=Path, help="JSON result path (default: bench/results/<time>.json)")
    a = p.parse_args(argv)
    cfg = Config()
    if a.quick:
        cfg.rounds, cfg.duration, cfg.secrets, cfg.versions, cfg.writes, cfg.tls, cfg.quick = 2, 3.0, 1000, 1, 200, False, True
    for k in ("rounds", "duration", "threads", "connections", "workers", "secrets", "versions", "writes"):
        if getattr(a, k) is not None:
            setattr(cfg, k, getattr(a, k))
    cfg.tls = cfg.tls and not a.no_tls
    cfg.overload = not a.no_overload
    cfg.agent = not a.no_agent
    cfg.only_strongroom = a.only == "strongroom"
    cfg.pg, cfg.pg_only = a.pg, a.pg_only
    if a.scenarios:
        cfg.scenarios = [s for s in a.scenarios.split(",") if s]
        unknown = set(cfg.scenarios) - set(SCENARIOS)
        if unknown:
            p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    cfg.generator = ("wrk" if load.wrk_path() else "python") if a.generator == "auto" else a.generator
    if cfg.generator == "wrk" and not load.wrk_path():
        p.error("wrk is not installed (apt-get install wrk), or use --generator python")
    cfg.out = a.out
    return cfg


def main(argv: list[str] | None = None) -> int:
    cfg = parse(argv)
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-bench-"))
    bench = Bench(cfg, workdir)
    result: dict[str, Any] = {"meta": meta(cfg), "fairness": FAIRNESS}
    report.fairness(result["meta"], FAIRNESS)
    try:
        result.update(bench.run())
    finally:
        bench.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    if not cfg.pg_only:
        result.setdefault("agent", {"mount": "needs the TLS pass", "rotation": "needs the TLS pass"})
    result.setdefault("agent", {})["csi_default_poll_s"] = CSI_DEFAULT_POLL_S
    result["meta"]["load_average_at_end"] = os.getloadavg()
    out = cfg.out or RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if cfg.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    report.table(result)
    report.console.print(f"JSON: {out}")
    return 0
