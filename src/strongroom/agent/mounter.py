"""One mount, as the driver's NodePublishVolume does it: token, attributes, provider, atomic write, status.

Every mount asks for a fresh service-account token, and the provider exchanges
it for a vault token afresh (it keeps no credential between mounts), so a
federated credential or role removed since the last mount stops the next one.
A failed mount leaves the files of the last good one untouched.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from strongroom.agent import metrics
from strongroom.agent.atomic_writer import AtomicWriter, Payload, WriteError, dir_mode_for
from strongroom.agent.attributes import Pod, driver_attributes, pod_uid
from strongroom.agent.providers import ProviderClient
from strongroom.agent.status import PodStatus, write_status
from strongroom.agent.tokens import WORKLOAD_IDENTITY_AUDIENCE, TokenRequestError, TokenSource
from strongroom.csi.errors import ProviderError
from strongroom.csi.provider import ObjectVersion
from strongroom.csi.spc import KeyVaultObject, SecretProviderClass

log = logging.getLogger("strongroom.agent")

AGENT_FILE_MODE = 0o600  # outside kubelet: only the agent's user reads the files (the CSI path keeps the driver's `permission`)

RETRYABLE_STATUSES = {"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "ABORTED"}


class MountError(Exception):
    """A mount failed. `error_type` is the driver's metric label; `retryable`: the same mount may work later."""

    def __init__(self, message: str, error_type: str, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.retryable = retryable


@dataclass
class MountConfig:
    spc: SecretProviderClass
    pod: Pod
    target: Path
    node_name: str
    status_file: Path | None = None  # default: <target>/..status.json
    permission: int = AGENT_FILE_MODE  # of the files; directories get the matching mode (dir_mode_for)
    allow_shared_target: bool = False  # a target others own or may write, on purpose
    secrets: dict[str, str] = field(default_factory=dict)  # nodePublishSecretRef data, if any

    @property
    def status_path(self) -> Path:
        return self.status_file or self.target / "..status.json"


@dataclass(frozen=True)
class Outcome:
    changed: bool
    versions: list[ObjectVersion]
    seconds: float


class Mounter:
    def __init__(
        self,
        config: MountConfig,
        tokens: TokenSource,
        provider: ProviderClient,
        writer: AtomicWriter | None = None,
    ) -> None:
        self.config = config
        self.tokens = tokens
        self.provider = provider
        self.writer = writer or AtomicWriter(
            config.target, dir_mode=dir_mode_for(config.permission), allow_shared=config.allow_shared_target
        )
        self.reporter = metrics.Reporter(config.spc.provider)
        self.published = False
        self.versions: list[ObjectVersion] = []

    @property
    def objects(self) -> list[KeyVaultObject]:
        return self.config.spc.objects()

    def attributes(self) -> dict[str, str]:
        """The driver's attributes with a freshly requested pod-bound token. Raises MountError."""
        pod = self.config.pod
        try:
            token = self.tokens.token(pod.namespace, pod.service_account, WORKLOAD_IDENTITY_AUDIENCE, pod.name)
        except TokenRequestError as exc:
            raise MountError(
                f"cannot get a token for service account {pod.namespace}/{pod.service_account}: {exc.message}",
                metrics.FAILED_TO_ROTATE if self.published else metrics.FAILED_TO_MOUNT,
                exc.retryable,
            ) from None
        bound = Pod(pod.name, pod.namespace, pod.service_account, pod.uid or pod_uid(token, pod))
        return driver_attributes(self.config.spc, bound, token)

    def mount(self) -> Outcome:
        """Mount once; the first success counts as node publish, later ones as rotation reconciles."""
        started = time.monotonic()
        try:
            outcome = self._mount(started)
        except MountError as exc:
            seconds = time.monotonic() - started
            if self.published:
                self.reporter.rotation_error(seconds, exc.error_type)
            else:
                self.reporter.node_publish_error(exc.error_type)
            raise
        if self.published:
            self.reporter.rotation(outcome.seconds, outcome.changed)
        else:
            self.reporter.node_publish()
            self.published = True
        return outcome

    def _mount(self, started: float) -> Outcome:
        attributes = self.attributes()
        try:
            result = self.provider.mount(attributes, self.config.secrets, self.config.permission)
        except ProviderError as exc:
            raise MountError(exc.message, metrics.GRPC_PROVIDER_ERROR, exc.status in RETRYABLE_STATUSES) from None
        payload = [Payload(f.path, f.mode, f.contents) for f in result.files]
        try:
            changed = self.writer.write(payload)
        except WriteError as exc:
            raise MountError(f"cannot write the files into {self.config.target}: {exc}", metrics.FILE_WRITE_ERROR, True) from None
        versions = sorted(result.object_versions, key=lambda v: v.id)
        if changed or versions != self.versions or not self.config.status_path.exists():
            status = PodStatus(
                pod_name=self.config.pod.name,
                namespace=self.config.pod.namespace,
                spc_name=self.config.spc.name,
                target_path=str(self.config.target),
                node_name=self.config.node_name,
                objects=versions,
            )
            try:
                write_status(self.config.status_path, status, self.config.permission & 0o666)
            except OSError as exc:
                raise MountError(
                    f"cannot write the status file {self.config.status_path}: {exc.strerror}", metrics.FILE_WRITE_ERROR, True
                ) from None
        self.versions = versions
        seconds = time.monotonic() - started
        if changed:
            log.info(
                "mounted %s into %s: %s (%.0f ms)",
                self.config.spc.name, self.config.target,
                ", ".join(f"{v.id}@{v.version[:8]}" for v in versions), seconds * 1000,
            )
        return Outcome(changed, versions, seconds)


def parse_file_mode(text: str) -> int:
    """`--file-mode`: an octal mode such as 0600 or 640; ValueError says what is wrong."""
    try:
        mode = int(text, 8)
    except ValueError:
        raise ValueError(f"--file-mode {text!r} is not an octal mode such as 0600") from None
    if not 0 <= mode <= 0o777:
        raise ValueError(f"--file-mode {text} is not between 0000 and 0777")
    if not mode & 0o400:
        raise ValueError(f"--file-mode {text} would leave the files unreadable by their owner")
    return mode
