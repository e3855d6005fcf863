"""The agent put together: from the command's options to a running mount (`mount`) or a supervised command (`run`).

The CLI parses flags into `AgentOptions` and calls `mount_once`, `keep_mounted`
or `run_command`; everything after that happens here: which token source
(the local cluster's TokenRequest API, or `--token-file`), the provider's
configuration (flags, else the local server's metadata and CA), the checks made
before anything is written (the SecretProviderClass, its namespace and provider,
the target), the first mount and its one retry loop (`Rotator.mount_until_success`),
the change-feed subscription and the rotation thread. Mistakes come back as
`AgentError` with the driver's error type as code, which the CLI prints.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # the heavy parts load when a command runs, not for `--help`
    from strongroom.agent.feed_client import FeedClient
    from strongroom.agent.local_cluster import ClusterTokens
    from strongroom.agent.mounter import Mounter
    from strongroom.agent.rotation import Rotator
    from strongroom.agent.supervisor import OnRotation
    from strongroom.csi.provider import ProviderConfig

from strongroom.agent.resolve import resolve_localhost_names

log = logging.getLogger("strongroom.agent")

IN_PROCESS_PROVIDERS = ("azure", "strongroom")  # SecretProviderClasses the built-in provider reads


class AgentError(Exception):
    """The agent cannot start or mount: `message` says what to change, `code` is the driver's error type."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class AgentOptions:
    spc: Path
    namespace: str
    service_account: str
    pod_name: str | None
    provider_socket: Path | None
    vault_dns_suffix: str | None
    authority_host: str | None
    ca_file: Path | None
    state_dir: Path | None
    server: str | None
    poll_interval: float
    token_file: Path | None = None  # a token someone else keeps fresh (kubelet-style): no credentials needed
    metrics_addr: str | None = None


@dataclass
class Agent:
    """One SecretProviderClass mounted for one pod."""

    mounter: Mounter
    config: ProviderConfig  # what the provider was configured with; the feed authenticates the same way


def default_pod_name() -> str:
    """This machine's host name as a Kubernetes name (lowercase RFC 1123 label)."""
    name = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().split(".")[0].lower()).strip("-")
    return (name or "agent")[:63].strip("-")


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the agent's own
    if logging.getLogger().level >= logging.INFO:
        logging.getLogger("strongroom.csi").setLevel(logging.WARNING)  # the agent logs each change itself


def serve_metrics(addr: str | None) -> None:
    """`--metrics-addr`: the driver's Prometheus metrics (a thread: in `run`, start it after the signals are set)."""
    if not addr:
        return
    from strongroom.agent.metrics import serve_metrics as serve

    try:
        _, port = serve(addr)
    except (OSError, ValueError) as exc:
        raise AgentError(f"--metrics-addr {addr}: {exc}", "InvalidArgumentValue") from None
    log.info("metrics on port %d", port)


# -- assembly -------------------------------------------------------------------------------


def provider_config(opts: AgentOptions, tokens: ClusterTokens | None = None) -> ProviderConfig:
    """The provider flags; by default the local server's vault DNS suffix, authority and CA.

    The server is asked through `tokens`' connection (one TLS set-up for the metadata and the tokens).
    """
    from strongroom.agent.local_cluster import ClusterAPIError, ClusterTokens, state_dir_default
    from strongroom.csi.provider import ProviderConfig

    state_dir = opts.state_dir or state_dir_default()
    ca = opts.ca_file or (Path(os.environ["STRONGROOM_CA_FILE"]) if os.environ.get("STRONGROOM_CA_FILE") else None)
    if ca is None and (state_dir / "ca.pem").exists():
        ca = state_dir / "ca.pem"
    if ca is not None and not ca.is_file():
        raise AgentError(f"--ca-file {ca}: no such file", "InvalidArgumentValue")
    suffix, authority = opts.vault_dns_suffix, opts.authority_host
    if not (suffix and authority):
        try:
            meta = (tokens or ClusterTokens(opts.state_dir, opts.server)).cluster().metadata()
        except ClusterAPIError as exc:
            raise AgentError(
                f"{exc.message}. The vault DNS suffix and authority come from the server; pass --vault-dns-suffix and "
                "--authority-host to mount without asking it.", exc.code,
            ) from None
        netloc = urlsplit(meta["vaultUrlTemplate"].replace("{name}", "x")).netloc
        suffix = suffix or netloc.split(".", 1)[1]
        authority = authority or meta["authority"]
    return ProviderConfig(vault_dns_suffix=suffix, authority_host=authority, ca_file=str(ca) if ca else None)


