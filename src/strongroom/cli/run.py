"""`strongroom run`: mount a SecretProviderClass privately and run a command with its secrets in the environment.

See agent/supervisor.py for what the child gets, how signals and exit codes pass
through, and what happens on rotation.
"""

from __future__ import annotations

from typing import Annotated

import typer

from strongroom.cli.client import CLIError
from strongroom.cli.common import ServerOpt, StateDirOpt
from strongroom.cli.mount import (
    AuthorityOpt,
    CAOpt,
    LogLevelOpt,
    MetricsOpt,
    NamespaceOpt,
    PodNameOpt,
    PollOpt,
    ServiceAccountOpt,
    SocketOpt,
    SpcOpt,
    SuffixOpt,
    TokenFileOpt,
    agent_errors,
    parse_go_duration,
)


def run(
    command: Annotated[list[str], typer.Argument(help="The command and its arguments, after `--`.", metavar="-- CMD [ARGS]...")],
    spc: SpcOpt,
    namespace: NamespaceOpt,
    service_account: ServiceAccountOpt,
    on_rotation: Annotated[
        str, typer.Option("--on-rotation", help="restart (default), signal:NAME (e.g. signal:HUP) or none.")
    ] = "restart",
    env: Annotated[
        list[str] | None, typer.Option("--env", help="NAME=objectAlias: one more variable from a mounted file (repeatable).")
    ] = None,
    grace_period: Annotated[
        str, typer.Option("--grace-period", help="How long a restart waits after SIGTERM before SIGKILL.")
    ] = "10s",
    pod_name: PodNameOpt = None,
    rotation_poll_interval: PollOpt = "2m",
    provider_socket: SocketOpt = None,
    vault_dns_suffix: SuffixOpt = None,
    authority_host: AuthorityOpt = None,
    ca_file: CAOpt = None,
    metrics_addr: MetricsOpt = None,
    log_level: LogLevelOpt = "info",
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Run CMD with the SecretProviderClass's secrets as environment variables; restart or signal it on rotation."""
    from strongroom.agent.assembly import AgentOptions, run_command, setup_logging
    from strongroom.agent.supervisor import OnRotation, parse_env_flags

    if not command:
        raise CLIError("give the command to run after `--`, e.g. strongroom run --spc spc.yaml ... -- ./server", "InvalidArgumentValue")
    try:
        mode = OnRotation.parse(on_rotation)
        extra = parse_env_flags(env or [])
    except ValueError as exc:
        raise CLIError(str(exc), "InvalidArgumentValue") from None
    grace = parse_go_duration(grace_period, "--grace-period")
    setup_logging(log_level)
    opts = AgentOptions(spc, namespace, service_account, pod_name, provider_socket, vault_dns_suffix, authority_host,
                        ca_file, state_dir, server, parse_go_duration(rotation_poll_interval, "--rotation-poll-interval"),
                        token_file, metrics_addr)
    with agent_errors():
        code = run_command(opts, command, mode, extra, grace)
    raise typer.Exit(code)
