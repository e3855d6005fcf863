"""`strongroom mount`: what the Secrets Store CSI Driver and kubelet do for a pod, on a machine without Kubernetes.

It reads a SecretProviderClass file, gets a pod-bound token for the service
account from the local cluster (the TokenRequest API behind `strongroom cluster
token`: the admin's credentials from the state dir, or a principal with the
"Strongroom Node Agent" role through AZURE_CLIENT_ID/AZURE_CLIENT_SECRET) or
reads the token file it is given (`--token-file`, as kubelet projects one), builds the driver's attributes,
calls the provider (in this process, or `--provider-socket`) and writes the
files with Kubernetes' atomic writer. `--watch` keeps them current: pushed by
the vault's change feed, polled every `--rotation-poll-interval` as a fallback.

This module only parses the flags; the agent is assembled and run by
strongroom.agent.assembly (shared with `strongroom run`, cli/run.py), imported
when the command runs so that `--help` and flag errors stay quick.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.client import CLIError
from strongroom.cli.common import ServerOpt, StateDirOpt

_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


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


@contextmanager
def agent_errors() -> Iterator[None]:
    """The agent's refusals as the CLI's one-line errors (same message, same code)."""
    from strongroom.agent.assembly import AgentError

    try:
        yield
    except AgentError as exc:
        raise CLIError(exc.message, exc.code) from None


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
    from strongroom.agent.assembly import AgentOptions, mount_command, setup_logging  # not for --help: start-up

    if once and watch:
        raise CLIError("use either --once or --watch", "InvalidArgumentValue")
    setup_logging(log_level)
    opts = AgentOptions(spc, namespace, service_account, pod_name, provider_socket, vault_dns_suffix, authority_host,
                        ca_file, state_dir, server, parse_go_duration(rotation_poll_interval, "--rotation-poll-interval"),
                        token_file, metrics_addr)
    with agent_errors():
        mount_command(opts, target, status_file, watch=watch, file_mode=file_mode, allow_shared_target=allow_shared_target)
