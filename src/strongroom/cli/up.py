"""`strongroom up`: start the server on the embedded default."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from strongroom.settings import DEFAULT_PORT, Settings


def _banner(settings: Settings, admin: dict) -> None:
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    ca = (settings.state_dir / "ca.pem").resolve()
    console.print(f"[bold]Strongroom[/bold] listening on {settings.scheme}://{settings.bind}:{settings.port}")
    console.print(f"  authority (AZURE_AUTHORITY_HOST)  {settings.authority}")
    console.print(f"  tenant                            {admin['tenantId']}")
    console.print(f"  vault URLs                        {settings.vault_url('<name>')}")
    console.print(f"  token audience                    {settings.vault_resource}")
    if not settings.insecure_http:
        console.print(f"  CA file (trust this)              {ca}")
    console.print(f"  admin credentials                 {(settings.state_dir / 'admin.json').resolve()}")
    console.print(f"  cluster issuer (local)            {settings.authority}/clusters/local")
    console.print(f"  IDENTITY_ENDPOINT                 {settings.authority}/msi/token")
    console.print(f"  IDENTITY_HEADER is in             {(settings.state_dir / 'identity-header').resolve()}")
    if settings.dev:
        console.print("  dev mode                          time shift: strongroom admin time-shift --days N [--vault-name V]")
    console.print("Quickstart (in another shell):")
    console.print("  .venv/bin/strongroom keyvault create --name kv1")
    console.print("  .venv/bin/strongroom keyvault secret set --vault-name kv1 --name db-password --value s3cret")
    console.print("  .venv/bin/strongroom keyvault secret show --vault-name kv1 --name db-password --query value")


def up(
    state_dir: Annotated[Path, typer.Option("--state-dir", envvar="STRONGROOM_STATE_DIR", help="Where state lives.")] = Path(".strongroom"),
    bind: Annotated[str, typer.Option("--bind", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port for everything (vaults, identity, management).")] = DEFAULT_PORT,
    storage: Annotated[str | None, typer.Option("--storage", envvar="STRONGROOM_STORAGE", help=(
        "sqlite:///PATH (default: <state-dir>/strongroom.db) or "
        "postgresql://USER[:PASSWORD]@HOST[:PORT]/DB (replicas; docs/operations.md)."))] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    dns_suffix: Annotated[
        str | None, typer.Option("--dns-suffix", help="Vaults answer at <name>.vault.<suffix> (default: the public URL's host).")
    ] = None,
    insecure_http: Annotated[bool, typer.Option("--insecure-http", help="Plain HTTP (benchmarks, behind a TLS proxy).")] = False,
    default_vault: Annotated[str | None, typer.Option("--default-vault", help="Vault served at localhost/127.0.0.1.")] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
    dev: Annotated[
        bool,
        typer.Option("--dev", help="Dev mode: time-shift endpoints (test certificate renewal), lifecycle checks every second."),
    ] = False,
    no_throttle: Annotated[
        bool, typer.Option("--no-throttle", help="No per-vault request limits (benchmarks); see docs/performance.md.")
    ] = False,
    public_url: Annotated[
        str | None,
        typer.Option("--public-url", help="https://HOST[:PORT] clients use (e.g. a load balancer's); default https://localhost:<port>."),
    ] = None,
    tls_cert_file: Annotated[
        Path | None, typer.Option("--tls-cert-file", exists=True, dir_okay=False, resolve_path=True,
                                  help="Server certificate (PEM, chain included) from your own CA, "
                                       "for the public host and *.vault.<host>."),
    ] = None,
    tls_private_key_file: Annotated[
        Path | None, typer.Option("--tls-private-key-file", exists=True, dir_okay=False, resolve_path=True,
                                  help="The private key (PEM) of --tls-cert-file."),
    ] = None,
    issuer_ca_file: Annotated[
        list[Path] | None,
        typer.Option("--issuer-ca-file", exists=True, dir_okay=False, resolve_path=True,
                     help="CA (PEM) to trust for federated OIDC issuers, e.g. a private cluster's (repeatable)."),
    ] = None,
    max_body_control: Annotated[
        int, typer.Option("--max-body-control", min=1, help="Largest request body (bytes) of the control plane: token, ARM, Graph.")
    ] = 1024 * 1024,
    max_body_data: Annotated[
        int, typer.Option("--max-body-data", min=1, help="Largest request body (bytes) of a vault's data plane.")
    ] = 256 * 1024,
    tls_handshake_timeout: Annotated[
        float, typer.Option("--tls-handshake-timeout", min=0.1, help="Seconds a client has to complete the TLS handshake.")
    ] = 10.0,
    request_read_timeout: Annotated[
        float, typer.Option("--request-read-timeout", min=0.1, help="Seconds to receive a request's headers and body, from its first byte.")
    ] = 10.0,
    keep_alive_timeout: Annotated[
        float, typer.Option("--keep-alive-timeout", min=0.1, help="Seconds an idle connection stays open (before and between requests).")
    ] = 5.0,
    max_connections: Annotated[
        int, typer.Option("--max-connections", min=1, help="Open connections per worker; more are closed at once.")
    ] = 1000,
    unauthenticated_per_10s: Annotated[
        int, typer.Option("--unauthenticated-per-10s", min=1, help="Failed authentications per source address per 10 s; more get 429.")
    ] = 300,
    ca_allowed_domains: Annotated[
        list[str] | None,
        typer.Option("--ca-allowed-domains", envvar="STRONGROOM_CA_ALLOWED_DOMAINS",
                     help="Domains (comma-separated, repeatable) the private CA 'Strongroom' may issue certificates "
                          "for; a domain covers the names below it. Default: none."),
    ] = None,
) -> None:
    """Start the server: vaults, identity and management on one port."""
    from strongroom.server.bootstrap import StateError
    from strongroom.server.run import StateDirBusy, serve
    from strongroom.storage import StorageError

    if (tls_cert_file is None) != (tls_private_key_file is None):
        raise typer.BadParameter("--tls-cert-file and --tls-private-key-file go together")
    if tls_cert_file is not None and tls_private_key_file is not None:
        from strongroom.server.tls import check_key_pair

        try:
            check_key_pair(str(tls_cert_file), str(tls_private_key_file))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--tls-cert-file") from None
    if public_url is not None:
        try:
            public_url = Settings.check_public_url(public_url, insecure_http)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--public-url") from None
    if dns_suffix is None:
        dns_suffix = Settings(public_url=public_url, insecure_http=insecure_http).public_host
    settings = Settings(
        state_dir=state_dir,
        bind=bind,
        port=port,
        storage_url=storage,
        workers=workers,
        dns_suffix=dns_suffix.lower().strip("."),
        insecure_http=insecure_http,
        default_vault=default_vault.lower() if default_vault else None,
        log_level=log_level,
        throttle=not no_throttle,
        dev=dev,
        issuer_ca_files=[str(p) for p in issuer_ca_file or []],
        max_body_control=max_body_control,
        max_body_data=max_body_data,
        tls_handshake_timeout=tls_handshake_timeout,
        request_read_timeout=request_read_timeout,
        keep_alive_timeout=keep_alive_timeout,
        max_connections=max_connections,
        unauthenticated_per_10s=unauthenticated_per_10s,
        ca_allowed_domains=_ca_domains(ca_allowed_domains),
        public_url=public_url,
        tls_cert_file=str(tls_cert_file) if tls_cert_file else None,
        tls_key_file=str(tls_private_key_file) if tls_private_key_file else None,
    )
    os.umask(0o077)
    # SIGTERM is how operators and Kubernetes stop a server. uvicorn re-raises the
    # signal after its graceful shutdown, which would end the process "killed by
    # SIGTERM" (exit 143); exiting 0 tells supervisors the stop was clean.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        serve(settings, on_ready=lambda admin: _banner(settings, admin))
    except (StateDirBusy, StateError, StorageError) as exc:
        Console(stderr=True).print(f"[red]ERROR:[/red] {exc}")
        raise typer.Exit(1) from None


def _ca_domains(values: list[str] | None) -> list[str]:
    """The checked allow-list; a bad entry is a usage error (exit 2), not a server that signs too much."""
    from strongroom.keyvault.ca_names import parse_allowed

    try:
        return list(parse_allowed(values or []))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ca-allowed-domains") from None
