"""Load generation: one workload description, driven by wrk (Lua generated from it) or by a
small Python generator when wrk is missing (the smoke test on a machine without wrk).

A workload is a request template: `{i}` in the path becomes a random index below `count`
(random secret names), `{v}` in the body a fresh random 32-hex-digit value (PUT bodies).
Both servers get the same wrk threads, connections and duration.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MARKER = "BENCH_JSON "


@dataclass
class Workload:
    method: str
    path: str  # may hold {i}
    count: int = 1
    body: str | None = None  # may hold {v}
    headers: dict[str, str] = field(default_factory=dict)
    count_status: bool = False  # per-status counters (a Lua response() hook, a little slower)
    delay_ms: int = 0  # pause before each request on a connection: paced load instead of flat out


@dataclass
class LoadResult:
    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx: int
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


def _lua_str(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid Lua string literal for our ASCII inputs


def lua_script(w: Workload) -> str:
    """wrk's Lua for a workload; static requests stay static (wrk builds them once)."""
    dynamic = "{i}" in w.path or (w.body is not None and "{v}" in w.body)
    lines = ["local threads = {}", f"wrk.method = {_lua_str(w.method)}", f"wrk.path = {_lua_str(w.path)}"]
    for k, v in w.headers.items():
        lines.append(f"wrk.headers[{_lua_str(k)}] = {_lua_str(v)}")
    if w.body is not None:
        lines.append(f"wrk.body = {_lua_str(w.body)}")
    lines += [
        "c2xx, c429, c5xx, cother = 0, 0, 0, 0",
        "function setup(thread) table.insert(threads, thread); thread:set('tid', #threads) end",
        "function init(args) math.randomseed(os.time() * 1000 + (tid or 0)) end",
    ]
    if dynamic:
        path_parts = w.path.split("{i}")
        body_parts = (w.body or "").split("{v}")
        lines += [
            f"local p1, p2 = {_lua_str(path_parts[0])}, {_lua_str(path_parts[1] if len(path_parts) > 1 else '')}",
            f"local b1, b2 = {_lua_str(body_parts[0])}, {_lua_str(body_parts[1] if len(body_parts) > 1 else '')}",
            f"local n = {int(w.count)}",
            "function request()",
            "  local path = p1 .. math.random(0, n - 1) .. p2" if len(path_parts) > 1 else "  local path = p1",
            "  local body = nil",
        ]
        if w.body is not None:
            if len(body_parts) > 1:
                lines.append(
                    "  body = b1 .. string.format('%08x%08x%08x%08x', math.random(0, 0x7fffffff),"
                    " math.random(0, 0x7fffffff), math.random(0, 0x7fffffff), math.random(0, 0x7fffffff)) .. b2"
                )
            else:
                lines.append("  body = b1")
        lines += ["  return wrk.format(nil, path, nil, body)", "end"]
    if w.delay_ms:
        # A random pause (mean delay_ms): a fixed one keeps the connections in lockstep, so requests
        # arrive in bursts of `connections` and queue behind each other at any average rate.
        lines.append(f"function delay() return math.random(0, {2 * int(w.delay_ms)}) end")
    if w.count_status:
        lines += [
            "function response(status, headers, body)",
            "  if status >= 200 and status < 300 then c2xx = c2xx + 1",
            "  elseif status == 429 then c429 = c429 + 1",
            "  elseif status >= 500 then c5xx = c5xx + 1",
            "  else cother = cother + 1 end",
            "end",
        ]
    lines += [
        "function done(summary, latency, requests)",
        "  local s2, s429, s5, so = 0, 0, 0, 0",
        "  for _, t in ipairs(threads) do",
        "    s2 = s2 + (t:get('c2xx') or 0); s429 = s429 + (t:get('c429') or 0)",
        "    s5 = s5 + (t:get('c5xx') or 0); so = so + (t:get('cother') or 0)",
        "  end",
        "  local e = summary.errors",
        f"  io.write(string.format('{MARKER}' .. '{{\"requests\":%d,\"duration_us\":%d,\"connect\":%d,\"read\":%d,"
        "\"write\":%d,\"status\":%d,\"timeout\":%d,\"p50\":%d,\"p99\":%d,\"s2xx\":%d,\"s429\":%d,\"s5xx\":%d,\"sother\":%d}\\n',",
        "    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,",
        "    latency:percentile(50), latency:percentile(99), s2, s429, s5, so))",
        "end",
    ]
    return "\n".join(lines) + "\n"


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(url: str, w: Workload, *, threads: int, connections: int, duration: float) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua_script(w))
        script = f.name
    try:
        cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s",
               "--timeout", "10s", "-s", script, url]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    finally:
        os.unlink(script)
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            d = json.loads(line[len(MARKER):])
            statuses = {"2xx": d["s2xx"], "429": d["s429"], "5xx": d["s5xx"], "other": d["sother"]} if w.count_status else {}
            return LoadResult(
                requests=d["requests"],
                duration_s=d["duration_us"] / 1e6,
                p50_ms=d["p50"] / 1000,
                p99_ms=d["p99"] / 1000,
                socket_errors=d["connect"] + d["read"] + d["write"] + d["timeout"],
                non_2xx=d["status"],
                statuses=statuses,
            )
    raise RuntimeError(f"wrk gave no result (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


# -- the fallback: a small threaded generator --------------------------------------------------

def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q / 100 * len(sorted_values)))]


