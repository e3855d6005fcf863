"""`strongroom run`: mount a SecretProviderClass privately and run a command with its secrets in the environment.

See agent/supervisor.py for what the child gets, how signals and exit codes pass
through, and what happens on rotation.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Annotated

import typer

from strongroom.cli.client import CLIError
from strongroom.cli.common import ServerOpt, StateDirOpt
from strongroom.cli.mount import (
    AgentOptions,
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
    build_mounter,
    parse_go_duration,
    setup_logging,
    start_feed,
)

log = logging.getLogger("strongroom.agent")


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
    from strongroom.agent.metrics import serve_metrics
    from strongroom.agent.mounter import MountError
    from strongroom.agent.resolve import resolve_localhost_names
    from strongroom.agent.rotation import Rotator
    from strongroom.agent.supervisor import (
        OnRotation,
        RunError,
        Supervisor,
        environment,
        parse_env_flags,
        private_dir,
        remove_private_dir,
    )

    if not command:
        raise CLIError("give the command to run after `--`, e.g. strongroom run --spc spc.yaml ... -- ./server", "InvalidArgumentValue")
    try:
        mode = OnRotation.parse(on_rotation)
        extra = parse_env_flags(env or [])
    except ValueError as exc:
        raise CLIError(str(exc), "InvalidArgumentValue") from None
    grace = parse_go_duration(grace_period, "--grace-period")
    setup_logging(log_level)
    resolve_localhost_names()
    opts = AgentOptions(spc, namespace, service_account, pod_name, provider_socket, vault_dns_suffix, authority_host,
                        ca_file, state_dir, server, parse_go_duration(rotation_poll_interval, "--rotation-poll-interval"),
                        token_file)
    rotations: queue.Queue[object] = queue.Queue()
    mount_dir = private_dir()
    stop = threading.Event()
    worker: threading.Thread | None = None
    mounter = None
    try:
        mounter, config = build_mounter(opts, mount_dir, None)
        parsed = mounter.config.spc

        def build_env() -> dict[bytes, bytes]:
            return environment(mount_dir, parsed, extra)

        supervisor = Supervisor(command, build_env, mode, grace, rotations)
        supervisor.install_signals()  # before any thread starts, so every thread has these signals blocked
        if metrics_addr:
            try:
                serve_metrics(metrics_addr)
            except (OSError, ValueError) as exc:
                raise CLIError(f"--metrics-addr {metrics_addr}: {exc}", "InvalidArgumentValue") from None
        rotator = Rotator(mounter, opts.poll_interval, stop, on_rotated=lambda outcome: rotations.put(outcome))
        while True:
            try:
                mounter.mount()
                break
            except MountError as exc:
                if not exc.retryable:
                    raise CLIError(exc.message, exc.error_type) from None
                delay = rotator.backoff.next()
                log.warning("mount failed: %s; retrying in %.1f s", exc.message, delay)
                signum = supervisor.wait_for_stop(delay)
                if signum is not None:
                    raise typer.Exit(128 + signum) from None
        rotator.backoff.reset()
        start_feed(mounter, rotator, config, stop)
        worker = threading.Thread(target=rotator.run, name="rotation", daemon=True)
        worker.start()
        try:
            code = supervisor.run()
        except RunError as exc:
            raise CLIError(str(exc), "CommandFailed") from None
        log.info("%s exited with %d", command[0], code)
        raise typer.Exit(code)
    finally:
        stop.set()
        if worker is not None:
            rotator.wake_for_stop()
            worker.join(timeout=10)
        if mounter is not None:
            mounter.provider.close()
        remove_private_dir(mount_dir)