def assemble(
    opts: AgentOptions, target: Path, status_file: Path | None = None, *, file_mode: str = "0600",
    allow_shared_target: bool = False,
) -> Agent:
    """Check everything that can be checked before the first mount, then wire the parts. Raises AgentError."""
    from strongroom.agent.atomic_writer import WriteError, check_target_path
    from strongroom.agent.attributes import Pod
    from strongroom.agent.local_cluster import ClusterTokens
    from strongroom.agent.mounter import MountConfig, Mounter, parse_file_mode
    from strongroom.agent.providers import InProcessProvider, ProviderClient, SocketProvider
    from strongroom.agent.tokens import FileTokens, TokenSource
    from strongroom.csi.spc import SPCError, load_spc

    try:
        spc = load_spc(opts.spc)
        spc.objects()  # refuse a bad objects parameter before anything else
    except SPCError as exc:
        raise AgentError(str(exc), "InvalidSecretProviderClass") from None
    declared = declared_namespace(opts.spc)
    if declared and declared != opts.namespace:
        raise AgentError(
            f"SecretProviderClass {spc.name} is in namespace {declared}, not {opts.namespace}: "
            "the driver looks it up in the pod's namespace", "SecretProviderClassNotFound",
        )
    if not opts.provider_socket and spc.provider not in IN_PROCESS_PROVIDERS:
        raise AgentError(
            f"SecretProviderClass {spc.name} is for provider {spc.provider!r}; the provider in this process serves "
            f"{' and '.join(IN_PROCESS_PROVIDERS)} classes. "
            "Hint: run that provider and pass its socket with --provider-socket.",
            "FailedToLookupProviderGRPCClient",
        )
    try:
        permission = parse_file_mode(file_mode)
        check_target_path(target)
    except ValueError as exc:
        raise AgentError(str(exc), "InvalidArgumentValue") from None
    except WriteError as exc:
        raise AgentError(str(exc), "FileWriteError") from None
    cluster_tokens = ClusterTokens(opts.state_dir, opts.server)
    config = provider_config(opts, cluster_tokens)
    tokens: TokenSource = FileTokens(opts.token_file) if opts.token_file is not None else cluster_tokens
    provider: ProviderClient = (
        SocketProvider(opts.provider_socket) if opts.provider_socket else InProcessProvider(config)
    )
    pod = Pod(opts.pod_name or default_pod_name(), opts.namespace, opts.service_account)
    mount_config = MountConfig(
        spc=spc, pod=pod, target=target.resolve(), node_name=socket.gethostname(), status_file=status_file,
        permission=permission, allow_shared_target=allow_shared_target,
    )
    return Agent(Mounter(mount_config, tokens, provider), config)


