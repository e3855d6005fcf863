"""Profile Strongroom's hot read path under wrk with py-spy (bench extra).

    python -m bench.profile [--scenario hot|spread|write] [--seconds 15] [--workers 1]

Starts Strongroom (plain HTTP, --no-throttle), prepares the bench vault and identity,
drives the scenario with wrk and samples the worker with py-spy; prints the functions
with the most samples (self and inclusive) and writes the raw collapsed stacks (for
flamegraph.pl or speedscope) next to the bench results.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import load
from bench.populate import put_all
from bench.procs import tree
from bench.run import HOT, RESULTS, SPREAD, WRITE, free_port
from bench.strongroom_target import Strongroom


def top(collapsed: Path, n: int = 25) -> tuple[list[tuple[str, int]], list[tuple[str, int]], int]:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        c = int(count)
        total += c
        frames = stack.split(";")
        own[frames[-1]] += c
        for f in set(frames):
            inclusive[f] += c
    return own.most_common(n), inclusive.most_common(n), total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile")
    p.add_argument("--scenario", choices=["hot", "spread", "write"], default="hot")
    p.add_argument("--seconds", type=int, default=15)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--secrets", type=int, default=1000)
    p.add_argument("--all-threads", action="store_true",
                   help="sample every thread, waits included (default: only the thread holding the GIL, i.e. Python CPU)")
    a = p.parse_args(argv)
    pyspy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not pyspy:
        raise SystemExit("py-spy is not installed: pip install -e '.[bench]'")
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-profile-"))
    sr = Strongroom(workdir / "strongroom", free_port(), a.workers)
    try:
        sr.start()
        sr.setup()
        sr.federate()
        put_all(sr.url, False, sr.put_request, [HOT], 1)
        put_all(sr.url, False, sr.put_request, [f"{SPREAD}{i}" for i in range(a.secrets)], 1)
        put_all(sr.url, False, sr.put_request, [f"{WRITE}{i}" for i in range(100)], 1)
        w = {"hot": sr.read_one(HOT), "spread": sr.read_spread(SPREAD, a.secrets), "write": sr.write(WRITE, 100)}[a.scenario]
        pids = tree(sr.pid)
        target = pids[-1] if a.workers > 1 else sr.pid  # one worker: the server process is the worker
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"profile-{a.scenario}-{time.strftime('%Y%m%d-%H%M%S')}.collapsed"
        result: dict = {}
        loader = threading.Thread(target=lambda: result.update(r=load.run_wrk(
            sr.url, w, threads=2, connections=a.connections, duration=a.seconds + 2)))
        loader.start()
        time.sleep(1.0)
        subprocess.run([pyspy, "record", "--pid", str(target), "--duration", str(a.seconds), "--rate", "250",
                        "--format", "raw", "--output", str(out), "--nonblocking", *([] if a.all_threads else ["--gil"])],
                       check=True, capture_output=True)
        loader.join()
        r = result["r"]
        print(f"{a.scenario}: {r.rps:,.0f} req/s with py-spy attached (p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms)")
        own, inclusive, total = top(out)
        print(f"\n{total} samples; self time:")
        for f, c in own:
            print(f"  {100 * c / total:5.1f}%  {f}")
        print("\ninclusive:")
        for f, c in inclusive:
            print(f"  {100 * c / total:5.1f}%  {f}")
        print(f"\ncollapsed stacks: {out}")
    finally:
        sr.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
