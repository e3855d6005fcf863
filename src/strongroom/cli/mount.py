"""`strongroom mount`: what the Secrets Store CSI Driver and kubelet do for a pod, on a machine without Kubernetes.

It reads a SecretProviderClass file, gets a pod-bound token for the service
account from the local cluster (the TokenRequest API behind `strongroom cluster
token`: the admin's credentials from the state dir, or a principal with the
"Strongroom Node Agent" role through AZURE_CLIENT_ID/AZURE_CLIENT_SECRET) or
reads the token file it is given (`--token-file`, as kubelet projects one), builds the driver's attributes,
calls the provider (in this process, or `--provider-socket`) and writes the
files with Kubernetes' atomic writer. `--watch` keeps them current: pushed by
the vault's change feed, polled every `--rotation-poll-interval` as a fallback.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer

from strongroom.cli.client import CLIError, Client, state_dir_default
from strongroom.cli.common import ServerOpt, StateDirOpt

log = logging.getLogger("strongroom.agent")

_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
TOKEN_SECONDS = 3600
IN_PROCESS_PROVIDERS = ("azure", "strongroom")  # SecretProviderClasses the built-in provider reads


def parse_go_duration(value: str, flag: str) -> float:
    """`2m`, `30s`, `1h30m`, `500ms` (Go's time.ParseDuration, as the driver's flag takes it) -> seconds."""
    text = value.strip()
    pos, total = 0, 0.0
    for m in _GO_DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise CLIError(f"{flag}: '{value}' is not a duration such as 2m, 30s, 1h30m or 500ms", "InvalidArgumentValue")
    if total <= 0:
        raise CLIError(f"{flag}: the duration must be above zero", "InvalidArgumentValue")
    return total


def default_pod_name() -> str:
    """This machine's host name as a Kubernetes name (lowercase RFC 1123 label)."""
    name = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().split(".")[0].lower()).strip("-")
    return (name or "agent")[:63].strip("-")


class ClusterTokens:
    """TokenSource backed by the local cluster's TokenRequest API, through the CLI's client."""

    def __init__(self, state_dir: Path | None, server: str | None) -> None:
        self.state_dir = state_dir
        self.server = server
        self._client: Client | None = None

    def client(self) -> Client:
        """The CLI's client for the local server; the agent's metadata lookup shares it (one TLS set-up, not two)."""
        if self._client is None:
            self._client = Client(self.state_dir, self.server)
        return self._client

    def _request(self, namespace: str, service_account: str, audience: str, pod_name: str) -> dict[str, Any]:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience],
                "expirationSeconds": TOKEN_SECONDS,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod_name},
            },
        }
        path = f"/clusters/local/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
        return self.client().cluster("POST", path, json=body)

    def token(self, namespace: str, service_account: str, audience: str, pod_name: str):  # -> ServiceAccountToken
        from strongroom.agent.tokens import ServiceAccountToken, TokenRequestError

        for attempt in (1, 2):
            try:
                status = self._request(namespace, service_account, audience, pod_name)["status"]
                return ServiceAccountToken(status["token"], status["expirationTimestamp"])
            except httpx.HTTPError as exc:
                self._client = None
                where = self.server or "the server in the state dir's admin.json"
                raise TokenRequestError(f"cannot reach the cluster's token API at {where}: {exc}", True) from None
            except CLIError as exc:
                self._client = None  # a fresh client next time: its cached admin token may have expired
                if exc.code == "ServiceUnavailable":
                    raise TokenRequestError(exc.message, True) from None
                if attempt == 2:
                    hint = ""
                    if exc.code == "NotFound":
                        hint = (f". Hint: create it with `strongroom cluster serviceaccount create --namespace {namespace} "
                                f"--name {service_account}`")
                    raise TokenRequestError(f"{exc.message}{hint}", False) from None
        raise AssertionError("unreachable")


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


def provider_config(opts: AgentOptions, tokens: ClusterTokens | None = None):  # -> ProviderConfig
    """The provider flags; by default the local server's vault DNS suffix, authority and CA (asked through `tokens`' client)."""
    from strongroom.csi.provider import ProviderConfig

    state_dir = opts.state_dir or state_dir_default()
    ca = opts.ca_file or (Path(os.environ["STRONGROOM_CA_FILE"]) if os.environ.get("STRONGROOM_CA_FILE") else None)
    if ca is None and (state_dir / "ca.pem").exists():
        ca = state_dir / "ca.pem"
    if ca is not None and not ca.is_file():
        raise CLIError(f"--ca-file {ca}: no such file", "InvalidArgumentValue")
    suffix, authority = opts.vault_dns_suffix, opts.authority_host
    if not (suffix and authority):
        try:
            meta = (tokens or ClusterTokens(opts.state_dir, opts.server)).client().metadata()
        except CLIError as exc:
            raise CLIError(
                f"{exc.message}. The vault DNS suffix and authority come from the server; pass --vault-dns-suffix and "
                "--authority-host to mount without asking it.", exc.code,
            ) from None
        netloc = urlsplit(meta["vaultUrlTemplate"].replace("{name}", "x")).netloc
        suffix = suffix or netloc.split(".", 1)[1]
        authority = authority or meta["authority"]
    return ProviderConfig(vault_dns_suffix=suffix, authority_host=authority, ca_file=str(ca) if ca else None)


