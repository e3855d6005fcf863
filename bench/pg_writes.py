"""In-process PostgreSQL write measurement (issue 12): what a durable write costs Strongroom.

`python -m bench.pg_writes [--seconds 5] [--threads 16] [--replicas 2]` starts a private
PostgreSQL (tests/pgcluster.py), opens one sealed store per simulated replica on it and has
threads write as the vault code does (`write_and_append`: a sealed record, the change counter,
one change-feed entry), then prints writes/s and this process's CPU per write as JSON. Quicker
than the full pass (`python -m bench --pg-only`), and it isolates the storage write path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pgcluster import remove_cluster, start_cluster  # noqa: E402

from strongroom.barrier.envelope import open_store  # noqa: E402
from strongroom.barrier.keyring import Keyring, MasterKey  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()
    cluster = start_cluster()
    try:
        url = cluster.create_database()
        keyring = Keyring([MasterKey.generate()])
        stores = [open_store(url, keyring) for _ in range(args.replicas)]
        stop = threading.Event()
        counts = [0] * args.threads

        def work(n: int) -> None:
            store = stores[n % len(stores)]
            vault = f"v{n % 4}"
            while not stop.is_set():
                i = counts[n]
                store.write_and_append({f"vaults/{vault}/secrets/s{n}-{i % 50}": os.urandom(200)},
                                       f"feed/{vault}", [b"{\"event\":\"put\"}"])
                counts[n] = i + 1

        threads = [threading.Thread(target=work, args=(n,)) for n in range(args.threads)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # warm up
        c0, t0, cpu0 = sum(counts), time.monotonic(), time.process_time()
        time.sleep(args.seconds)
        c1, t1, cpu1 = sum(counts), time.monotonic(), time.process_time()
        stop.set()
        for t in threads:
            t.join()
        for s in stores:
            s.close()
        writes = c1 - c0
        print(json.dumps({"replicas": args.replicas, "threads": args.threads, "writes": writes,
                          "writes_per_s": round(writes / (t1 - t0), 1),
                          "cpu_us_per_write": round((cpu1 - cpu0) / max(writes, 1) * 1e6)}))
    finally:
        remove_cluster(cluster)


if __name__ == "__main__":
    main()
