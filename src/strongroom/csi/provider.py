"""The Secrets Store CSI provider: `mount()` in process, and the v1alpha1 gRPC service around it.

`Provider.mount(attributes, secrets, permission)` is the whole mount: parse the
parameters as the Azure provider does, pick the credential, fetch each object
(and its version history) over the Key Vault REST API, render it, and return the
files with their object versions. The gRPC servicer only decodes the driver's
JSON strings and maps a ProviderError to a gRPC status; the agent calls `mount`
directly, so both paths run the same code.

Failures are raised, never returned in `MountResponse.error`: the Azure provider
does the same and the driver reports them as GRPCProviderError.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Generator, Iterable, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx

from strongroom import __version__
from strongroom.csi import cloud, credentials, hints, render
from strongroom.csi.cloud import CloudEnvironment
from strongroom.csi.errors import INTERNAL, INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, ProviderError
from strongroom.csi.keyvault_client import (
    ChallengeCache,
    KeyVaultClient,
    VaultRequestError,
    VaultUnreachable,
    version_of,
)
from strongroom.csi.metrics import MetricsServer, Reporter
from strongroom.csi.proto.v1alpha1 import service_pb2 as pb
from strongroom.csi.proto.v1alpha1 import service_pb2_grpc as pb_grpc
from strongroom.csi.spc import KeyVaultObject, SPCError, parse_parameters
from strongroom.csi.transport import http_verify

log = logging.getLogger("strongroom.csi")

RUNTIME_NAME = "strongroom"
API_VERSION = "v1alpha1"
DEFAULT_SOCKET_DIR = Path("/var/run/secrets-store-csi-providers")
DEFAULT_NAME = "strongroom"
DEFAULT_FILE_MODE = 0o644
MAX_RESPONSE_BYTES = 4 * 1024 * 1024  # the driver's default --max-call-recv-msg-size
FETCH_CONCURRENCY = 4  # objects of one mount fetched side by side (connections to the vault at most)
MOUNT_METHOD = "/v1alpha1.CSIDriverProvider/Mount"
VERSION_METHOD = "/v1alpha1.CSIDriverProvider/Version"


@dataclass(frozen=True)
class ProviderConfig:
    """What the provider flags set; the defaults reach Azure's public cloud."""

    name: str = DEFAULT_NAME
    vault_dns_suffix: str | None = None
    authority_host: str | None = None
    ca_file: str | None = None
    max_response_bytes: int = MAX_RESPONSE_BYTES
    timeout: float = 30.0

    @property
    def default_cloud(self) -> CloudEnvironment:
        return cloud.default_cloud(self.vault_dns_suffix, self.authority_host)


@dataclass(frozen=True)
class File:
    path: str
    mode: int
    contents: bytes = field(repr=False)  # never in a log line


@dataclass(frozen=True)
class ObjectVersion:
    id: str
    version: str


@dataclass
class MountResult:
    files: list[File]
    object_versions: list[ObjectVersion]


@dataclass(frozen=True)
class _Fetched:
    """One object's files fetched before its first error (if any)."""

    done: list[tuple[_Resolved, bytes, str]]
    error: ProviderError | None


@dataclass(frozen=True)
class _Resolved:
    """One file to produce: an object at a concrete (or latest) version."""

    obj: KeyVaultObject
    path: str
    version: str
    uid: str


