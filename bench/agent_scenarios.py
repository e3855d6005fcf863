"""Scenarios 5 and 6: the agent side (`strongroom mount`, `strongroom run`). No OpenBao equivalent.

5. mount: `strongroom mount --once` of a SecretProviderClass with 10 objects, as the
   workload identity (federated service-account token -> access token -> 10 secret reads ->
   atomic write). Timed in-process (the command's own function, called as typer calls it),
   so the figure is the mount and not the interpreter start; the whole command as a
   process is reported beside it.
6. rotation: the time from `secret set` (the PUT leaving the client) to the new content in
   a `mount --watch` target and in a `run` child's environment, over N rotations; the CSI
   driver's default is a 2-minute poll.

Both need TLS: a federated credential's issuer must be https (Entra's rule).
"""

from __future__ import annotations

import secrets
import signal
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench.strongroom_target import NAMESPACE, VAULT, Strongroom, strongroom_cmd

MOUNT_OBJECTS = 10


def spc_yaml(sr: Strongroom, name: str, objects: list[str]) -> str:
    lines = ["array:"] + [f"  - |\n    objectName: {o}\n    objectType: secret" for o in objects]
    objects_param = "\n".join(lines).replace("\n", "\n      ")
    return f"""apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: {name}
  namespace: {NAMESPACE}
spec:
  provider: azure
  parameters:
    usePodIdentity: "false"
    clientID: "{sr.reader.client_id}"
    keyvaultName: "{VAULT}"
    tenantId: "{sr.tenant_id}"
    objects: |
      {objects_param}
"""


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q / 100 * len(s)))]


def _agent_args(sr: Strongroom, spc: Path) -> list[str]:
    return ["--spc", str(spc), "--namespace", NAMESPACE, "--service-account", sr.reader.name,
            "--state-dir", str(sr.state_dir), "--server", sr.authority, "--ca-file", str(sr.state_dir / "ca.pem"),
            "--log-level", "warning"]


def mount_scenario(sr: Strongroom, workdir: Path, objects: list[str], mounts: int = 20, processes: int = 5) -> dict[str, Any]:
    from strongroom.cli.mount import mount as mount_command

    spc = workdir / "spc-mount.yaml"
    spc.write_text(spc_yaml(sr, "bench-mount", objects[:MOUNT_OBJECTS]))
    times = []
    for i in range(mounts + 1):
        target = workdir / f"mount-{i}"
        t0 = time.perf_counter()
        mount_command(spc=spc, namespace=NAMESPACE, service_account=sr.reader.name, target=target, once=True,
                      state_dir=sr.state_dir, server=sr.authority, ca_file=sr.state_dir / "ca.pem", log_level="warning")
        dt = (time.perf_counter() - t0) * 1000
        if i:  # the first pays one-time imports and connection set-up
            times.append(dt)
        files = sorted(p.name for p in target.iterdir() if not p.name.startswith("."))
        if len(files) < len(objects[:MOUNT_OBJECTS]):
            raise RuntimeError(f"mount wrote {files}")
    wall = []
    for i in range(processes):
        t0 = time.perf_counter()
        subprocess.run([*strongroom_cmd(), "mount", "--once", *_agent_args(sr, spc), "--target", str(workdir / f"proc-{i}")],
                       check=True, capture_output=True, timeout=120)
        wall.append((time.perf_counter() - t0) * 1000)
    return {"objects": len(objects[:MOUNT_OBJECTS]), "mounts": mounts, "p50_ms": _pct(times, 50), "p99_ms": _pct(times, 99),
            "mean_ms": statistics.fmean(times), "process_p50_ms": _pct(wall, 50), "processes": processes}


def _wait_for(paths: dict[str, Path], value: str, timeout: float) -> dict[str, float]:
    """Poll (1 ms) until each file holds `value`; seconds since now for each."""
    t0 = time.perf_counter()
    seen: dict[str, float] = {}
    while len(seen) < len(paths) and time.perf_counter() - t0 < timeout:
        for key, path in paths.items():
            if key in seen:
                continue
            try:
                if path.read_text() == value:
                    seen[key] = time.perf_counter() - t0
            except OSError:
                pass
        time.sleep(0.001)
    return seen


def rotation_scenario(sr: Strongroom, workdir: Path, rotations: int = 100, write_url: str | None = None) -> dict[str, Any]:
    """`write_url`: where the PUTs go, if not where the agents connect (across replicas: one replica's own port)."""
    name = "rot"
    spc = workdir / "spc-rot.yaml"
    spc.write_text(spc_yaml(sr, "bench-rot", [name]))
    watch_dir, out = workdir / "watch", workdir / "run-child-value"
    headers = {"Host": sr.vault_host, "Authorization": f"Bearer {sr.writer.access_token}"}
    client = httpx.Client(verify=str(sr.state_dir / "ca.pem"), timeout=30)

    def set_value(v: str) -> None:
        r = client.put(f"{write_url or sr.url}/secrets/{name}?api-version=7.4", json={"value": v}, headers=headers)
        r.raise_for_status()

    value = secrets.token_hex(16)
    set_value(value)
    log = open(workdir / "agent.log", "ab")
    child = f'printf %s "$BENCH_VALUE" > {out}.tmp && mv {out}.tmp {out}; exec sleep 3600'
    procs = [
        subprocess.Popen([*strongroom_cmd(), "mount", "--watch", *_agent_args(sr, spc), "--target", str(watch_dir)],
                         stdout=log, stderr=subprocess.STDOUT),
        subprocess.Popen([*strongroom_cmd(), "run", *_agent_args(sr, spc), "--env", f"BENCH_VALUE={name}",
                          "--", "sh", "-c", child], stdout=log, stderr=subprocess.STDOUT),
    ]
    paths = {"watch": watch_dir / name, "run": out}
    latencies: dict[str, list[float]] = {"watch": [], "run": []}
    missed = {"watch": 0, "run": 0}
    try:
        if len(_wait_for(paths, value, 60)) < 2:
            raise RuntimeError(f"agents did not start: {(workdir / 'agent.log').read_text()[-2000:]}")
        time.sleep(1.0)  # let the watchers settle on the change feed
        for _ in range(rotations):
            value = secrets.token_hex(16)
            t0 = time.perf_counter()
            set_value(value)
            put_s = time.perf_counter() - t0  # the set itself counts: it is part of what a rotation waits for
            seen = _wait_for(paths, value, 10)
            for key in paths:
                if key in seen:
                    latencies[key].append((put_s + seen[key]) * 1000)
                else:
                    missed[key] += 1
                    _wait_for({key: paths[key]}, value, 30)  # let it catch up before the next rotation
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        client.close()
    return {k: {"rotations": rotations, "p50_ms": _pct(v, 50) if v else None, "p99_ms": _pct(v, 99) if v else None,
                "missed_10s": missed[k]} for k, v in latencies.items()}
