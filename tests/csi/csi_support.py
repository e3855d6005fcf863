"""Helpers for the CSI provider tests: requests shaped as the driver sends them, a provider on a real socket.

`driver_request` builds a MountRequest the way the Secrets Store CSI Driver v1.6
does (nodeserver.go): the SPC's parameters, then kubelet's volume_context keys
(pod info with podInfoOnMount, `secretProviderClass`, ephemeral), then the
service-account tokens JSON; `secrets` is the nodePublishSecretRef data as JSON;
`permission` is `json.Marshal(os.FileMode(0644))`, i.e. "420".
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from strongroom.csi.proto.v1alpha1 import service_pb2 as pb
from strongroom.csi.proto.v1alpha1 import service_pb2_grpc as pb_grpc
from strongroom.csi.provider import ProviderConfig, ProviderServer, serve


def objects_yaml(*objects: dict[str, Any]) -> str:
    """The SPC `objects` parameter: `array:` of YAML strings, written as people write it (`- |`)."""
    lines = ["array:"]
    for obj in objects:
        lines.append("  - |")
        for key, value in obj.items():
            lines.append(f"    {key}: {value}")
    return "\n".join(lines) + "\n"


def driver_attributes(
    parameters: dict[str, str],
    *,
    spc: str = "azure-spc",
    pod: str = "web-0",
    namespace: str = "default",
    service_account: str = "default",
    tokens: dict[str, str] | None = None,
) -> dict[str, str]:
    attributes = dict(parameters)
    attributes.update(
        {
            "secretProviderClass": spc,
            "csi.storage.k8s.io/pod.name": pod,
            "csi.storage.k8s.io/pod.namespace": namespace,
            "csi.storage.k8s.io/pod.uid": str(uuid.uuid4()),
            "csi.storage.k8s.io/serviceAccount.name": service_account,
            "csi.storage.k8s.io/ephemeral": "true",
        }
    )
    if tokens is not None:
        attributes["csi.storage.k8s.io/serviceAccount.tokens"] = json.dumps(
            {aud: {"token": tok, "expirationTimestamp": "2030-01-01T00:00:00Z"} for aud, tok in tokens.items()}
        )
    return attributes


def driver_request(attributes: dict[str, str], secrets: dict[str, str] | None = None, permission: int = 0o644) -> pb.MountRequest:
    return pb.MountRequest(
        attributes=json.dumps(attributes),
        secrets=json.dumps(secrets or {}),
        target_path="/var/lib/kubelet/pods/0000/volumes/kubernetes.io~csi/secrets-store-inline/mount",
        permission=json.dumps(permission),
    )


def provider_config(server, **overrides: Any) -> ProviderConfig:
    """Flags as a user passes them to reach this server: DNS suffix with port, authority, CA."""
    values: dict[str, Any] = {
        "vault_dns_suffix": f"vault.localhost:{server.port}",
        "authority_host": server.url,
        "ca_file": server.ca,
    }
    values.update(overrides)
    return ProviderConfig(**values)


class ProviderUnderTest:
    def __init__(self, running: ProviderServer) -> None:
        self.running = running
        self.channel = grpc.insecure_channel(f"unix:{running.socket_path}")
        self.stub = pb_grpc.CSIDriverProviderStub(self.channel)

    def mount(self, request: pb.MountRequest) -> pb.MountResponse:
        return self.stub.Mount(request, timeout=60)

    def mount_error(self, request: pb.MountRequest) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as info:
            self.stub.Mount(request, timeout=60)
        return info.value

    def close(self) -> None:
        self.channel.close()
        self.running.stop(grace=1)


def start_provider(socket_path: Path, config: ProviderConfig, metrics_addr: str | None = None) -> ProviderUnderTest:
    return ProviderUnderTest(serve(socket_path, config, metrics_addr=metrics_addr))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