class Provider:
    """One per process: holds the HTTP client, the challenge cache and the metrics labels."""

    def __init__(self, config: ProviderConfig | None = None) -> None:
        self.config = config or ProviderConfig()
        self.http = httpx.Client(verify=http_verify(self.config.ca_file), timeout=httpx.Timeout(self.config.timeout, connect=10.0))
        self.challenges = ChallengeCache()
        self.metrics = Reporter(self.config.name)

    def close(self) -> None:
        self.http.close()

    # -- the mount ---------------------------------------------------------------

    def mount(
        self,
        attributes: Mapping[str, str],
        secrets: Mapping[str, str] | None = None,
        permission: int = DEFAULT_FILE_MODE,
        current_object_version: Iterable[ObjectVersion] = (),
    ) -> MountResult:
        """Fetch and render every object the attributes name. Raises ProviderError."""
        started = time.monotonic()
        params = parse_parameters(attributes)
        try:
            env = cloud.resolve(params.cloud_name, params.cloud_env_file, self.config.default_cloud)
        except cloud.CloudError as exc:
            raise SPCError(str(exc)) from None
        credential = credentials.for_mount(params, secrets or {}, env, self.http)
        vault_url = env.vault_url(params.keyvault_name)
        client = KeyVaultClient(self.http, vault_url, credential, env.key_vault_endpoint, self.challenges)
        budget = _Budget(self.config.max_response_bytes)
        result = MountResult([], [])
        fetches = self._fetch_all(client, params.objects, credential.describe())
        try:
            for fetched in fetches:
                for item, contents, version in fetched.done:
                    mode = item.obj.mode(permission)
                    budget.add(item, contents, version)
                    result.files.append(File(item.path, mode, contents))
                    result.object_versions.append(ObjectVersion(item.uid, version))
                if fetched.error is not None:
                    raise fetched.error
        finally:
            fetches.close()  # at an error: cancel the fetches not yet started, now (not when the traceback goes)
        log.info(
            "mounted %d file(s) from %s for pod %s/%s in %.0f ms",
            len(result.files), vault_url, params.pod_namespace, params.pod_name, (time.monotonic() - started) * 1000,
        )
        return result

    def _fetch_all(self, client: KeyVaultClient, objects: list[KeyVaultObject], via: str) -> Generator[_Fetched, None, None]:
        """Each object's files, in the objects' order, as if fetched one after the other.

        The first object goes alone: it learns the vault's challenge and gets the token
        the others reuse, and if it fails (no access, say) nothing else is asked. The rest
        are fetched side by side over the one keep-alive client (a mount of 10 secrets
        waited for 10 round trips in a row). The caller raises each object's error when it
        reaches it, so the error and the size check fire where the sequential loop had them.
        """
        if not objects:
            return
        yield self._fetch_object(client, objects[0], via)
        rest = objects[1:]
        if len(rest) < 2:
            for obj in rest:
                yield self._fetch_object(client, obj, via)
            return
        # A pool per mount: a mount of many objects must not queue every other pod's mount behind it.
        pool = futures.ThreadPoolExecutor(max_workers=min(FETCH_CONCURRENCY, len(rest)), thread_name_prefix="vault-fetch")
        pending = [pool.submit(self._fetch_object, client, obj, via) for obj in rest]
        try:
            for future in pending:
                yield future.result()
        finally:  # the caller stopped at an error: ask nothing more, and leave nothing running
            pool.shutdown(wait=True, cancel_futures=True)

    def _fetch_object(self, client: KeyVaultClient, obj: KeyVaultObject, via: str) -> _Fetched:
        done: list[tuple[_Resolved, bytes, str]] = []
        try:
            for item in self._resolve(client, obj, via):
                contents, version = self._fetch(client, item, via)
                done.append((item, contents, version))
        except ProviderError as exc:
            return _Fetched(done, exc)
        return _Fetched(done, None)

    def _resolve(self, client: KeyVaultClient, obj: KeyVaultObject, via: str) -> list[_Resolved]:
        """The object itself, or with objectVersionHistory > 1 its newest versions as `<alias>/<index>`."""
        if obj.single_version:
            return [_Resolved(obj, obj.file_name, obj.pinned_version, obj.uid())]
        started = time.monotonic()
        error = ""
        try:
            listed = self._call(client, obj, via, lambda: client.versions(obj.object_type, obj.object_name))
        except ProviderError as exc:
            error = exc.message
            raise
        finally:
            self.metrics.keyvault_request(time.monotonic() - started, obj.object_type, obj.object_name, error)
        versions = sorted((v for v in listed if v.enabled), key=lambda v: v.created, reverse=True)
        start = obj.pinned_version.lower()
        if start:
            index = next((i for i, v in enumerate(versions) if v.version.lower() == start), None)
            if index is None:
                raise ProviderError(
                    NOT_FOUND,
                    f"failed to get {obj.describe()}: version {obj.object_version} is not among the enabled versions "
                    f"of {obj.object_name}. Hint: check objectVersion, or enable that version.",
                )
            versions = versions[index:]
        chosen = versions[: obj.object_version_history]
        return [
            _Resolved(obj, f"{obj.file_name}/{i}", v.version, obj.uid(i)) for i, v in enumerate(chosen)
        ]

    def _fetch(self, client: KeyVaultClient, item: _Resolved, via: str) -> tuple[bytes, str]:
        obj = item.obj
        started = time.monotonic()
        error = ""
        try:
            bundle = self._call(client, obj, via, lambda: client.get_object(obj.object_type, obj.object_name, item.version))
            try:
                if obj.object_type == "secret":
                    contents = render.render_secret(bundle, obj.object_format, obj.object_encoding)
                    version = version_of(str(bundle.get("id") or ""))
                elif obj.object_type == "key":
                    contents = render.render_key(bundle)
                    version = version_of(str((bundle.get("key") or {}).get("kid") or ""))
                else:
                    contents = render.render_certificate(bundle)
                    version = version_of(str(bundle.get("id") or ""))
            except ProviderError as exc:
                raise ProviderError(exc.status, f"failed to get {obj.describe()}: {exc.message}") from None
            return contents, version
        except ProviderError as exc:
            error = exc.message
            raise
        finally:
            self.metrics.keyvault_request(time.monotonic() - started, obj.object_type, obj.object_name, error)

    @staticmethod
    def _call(client: KeyVaultClient, obj: KeyVaultObject, via: str, fn: Any) -> Any:
        try:
            return fn()
        except VaultRequestError as exc:
            raise hints.vault_error(obj.object_type, obj.describe(), client.vault_url, exc.status, exc.body, via) from None
        except VaultUnreachable as exc:
            raise hints.vault_unreachable(obj.describe(), client.vault_url, exc.cause) from None