def build_mounter(
    opts: AgentOptions, target: Path, status_file: Path | None, *, file_mode: str = "0600", allow_shared_target: bool = False
):  # -> (Mounter, ProviderConfig)
    from strongroom.agent.attributes import Pod
    from strongroom.agent.atomic_writer import WriteError, check_target_path
    from strongroom.agent.mounter import MountConfig, Mounter, parse_file_mode
    from strongroom.agent.providers import InProcessProvider, SocketProvider
    from strongroom.csi.spc import SPCError, load_spc

    try:
        spc = load_spc(opts.spc)
        spc.objects()  # refuse a bad objects parameter before anything else
    except SPCError as exc:
        raise CLIError(str(exc), "InvalidSecretProviderClass") from None
    declared = _declared_namespace(opts.spc)
    if declared and declared != opts.namespace:
        raise CLIError(
            f"SecretProviderClass {spc.name} is in namespace {declared}, not {opts.namespace}: the driver looks it up in "
            "the pod's namespace", "SecretProviderClassNotFound",
        )
    if not opts.provider_socket and spc.provider not in IN_PROCESS_PROVIDERS:
        raise CLIError(
            f"SecretProviderClass {spc.name} is for provider {spc.provider!r}; the provider in this process serves "
            f"{' and '.join(IN_PROCESS_PROVIDERS)} classes. Hint: run that provider and pass its socket with --provider-socket.",
            "FailedToLookupProviderGRPCClient",
        )
    try:
        permission = parse_file_mode(file_mode)
        check_target_path(target)
    except ValueError as exc:
        raise CLIError(str(exc), "InvalidArgumentValue") from None
    except WriteError as exc:
        raise CLIError(str(exc), "FileWriteError") from None
    cluster_tokens = ClusterTokens(opts.state_dir, opts.server)
    config = provider_config(opts, cluster_tokens)
    tokens: Any = cluster_tokens
    if opts.token_file is not None:
        from strongroom.agent.tokens import FileTokens

        tokens = FileTokens(opts.token_file)
    provider = SocketProvider(opts.provider_socket) if opts.provider_socket else InProcessProvider(config)
    pod = Pod(opts.pod_name or default_pod_name(), opts.namespace, opts.service_account)
    mount_config = MountConfig(
        spc=spc, pod=pod, target=target.resolve(), node_name=socket.gethostname(), status_file=status_file,
        permission=permission, allow_shared_target=allow_shared_target,
    )
    return Mounter(mount_config, tokens, provider), config


def _declared_namespace(path: Path) -> str | None:
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


def start_feed(mounter, rotator, config, stop: threading.Event):  # -> FeedClient
    """Subscribe to the vault's change feed with the pod's own identity (see agent/feed_client.py)."""
    from strongroom.agent.feed_client import FeedClient, FeedTarget
    from strongroom.csi.transport import http_verify

    http = httpx.Client(verify=http_verify(config.ca_file), timeout=httpx.Timeout(30.0, connect=10.0))

    def target() -> FeedTarget:
        return FeedTarget(mounter.attributes(), mounter.config.secrets, config, http)

    names = [o.object_name for o in mounter.objects]
    feed = FeedClient(target, names, http, rotator.on_feed_event, lambda: rotator.trigger("feed connected"), stop)
    rotator.attach_feed(feed)
    return feed.start()


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the agent's own
    if logging.getLogger().level >= logging.INFO:
        logging.getLogger("strongroom.csi").setLevel(logging.WARNING)  # the agent logs each change itself


def stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


