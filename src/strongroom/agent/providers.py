"""The provider the agent calls: in this process, or a running provider over its unix socket.

Both take the driver's inputs (attributes, nodePublishSecretRef data, the
default file permission) and give back the files and object versions, or raise
`ProviderError` with the provider's gRPC status name and message. Over the
socket the agent is a gRPC client configured as the driver's
(provider_client.go): insecure channel on `unix:<path>`, authority `localhost`,
wait-for-ready, retry on UNAVAILABLE, a 4 MiB receive limit, and a Version call
that must answer `v1alpha1` before the first Mount.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import grpc

from strongroom.csi.errors import FAILED_PRECONDITION, UNAVAILABLE, ProviderError
from strongroom.csi.proto.v1alpha1 import service_pb2 as pb
from strongroom.csi.proto.v1alpha1 import service_pb2_grpc as pb_grpc
from strongroom.csi.provider import (
    API_VERSION,
    MAX_RESPONSE_BYTES,
    File,
    MountResult,
    ObjectVersion,
    Provider,
    ProviderConfig,
)

MOUNT_TIMEOUT = 60.0  # kubelet gives NodePublishVolume about two minutes
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": "v1alpha1.CSIDriverProvider"}],
                "waitForReady": True,
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "1s",
                    "maxBackoff": "10s",
                    "backoffMultiplier": 1.1,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


class ProviderClient(Protocol):
    name: str

    def mount(self, attributes: Mapping[str, str], secrets: Mapping[str, str], permission: int) -> MountResult: ...

    def close(self) -> None: ...


class InProcessProvider:
    """The provider's own `Provider.mount`, the code `strongroom provider serve` runs."""

    def __init__(self, config: ProviderConfig) -> None:
        self.provider = Provider(config)
        self.name = "in-process"

    def mount(self, attributes: Mapping[str, str], secrets: Mapping[str, str], permission: int) -> MountResult:
        return self.provider.mount(attributes, secrets, permission)

    def close(self) -> None:
        self.provider.close()


class SocketProvider:
    """A provider serving v1alpha1.CSIDriverProvider on a unix socket (`strongroom provider serve`, or another)."""

    def __init__(self, socket_path: str | Path, timeout: float = MOUNT_TIMEOUT) -> None:
        self.socket_path = Path(socket_path)
        self.name = str(self.socket_path)
        self.timeout = timeout
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.CSIDriverProviderStub | None = None
        self._lock = threading.Lock()

    def _connect(self) -> pb_grpc.CSIDriverProviderStub:
        with self._lock:
            if self._stub is not None:
                return self._stub
            if not self.socket_path.exists():
                raise ProviderError(
                    UNAVAILABLE,
                    f"no provider socket at {self.socket_path}. Hint: start it with `strongroom provider serve --socket "
                    f"{self.socket_path}`, or leave out --provider-socket to run the provider in this process.",
                )
            channel = grpc.insecure_channel(
                f"unix:{self.socket_path}",
                options=[
                    ("grpc.default_authority", "localhost"),
                    ("grpc.service_config", _SERVICE_CONFIG),
                    ("grpc.enable_retries", 1),
                    ("grpc.max_receive_message_length", MAX_RESPONSE_BYTES),
                ],
            )
            stub = pb_grpc.CSIDriverProviderStub(channel)
            try:
                version = stub.Version(pb.VersionRequest(version=API_VERSION), timeout=10.0)
            except grpc.RpcError as exc:
                channel.close()
                raise _provider_error(exc, self.socket_path) from None
            if version.version != API_VERSION:
                channel.close()
                raise ProviderError(
                    FAILED_PRECONDITION,
                    f"the provider at {self.socket_path} speaks {version.version!r}, not {API_VERSION}",
                )
            self._channel, self._stub = channel, stub
            return stub

    def mount(self, attributes: Mapping[str, str], secrets: Mapping[str, str], permission: int) -> MountResult:
        stub = self._connect()
        request = pb.MountRequest(
            attributes=json.dumps(dict(attributes)),
            secrets=json.dumps(dict(secrets)),
            target_path="",  # files come back in the response; the provider writes nothing itself
            permission=json.dumps(permission),
        )
        try:
            response = stub.Mount(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                self.close()  # reconnect next time: the provider may have restarted
            raise _provider_error(exc, self.socket_path) from None
        if not response.object_version:
            raise ProviderError(FAILED_PRECONDITION, "the provider returned no object versions (missing object versions)")
        if response.error.code:
            raise ProviderError(FAILED_PRECONDITION, f"the provider reported error {response.error.code}")
        return MountResult(
            files=[File(f.path, f.mode, f.contents) for f in response.files],
            object_versions=[ObjectVersion(v.id, v.version) for v in response.object_version],
        )

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
            self._channel = self._stub = None


def _provider_error(exc: grpc.RpcError, path: Path) -> ProviderError:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    if code == grpc.StatusCode.UNAVAILABLE and "failed to connect" in (details or "").lower():
        details = f"cannot connect to the provider at {path}: {details}"
    return ProviderError(code.name, details or code.name)