class _Budget:
    """Stops a mount as soon as its response would exceed what the driver accepts."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def add(self, item: _Resolved, contents: bytes, version: str) -> None:
        f = pb.File(path=item.path, mode=0o777, contents=contents).ByteSize()
        v = pb.ObjectVersion(id=item.uid, version=version).ByteSize()
        self.used += f + v + 2 * 5  # each repeated entry adds a tag and a length prefix (<= 5 bytes)
        if self.used > self.limit:
            raise ProviderError(
                RESOURCE_EXHAUSTED,
                f"the mount response would exceed {self.limit} bytes ({self.limit // (1024 * 1024)} MiB) at "
                f"{item.path} ({len(contents)} bytes); the driver refuses larger responses "
                "(--max-call-recv-msg-size). Hint: mount fewer objects or fewer versions per SecretProviderClass.",
            )


_DEFAULT: Provider | None = None
_DEFAULT_LOCK = threading.Lock()


def mount(
    attributes: Mapping[str, str],
    secrets: Mapping[str, str] | None = None,
    permission: int = DEFAULT_FILE_MODE,
    *,
    config: ProviderConfig | None = None,
    current_object_version: Iterable[ObjectVersion] = (),
) -> MountResult:
    """In-process mount for the agent: the same code the gRPC service runs."""
    global _DEFAULT
    if config is not None:
        provider = Provider(config)
        try:
            return provider.mount(attributes, secrets, permission, current_object_version)
        finally:
            provider.close()
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Provider()
    return _DEFAULT.mount(attributes, secrets, permission, current_object_version)


# -- gRPC ---------------------------------------------------------------------------


def _json_map(text: str, what: str) -> dict[str, str]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        raise ProviderError(INVALID_ARGUMENT, f"failed to unmarshal {what}: not JSON") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ProviderError(INVALID_ARGUMENT, f"failed to unmarshal {what}: expected a JSON object of strings")
    return data


def _permission(text: str) -> int:
    if not text:
        return DEFAULT_FILE_MODE
    try:
        mode = json.loads(text)
    except ValueError:
        mode = None
    if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o777:
        raise ProviderError(INVALID_ARGUMENT, f"failed to unmarshal file permission {text!r}: expected a number 0..511")
    return mode


class Servicer(pb_grpc.CSIDriverProviderServicer):
    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def Version(self, request: pb.VersionRequest, context: grpc.ServicerContext) -> pb.VersionResponse:  # noqa: N802
        started = time.monotonic()
        response = pb.VersionResponse(version=API_VERSION, runtime_name=RUNTIME_NAME, runtime_version=__version__)
        self.provider.metrics.grpc_request(time.monotonic() - started, VERSION_METHOD, "OK")
        return response

    def Mount(self, request: pb.MountRequest, context: grpc.ServicerContext) -> pb.MountResponse:  # noqa: N802
        started = time.monotonic()
        try:
            result = self.provider.mount(
                _json_map(request.attributes, "attributes"),
                _json_map(request.secrets, "secrets"),
                _permission(request.permission),
                [ObjectVersion(v.id, v.version) for v in request.current_object_version],
            )
            response = pb.MountResponse(
                object_version=[pb.ObjectVersion(id=v.id, version=v.version) for v in result.object_versions],
                files=[pb.File(path=f.path, mode=f.mode, contents=f.contents) for f in result.files],
            )
            size = response.ByteSize()
            if size > self.provider.config.max_response_bytes:
                raise ProviderError(
                    RESOURCE_EXHAUSTED,
                    f"the mount response is {size} bytes, over the driver's limit of "
                    f"{self.provider.config.max_response_bytes} bytes. Hint: mount fewer objects per SecretProviderClass.",
                )
        except ProviderError as exc:
            log.warning("mount failed: %s", exc.message)
            self.provider.metrics.grpc_request(time.monotonic() - started, MOUNT_METHOD, exc.status, exc.message)
            context.abort(getattr(grpc.StatusCode, exc.status), exc.message)
        except Exception:  # a bug: say so without a stack trace on the wire
            log.exception("mount failed unexpectedly")
            message = "internal error in the provider; see its log"
            self.provider.metrics.grpc_request(time.monotonic() - started, MOUNT_METHOD, INTERNAL, message)
            context.abort(grpc.StatusCode.INTERNAL, message)
        self.provider.metrics.grpc_request(time.monotonic() - started, MOUNT_METHOD, "OK")
        return response


class SocketInUse(RuntimeError):
    pass


def _clear_stale_socket(path: Path) -> None:
    """Remove a socket left by a provider that died; refuse to touch anything else."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise SocketInUse(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError:
        path.unlink(missing_ok=True)  # nobody listens: stale
        return
    finally:
        probe.close()
    raise SocketInUse(f"another process is serving on {path}")


