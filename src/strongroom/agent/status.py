"""The status file: what the driver keeps in a SecretProviderClassPodStatus object.

The driver creates `<pod>-<namespace>-<spc>` (secrets-store.csi.x-k8s.io/v1) after a
successful mount and updates its objects on rotation; the agent writes the same
object as JSON, atomically (a new temp file, fsync, rename), so tools can read which
versions are mounted.
"""

from __future__ import annotations

import json
import os
import secrets
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


def write_status(path: Path, status: PodStatus, mode: int = 0o600) -> None:
    """Replace `path` atomically; nothing is opened through a link (the temp file is new, exclusive, no-follow).

    A link planted at `path` is replaced, not followed: rename(2) swaps the name.
    """
    data = json.dumps(status.to_json(), indent=2, sort_keys=False).encode() + b"\n"
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for _ in range(100):
            tmp = f".{path.name}.{secrets.token_hex(8)}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
            except FileExistsError:
                continue
            break
        else:
            raise FileExistsError(f"no free temporary name next to {path}")
        try:
            try:
                os.write(fd, data)
                os.fchmod(fd, mode)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            raise
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
