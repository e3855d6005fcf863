"""One measured run: load from the generator while the server's process tree is sampled."""

from __future__ import annotations

import http.client
import ssl
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench import load
from bench.procs import Sampler


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_s: float
    peak_rss_mb: float
    requests: int
    non_2xx: int
    socket_errors: int
    statuses: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Settings:
    threads: int
    connections: int
    duration: float
    generator: str  # "wrk" or "python"


def measure(pid: int | list[int], url: str, w: load.Workload, s: Settings, ca_file: str | None = None,
            connections: int | None = None, duration: float | None = None) -> Run:
    with Sampler(pid) as sampler:
        r = load.run(url, w, threads=s.threads, connections=connections or s.connections,
                     duration=duration or s.duration, generator=s.generator, ca_file=ca_file)
    u = sampler.usage
    return Run(rps=r.rps, p50_ms=r.p50_ms, p99_ms=r.p99_ms, cpu_s=u.cpu_s, peak_rss_mb=u.peak_rss / 2**20,
               requests=r.requests, non_2xx=r.non_2xx, socket_errors=r.socket_errors, statuses=r.statuses,
               extra={"start_rss_mb": u.start_rss / 2**20, "end_rss_mb": u.end_rss / 2**20})


def paced(pid: int, url: str, w: load.Workload, s: Settings, rate: float, ca_file: str | None = None) -> Run:
    """The workload at about `rate` requests/s: each connection pauses between requests.

    wrk paces by a whole-millisecond pause per request, so one short calibration run
    measures the service time to subtract from the pause.
    """
    conns = s.connections
    period_ms = 1000.0 * conns / rate
    first = measure(pid, url, _with_delay(w, period_ms), s, ca_file, duration=max(1.0, s.duration / 4))
    service_ms = max(0.0, 1000.0 * conns / first.rps - round(period_ms)) if first.rps else 0.0
    run = measure(pid, url, _with_delay(w, period_ms - service_ms), s, ca_file)
    run.extra["target_rps"] = rate
    return run


def _with_delay(w: load.Workload, delay_ms: float) -> load.Workload:
    return load.Workload(w.method, w.path, w.count, w.body, dict(w.headers), w.count_status, max(1, round(delay_ms)))


class Probe:
    """A slow client beside a load: the latency of each of its requests that the server admitted."""

    def __init__(self, url: str, w: load.Workload, interval: float = 0.02, ca_file: str | None = None) -> None:
        self.u = urlsplit(url)
        self.w = w
        self.interval = interval
        self.ctx = ssl.create_default_context(cafile=ca_file) if self.u.scheme == "https" else None
        self.admitted: list[float] = []
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _conn(self) -> http.client.HTTPConnection:
        if self.ctx:
            return http.client.HTTPSConnection(self.u.hostname, self.u.port, context=self.ctx, timeout=30)
        return http.client.HTTPConnection(self.u.hostname, self.u.port, timeout=30)

    def _run(self) -> None:
        conn = self._conn()
        while not self._stop.wait(self.interval):
            t0 = time.perf_counter()
            try:
                conn.request(self.w.method, self.w.path.replace("{i}", "0"), headers=self.w.headers)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                self.statuses[0] = self.statuses.get(0, 0) + 1
                conn.close()
                conn = self._conn()
                continue
            ms = (time.perf_counter() - t0) * 1000
            self.statuses[resp.status] = self.statuses.get(resp.status, 0) + 1
            if resp.status == 200:
                self.admitted.append(ms)
        conn.close()

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.admitted)
        pick = lambda q: lat[min(len(lat) - 1, int(q / 100 * len(lat)))] if lat else None  # noqa: E731
        return {"admitted": len(lat), "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "p50_ms": pick(50), "p99_ms": pick(99), "mean_ms": statistics.fmean(lat) if lat else None}