@dataclass
class ProviderServer:
    socket_path: Path
    provider: Provider
    grpc_server: grpc.Server
    metrics_server: MetricsServer | None = None

    def stop(self, grace: float | None = 5.0) -> None:
        self.grpc_server.stop(grace).wait()
        if self.metrics_server:
            self.metrics_server.stop()
        self.provider.close()
        try:
            if stat.S_ISSOCK(self.socket_path.lstat().st_mode):
                self.socket_path.unlink()
        except FileNotFoundError:
            pass

    def wait(self) -> None:
        self.grpc_server.wait_for_termination()


def serve(
    socket_path: str | Path,
    config: ProviderConfig | None = None,
    *,
    metrics_addr: str | None = None,
    max_workers: int = 8,
) -> ProviderServer:
    """Start the gRPC service on a unix socket (created under umask 0077) and return at once."""
    path = Path(socket_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise SocketInUse(f"cannot create {path}: {path.parent} is not a directory") from None
    _clear_stale_socket(path)
    provider = Provider(config)
    metrics_server = MetricsServer(metrics_addr).start() if metrics_addr else None
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="provider"),
        options=[("grpc.max_send_message_length", provider.config.max_response_bytes + 1024)],
    )
    pb_grpc.add_CSIDriverProviderServicer_to_server(Servicer(provider), server)
    # Only the driver (root on the node) may talk to us: the socket's mode is the only guard.
    old = os.umask(0o077)
    try:
        try:
            bound = server.add_insecure_port(f"unix:{path}")
        except RuntimeError as exc:  # newer grpcio raises instead of returning 0
            raise SocketInUse(f"cannot listen on {path}: {exc}") from None
        if bound == 0:
            raise SocketInUse(f"cannot listen on {path}")
        server.start()
    finally:
        os.umask(old)
    log.info("provider %s serving v1alpha1.CSIDriverProvider on %s", provider.config.name, path)
    return ProviderServer(path, provider, server, metrics_server)