SpcOpt = Annotated[Path, typer.Option("--spc", help="SecretProviderClass manifest (YAML), as applied to a cluster.")]
NamespaceOpt = Annotated[str, typer.Option("--namespace", help="The pod's namespace (the SPC's namespace).")]
ServiceAccountOpt = Annotated[str, typer.Option("--service-account", help="The pod's service account.")]
PodNameOpt = Annotated[str | None, typer.Option("--pod-name", help="Pod name for the token and status (default: host name).")]
PollOpt = Annotated[
    str, typer.Option("--rotation-poll-interval", help="Poll the vault this often as a fallback to the change feed (Go duration).")
]
SocketOpt = Annotated[
    Path | None, typer.Option("--provider-socket", help="Call a running provider on this unix socket instead of in process.")
]
SuffixOpt = Annotated[
    str | None,
    typer.Option("--vault-dns-suffix", envvar="STRONGROOM_VAULT_DNS_SUFFIX",
                 help="Vaults are https://<keyvaultName>.<suffix>/ (default: the local server's, e.g. vault.localhost:8443)."),
]
AuthorityOpt = Annotated[
    str | None, typer.Option("--authority-host", envvar="AZURE_AUTHORITY_HOST", help="Token authority (default: the local server).")
]
CAOpt = Annotated[Path | None, typer.Option("--ca-file", help="Extra CA to trust (default: the state dir's ca.pem).")]
MetricsOpt = Annotated[str | None, typer.Option("--metrics-addr", help="Serve the driver's Prometheus metrics here, e.g. :8095.")]
LogLevelOpt = Annotated[str, typer.Option("--log-level")]
TokenFileOpt = Annotated[
    Path | None,
    typer.Option("--token-file", envvar="STRONGROOM_TOKEN_FILE",
                 help="Use the service-account token in this file (kept fresh by someone else, as kubelet's projected "
                      "token is) instead of asking the cluster's TokenRequest API; needs no credentials."),
]


def mount(
    spc: SpcOpt,
    namespace: NamespaceOpt,
    service_account: ServiceAccountOpt,
    target: Annotated[Path, typer.Option("--target", help="Directory to write the files into (created if missing).")],
    pod_name: PodNameOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Mount once and exit (the default).")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Keep the files current until SIGTERM or SIGINT.")] = False,
    rotation_poll_interval: PollOpt = "2m",
    provider_socket: SocketOpt = None,
    vault_dns_suffix: SuffixOpt = None,
    authority_host: AuthorityOpt = None,
    ca_file: CAOpt = None,
    status_file: Annotated[
        Path | None, typer.Option("--status-file", help="Where to write the SecretProviderClassPodStatus (default <target>/..status.json).")
    ] = None,
    metrics_addr: MetricsOpt = None,
    log_level: LogLevelOpt = "info",
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    file_mode: Annotated[
        str, typer.Option("--file-mode", help="Octal mode of the mounted files; directories get the matching one (0600 -> 0700).")
    ] = "0600",
    allow_shared_target: Annotated[
        bool, typer.Option("--allow-shared-target", help="Write into a target another user owns or others may write, on purpose.")
    ] = False,
    token_file: TokenFileOpt = None,
) -> None:
    """Mount a SecretProviderClass's objects into a directory, as the CSI driver mounts them into a pod."""
    from strongroom.agent.metrics import serve_metrics
    from strongroom.agent.mounter import MountError
    from strongroom.agent.resolve import resolve_localhost_names
    from strongroom.agent.rotation import Rotator

    if once and watch:
        raise CLIError("use either --once or --watch", "InvalidArgumentValue")
    setup_logging(log_level)
    resolve_localhost_names()
    opts = AgentOptions(spc, namespace, service_account, pod_name, provider_socket, vault_dns_suffix, authority_host,
                        ca_file, state_dir, server, parse_go_duration(rotation_poll_interval, "--rotation-poll-interval"),
                        token_file)
    mounter, config = build_mounter(opts, target, status_file, file_mode=file_mode, allow_shared_target=allow_shared_target)
    if metrics_addr:
        try:
            _, port = serve_metrics(metrics_addr)
        except (OSError, ValueError) as exc:
            raise CLIError(f"--metrics-addr {metrics_addr}: {exc}", "InvalidArgumentValue") from None
        log.info("metrics on port %d", port)
    if not watch:
        try:
            mounter.mount()
        except MountError as exc:
            raise CLIError(exc.message, exc.error_type) from None
        finally:
            mounter.provider.close()
        return
    stop = threading.Event()
    stop_on_signals(stop)
    rotator = Rotator(mounter, opts.poll_interval, stop)
    try:
        mounter.mount()
    except MountError as exc:
        if not exc.retryable:
            raise CLIError(exc.message, exc.error_type) from None
        log.warning("mount failed: %s; retrying with backoff", exc.message)
        if rotator.mount_until_success() is None:
            return
    start_feed(mounter, rotator, config, stop)
    worker = threading.Thread(target=rotator.run, name="rotation", daemon=True)
    worker.start()
    while not stop.wait(1.0):
        pass
    rotator.wake_for_stop()
    worker.join(timeout=30)
    mounter.provider.close()
    log.info("stopped; %s keeps the last mounted files", mounter.config.target)
