"""How fast `strongroom lint` reads a repository of 1,000 manifests (no --server).

`python -m bench.lint_speed [N]` writes N manifests (apps of a ServiceAccount, a
SecretProviderClass, a Deployment mounting it and a ConfigMap, one file each) into a temporary
directory, then times the lint in-process (engine.run) and end to end (`strongroom lint DIR`,
a new process: interpreter start and imports included). The goal is under 5 s for 1,000.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP = {
    "sa.yaml": """apiVersion: v1
kind: ServiceAccount
metadata:
  name: app{i}
  namespace: ns{n}
  annotations:
    azure.workload.identity/client-id: "{cid}"
""",
    "spc.yaml": """apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: app{i}-spc
  namespace: ns{n}
spec:
  provider: azure
  parameters:
    clientID: "{cid}"
    keyvaultName: kv{n}
    objects: |
      array:
        - |
          objectName: secret-{i}
          objectType: secret
""",
    "deploy.yaml": """apiVersion: apps/v1
kind: Deployment
metadata:
  name: app{i}
  namespace: ns{n}
spec:
  selector:
    matchLabels:
      app: app{i}
  template:
    metadata:
      labels:
        app: app{i}
        azure.workload.identity/use: "true"
    spec:
      serviceAccountName: app{i}
      containers:
        - name: app
          image: registry.example.com/app{i}:1.{i}
          env:
            - name: LOG_LEVEL
              value: info
      volumes:
        - name: secrets
          csi:
            driver: secrets-store.csi.k8s.io
            readOnly: true
            volumeAttributes:
              secretProviderClass: app{i}-spc
""",
    "config.yaml": """apiVersion: v1
kind: ConfigMap
metadata:
  name: app{i}
  namespace: ns{n}
data:
  url: https://app{i}.example.com/api
  owner: team-{n}
  feature: "flag-{i}"
""",
}


def write_repo(root: Path, manifests: int) -> None:
    for k in range(manifests):
        i, (name, template) = k // len(APP), list(APP.items())[k % len(APP)]
        d = root / f"team{i % 10}" / f"app{i}"
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(template.format(i=i, n=i % 10, cid=f"{i:08d}-0000-4000-8000-000000000000"))


def main(argv: list[str]) -> int:
    from strongroom.lint import engine

    n = int(argv[0]) if argv else 1000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_repo(root, n)
        t0 = time.perf_counter()
        result = engine.run([root], base=root)
        inproc = time.perf_counter() - t0
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "strongroom.cli.main", "lint", str(root), "--format", "json"],
                              capture_output=True, text=True)
        cli = time.perf_counter() - t0
    print(f"{n} manifests in {result.files} files: {len(result.findings)} findings")
    print(f"in-process: {inproc:.2f} s   CLI end to end: {cli:.2f} s (exit {proc.returncode})")
    return 0 if cli < 5.0 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
