"""`strongroom provider serve`: the Secrets Store CSI Driver provider on a unix socket."""

from __future__ import annotations

import logging
import re
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.client import CLIError

app = typer.Typer(help="The Secrets Store CSI Driver provider (gRPC v1alpha1 on a unix socket).", no_args_is_help=True)

# The driver finds a provider at <dir>/<provider>.sock with this name rule.
PROVIDER_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,30}\Z")


@app.command("serve")
def serve(
    socket: Annotated[
        Path | None,
        typer.Option("--socket", help="Socket path (default /var/run/secrets-store-csi-providers/<name>.sock)."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Provider name SecretProviderClasses use in spec.provider (default strongroom, or the socket's "
            "file name); `azure` serves AKS SecretProviderClasses unchanged.",
        ),
    ] = None,
    vault_dns_suffix: Annotated[
        str | None,
        typer.Option(
            "--vault-dns-suffix",
            envvar="STRONGROOM_VAULT_DNS_SUFFIX",
            help="Vaults are https://<keyvaultName>.<suffix>/ (default vault.azure.net); may carry a port, "
            "e.g. vault.localhost:8443.",
        ),
    ] = None,
    authority_host: Annotated[
        str | None,
        typer.Option(
            "--authority-host",
            envvar="AZURE_AUTHORITY_HOST",
            help="Where tokens come from (default https://login.microsoftonline.com).",
        ),
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option("--ca-file", envvar="STRONGROOM_CA_FILE", help="Extra CA to trust (a private server's ca.pem)."),
    ] = None,
    metrics_addr: Annotated[
        str | None,
        typer.Option("--metrics-addr", help="Serve Prometheus /metrics and /healthz here, e.g. :8898."),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Serve v1alpha1.CSIDriverProvider for the Secrets Store CSI Driver until SIGTERM or SIGINT."""
    from strongroom.csi.provider import DEFAULT_NAME, DEFAULT_SOCKET_DIR, ProviderConfig, SocketInUse
    from strongroom.csi.provider import serve as start

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    provider_name = name or (socket.stem if socket else DEFAULT_NAME)
    if not PROVIDER_NAME.match(provider_name):
        raise CLIError(f"--name {provider_name!r}: use at most 30 letters, digits, '-' or '_'", "InvalidArgumentValue")
    path = socket or DEFAULT_SOCKET_DIR / f"{provider_name}.sock"
    if ca_file is not None and not ca_file.is_file():
        raise CLIError(f"--ca-file {ca_file}: no such file", "InvalidArgumentValue")
    config = ProviderConfig(
        name=provider_name,
        vault_dns_suffix=vault_dns_suffix,
        authority_host=authority_host,
        ca_file=str(ca_file) if ca_file else None,
    )
    try:
        server = start(path, config, metrics_addr=metrics_addr)
    except (SocketInUse, ValueError, OSError) as exc:
        raise CLIError(str(exc), "ProviderNotStarted") from None
    env = config.default_cloud
    typer.echo(
        f"provider {provider_name} listening on {path} (vaults https://<name>.{env.key_vault_dns_suffix}/, "
        f"authority {env.authority_host})"
        + (f", metrics on {metrics_addr}" if metrics_addr else ""),
        err=True,
    )
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(1.0):
        pass
    server.stop()