def run_python(url: str, w: Workload, *, threads: int, connections: int, duration: float,
               ca_file: str | None = None) -> LoadResult:
    """Closed loop like wrk, one thread per connection (slow: for the smoke test, not for figures)."""
    u = urlsplit(url)
    ctx = ssl.create_default_context(cafile=ca_file) if u.scheme == "https" else None
    latencies: list[float] = []
    counts = {"2xx": 0, "429": 0, "5xx": 0, "other": 0, "errors": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + duration
    start = time.monotonic()

    def worker() -> None:
        conn = None
        local_lat: list[float] = []
        local = dict.fromkeys(counts, 0)
        rng = random.Random()
        while time.monotonic() < deadline:
            if conn is None:
                conn = (http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=10) if ctx
                        else http.client.HTTPConnection(u.hostname, u.port, timeout=10))
            path = w.path.replace("{i}", str(rng.randrange(w.count)))
            body = None if w.body is None else w.body.replace("{v}", f"{rng.getrandbits(128):032x}").encode()
            t0 = time.perf_counter()
            try:
                conn.request(w.method, path, body=body, headers=w.headers)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                local["errors"] += 1
                conn.close()
                conn = None
                continue
            local_lat.append((time.perf_counter() - t0) * 1000)
            s = resp.status
            local["2xx" if 200 <= s < 300 else "429" if s == 429 else "5xx" if s >= 500 else "other"] += 1
            if w.delay_ms:
                time.sleep(rng.uniform(0, 2 * w.delay_ms) / 1000)
        if conn is not None:
            conn.close()
        with lock:
            latencies.extend(local_lat)
            for k, v in local.items():
                counts[k] += v

    pool = [threading.Thread(target=worker) for _ in range(connections)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - start
    latencies.sort()
    return LoadResult(
        requests=len(latencies),
        duration_s=elapsed,
        p50_ms=_percentile(latencies, 50),
        p99_ms=_percentile(latencies, 99),
        socket_errors=counts["errors"],
        non_2xx=counts["429"] + counts["5xx"] + counts["other"],
        statuses={k: counts[k] for k in ("2xx", "429", "5xx", "other")} if w.count_status else {},
    )


def run(url: str, w: Workload, *, threads: int, connections: int, duration: float,
        generator: str = "wrk", ca_file: str | None = None) -> LoadResult:
    if generator == "wrk":
        return run_wrk(url, w, threads=threads, connections=connections, duration=duration)
    return run_python(url, w, threads=threads, connections=connections, duration=duration, ca_file=ca_file)


_SAFE = re.compile(r"^[\x20-\x7e]*$")


def check_ascii(*values: str) -> None:
    """Lua literals are generated with JSON escaping, which is exact for printable ASCII only."""
    for v in values:
        if not _SAFE.match(v):
            raise ValueError("workload strings must be printable ASCII")
