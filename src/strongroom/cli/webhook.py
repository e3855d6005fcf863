"""`strongroom webhook serve`: the workload identity mutating admission webhook over HTTPS."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.client import CLIError

app = typer.Typer(help="The workload identity mutating admission webhook (as AKS --enable-workload-identity).",
                  no_args_is_help=True)


@app.command("serve")
def serve(
    tls_cert_file: Annotated[
        Path, typer.Option("--tls-cert-file", help="Server certificate (PEM); reloaded when the file changes.")
    ],
    tls_private_key_file: Annotated[
        Path, typer.Option("--tls-private-key-file", help="Its private key (PEM); reloaded with it.")
    ],
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="HTTPS port (POST /mutate-v1-pod, /healthz, /metrics).")] = 9443,
    kubeconfig: Annotated[
        Path | None,
        typer.Option("--kubeconfig", envvar="KUBECONFIG",
                     help="Kubeconfig to read ServiceAccounts with (default: in-cluster config, then ~/.kube/config)."),
    ] = None,
    tenant_id: Annotated[
        str,
        typer.Option("--tenant-id", envvar="AZURE_TENANT_ID",
                     help="AZURE_TENANT_ID for service accounts without the azure.workload.identity/tenant-id annotation."),
    ] = "",
    authority_host: Annotated[
        str | None,
        typer.Option("--authority-host", envvar="AZURE_AUTHORITY_HOST",
                     help="AZURE_AUTHORITY_HOST injected into pods: Strongroom's public URL "
                          "(default https://login.microsoftonline.com/, as upstream on AzurePublicCloud)."),
    ] = None,
    bind: Annotated[str, typer.Option("--bind", help="Address to listen on.")] = "0.0.0.0",
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Serve the webhook until SIGTERM or SIGINT."""
    import ssl

    import uvicorn

    from strongroom.webhook.app import build_app
    from strongroom.webhook.kube import ConfigError, ServiceAccounts, connect
    from strongroom.webhook.mutation import PUBLIC_CLOUD_AUTHORITY, WebhookConfig
    from strongroom.webhook.tls import ReloadingCertificate

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if authority_host is not None and not authority_host.startswith("https://"):
        raise CLIError(f"--authority-host {authority_host!r}: use an https:// URL", "InvalidArgumentValue")
    try:
        certificate = ReloadingCertificate(str(tls_cert_file), str(tls_private_key_file))
    except (OSError, ssl.SSLError) as exc:
        raise CLIError(f"cannot load --tls-cert-file/--tls-private-key-file: {exc}", "InvalidArgumentValue") from None
    try:
        connection = connect(kubeconfig)
    except ConfigError as exc:
        raise CLIError(str(exc), "InvalidArgumentValue") from None
    config = WebhookConfig(tenant_id=tenant_id, authority_host=authority_host or PUBLIC_CLOUD_AUTHORITY)
    uv_config = uvicorn.Config(
        build_app(ServiceAccounts(connection), config),
        host=bind,
        port=port,
        log_level=log_level.lower(),
        access_log=False,
        server_header=False,
        proxy_headers=False,
        limit_concurrency=256,  # each review holds at most MAX_BODY; beyond this, 503 until one finishes
        timeout_keep_alive=30,
    )
    uv_config.load()
    uv_config.ssl = certificate.listener  # uvicorn serves TLS with this context (its SNI callback reloads)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    print(f"webhook listening on https://{bind}:{port}/mutate-v1-pod", flush=True)
    uvicorn.Server(uv_config).run()