def declared_namespace(path: Path) -> str | None:
    """The namespace the SecretProviderClass manifest names, if any."""
    import yaml

    from strongroom.csi.spc import load_documents

    try:
        for doc in load_documents(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "SecretProviderClass":
                ns = (doc.get("metadata") or {}).get("namespace")
                return str(ns) if ns else None
    except (OSError, yaml.YAMLError):
        return None
    return None


def start_feed(agent: Agent, rotator: Rotator, stop: threading.Event) -> FeedClient:
    """Subscribe to the vault's change feed with the pod's own identity (see feed_client.py)."""
    import httpx

    from strongroom.agent.feed_client import FeedClient, FeedTarget
    from strongroom.csi.transport import http_verify

    mounter, config = agent.mounter, agent.config
    http = httpx.Client(verify=http_verify(config.ca_file), timeout=httpx.Timeout(30.0, connect=10.0))

    def target() -> FeedTarget:
        return FeedTarget(mounter.attributes(), mounter.config.secrets, config, http)

    names = [o.object_name for o in mounter.objects]
    feed = FeedClient(target, names, http, rotator.on_feed_event, lambda: rotator.trigger("feed connected"), stop)
    rotator.attach_feed(feed)
    return feed.start()


# -- the commands ---------------------------------------------------------------------------


def mount_command(
    opts: AgentOptions, target: Path, status_file: Path | None, *, watch: bool, file_mode: str = "0600",
    allow_shared_target: bool = False,
) -> None:
    """`mount`: once (the default), or `--watch` until SIGTERM or SIGINT."""
    resolve_localhost_names()
    agent = assemble(opts, target, status_file, file_mode=file_mode, allow_shared_target=allow_shared_target)
    serve_metrics(opts.metrics_addr)
    if not watch:
        mount_once(agent)
        return
    stop = threading.Event()
    stop_on_signals(stop)
    keep_mounted(agent, opts.poll_interval, stop)


def mount_once(agent: Agent) -> None:
    """`mount` (`--once`): one mount; a failure is the command's error."""
    from strongroom.agent.mounter import MountError

    try:
        agent.mounter.mount()
    except MountError as exc:
        raise AgentError(exc.message, exc.error_type) from None
    finally:
        agent.mounter.provider.close()


def keep_mounted(agent: Agent, poll_interval: float, stop: threading.Event) -> None:
    """`mount --watch`: mount (retrying while the vault is away), then keep the files current until `stop`."""
    from strongroom.agent.mounter import MountError
    from strongroom.agent.rotation import Rotator

    rotator = Rotator(agent.mounter, poll_interval, stop)
    try:
        try:
            outcome = rotator.mount_until_success(retry_permanent=True)
        except MountError as exc:
            raise AgentError(exc.message, exc.error_type) from None
        if outcome is None:
            return
        start_feed(agent, rotator, stop)
        worker = threading.Thread(target=rotator.run, name="rotation", daemon=True)
        worker.start()
        while not stop.wait(1.0):
            pass
        rotator.wake_for_stop()
        worker.join(timeout=30)
    finally:
        agent.mounter.provider.close()
    log.info("stopped; %s keeps the last mounted files", agent.mounter.config.target)


def stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def run_command(
    opts: AgentOptions, command: list[str], on_rotation: OnRotation, extra_env: list[tuple[str, str]], grace: float
) -> int:
    """`run`: mount into a private directory, run `command` with the secrets in its environment; its exit code."""
    from strongroom.agent.mounter import MountError
    from strongroom.agent.rotation import Rotator
    from strongroom.agent.supervisor import RunError, Supervisor, environment, private_dir, remove_private_dir

    resolve_localhost_names()
    rotations: queue.Queue[object] = queue.Queue()
    mount_dir = private_dir()
    stop = threading.Event()
    worker: threading.Thread | None = None
    agent: Agent | None = None
    rotator: Rotator | None = None
    try:
        agent = assemble(opts, mount_dir)
        spc = agent.mounter.config.spc
        supervisor = Supervisor(command, lambda: environment(mount_dir, spc, extra_env), on_rotation, grace, rotations)
        supervisor.install_signals()  # before any thread starts, so every thread has these signals blocked
        serve_metrics(opts.metrics_addr)
        rotator = Rotator(agent.mounter, opts.poll_interval, stop, on_rotated=rotations.put)
        stopped_by: list[int] = []

        def wait(seconds: float) -> bool:
            signum = supervisor.wait_for_stop(seconds)
            if signum is not None:
                stopped_by.append(signum)
            return signum is not None

        try:
            outcome = rotator.mount_until_success(wait, retry_permanent=False)
        except MountError as exc:
            raise AgentError(exc.message, exc.error_type) from None
        if outcome is None:
            return 128 + (stopped_by[0] if stopped_by else signal.SIGTERM)  # stopped while waiting to retry
        start_feed(agent, rotator, stop)
        worker = threading.Thread(target=rotator.run, name="rotation", daemon=True)
        worker.start()
        try:
            code = supervisor.run()
        except RunError as exc:
            raise AgentError(str(exc), "CommandFailed") from None
        log.info("%s exited with %d", command[0], code)
        return code
    finally:
        stop.set()
        if worker is not None and rotator is not None:
            rotator.wake_for_stop()
            worker.join(timeout=10)
        if agent is not None:
            agent.mounter.provider.close()
        remove_private_dir(mount_dir)
