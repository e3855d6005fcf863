"""The status file: what the driver keeps in a SecretProviderClassPodStatus object.

The driver creates `<pod>-<namespace>-<spc>` (secrets-store.csi.x-k8s.io/v1) after a
successful mount and updates its objects on rotation; the agent writes the same
object as JSON, atomically (temp file, fsync, rename), so tools can read which
versions are mounted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.csi.provider import ObjectVersion

API_VERSION = "secrets-store.csi.x-k8s.io/v1"
KIND = "SecretProviderClassPodStatus"
NODE_LABEL = "internal.secrets-store.csi.k8s.io/node-name"
DEFAULT_NAME = "..status.json"


@dataclass(frozen=True)
class PodStatus:
    pod_name: str
    namespace: str
    spc_name: str
    target_path: str
    node_name: str
    objects: list[ObjectVersion]
    mounted: bool = True

    @property
    def name(self) -> str:
        return f"{self.pod_name}-{self.namespace}-{self.spc_name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": {NODE_LABEL: self.node_name}},
            "status": {
                "podName": self.pod_name,
                "secretProviderClassName": self.spc_name,
                "mounted": self.mounted,
                "targetPath": self.target_path,
                "objects": [{"id": o.id, "version": o.version} for o in sorted(self.objects, key=lambda o: o.id)],
            },
        }


def write_status(path: Path, status: PodStatus) -> None:
    data = json.dumps(status.to_json(), indent=2, sort_keys=False).encode() + b"\n"
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
