"""`strongroom cluster ...`: the local cluster's service accounts, their tokens and its OIDC issuer.

Kubernetes-flavoured commands print what kubectl / az aks would: `token` the bare
token (as `kubectl create token`), `oidc-issuer` the bare issuer URL (as `az aks
show --query oidcIssuerProfile.issuerUrl -o tsv`).
"""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any

import httpx
import typer

from strongroom.cli.client import Client, CLIError
from strongroom.cli.common import ServerOpt, StateDirOpt, client
from strongroom.cli.output import OutputFormat, OutputOpt, QueryOpt, emit

app = typer.Typer(help="The local cluster: service accounts, tokens, OIDC issuer.", no_args_is_help=True)
sa_app = typer.Typer(help="Service accounts of the local cluster (kubectl ... serviceaccount).", no_args_is_help=True)
app.add_typer(sa_app, name="serviceaccount")

CLUSTER = "local"
NamespaceOpt = Annotated[str, typer.Option("--namespace", help="Kubernetes namespace.")]
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")


def _sa_path(namespace: str | None = None, name: str | None = None) -> str:
    if namespace is None:
        return f"/clusters/{CLUSTER}/api/v1/serviceaccounts"
    path = f"/clusters/{CLUSTER}/api/v1/namespaces/{namespace}/serviceaccounts"
    return f"{path}/{name}" if name else path


def parse_duration(value: str) -> int:
    """Seconds, or a Go duration as kubectl takes it (`1h`, `90m`, `1h30m`, `600s`)."""
    if value.isdigit():
        return int(value)
    m = _DURATION.match(value)
    if not value or not m:
        raise CLIError(f"--duration: '{value}' is not a number of seconds or a duration like 1h, 30m, 600s", "InvalidArgumentValue")
    h, mi, s = (int(g or 0) for g in m.groups())
    return h * 3600 + mi * 60 + s


def parse_annotations(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values or []:
        key, sep, val = v.partition("=")
        if not sep or not key:
            raise CLIError(f"--annotations: '{v}' is not key=value", "InvalidArgumentValue")
        out[key] = val
    return out


def _rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A kubectl-like table: NAMESPACE NAME UID CREATED."""
    return [
        {
            "namespace": i["metadata"]["namespace"],
            "name": i["metadata"]["name"],
            "uid": i["metadata"]["uid"],
            "created": i["metadata"]["creationTimestamp"],
        }
        for i in items
    ]


def _emit_accounts(items: list[dict[str, Any]], output: OutputFormat, query: str | None, single: bool = False) -> None:
    if output in (OutputFormat.table, OutputFormat.tsv) and not query:
        emit(_rows(items), output)
    else:
        emit(items[0] if single else items, output, query)


@sa_app.command("create")
def sa_create(
    name: Annotated[str, typer.Option("--name", help="Name of the service account.")],
    namespace: NamespaceOpt = "default",
    annotations: Annotated[
        list[str] | None, typer.Option("--annotations", help="Space-separated key=value annotations.")
    ] = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Create a service account (it gets its own uid, as in Kubernetes)."""
    c = client(state_dir, server)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = parse_annotations(annotations)
    body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}
    _emit_accounts([c.cluster("POST", _sa_path(namespace), json=body)], output, query, single=True)


@sa_app.command("show")
def sa_show(
    name: Annotated[str, typer.Option("--name", help="Name of the service account.")],
    namespace: NamespaceOpt = "default",
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Show a service account."""
    c = client(state_dir, server)
    _emit_accounts([c.cluster("GET", _sa_path(namespace, name))], output, query, single=True)


@sa_app.command("list")
def sa_list(
    namespace: Annotated[str | None, typer.Option("--namespace", help="Only this namespace (default: all).")] = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """List service accounts."""
    c = client(state_dir, server)
    _emit_accounts(c.cluster("GET", _sa_path(namespace))["items"], output, query)


@sa_app.command("delete")
def sa_delete(
    name: Annotated[str, typer.Option("--name", help="Name of the service account.")],
    namespace: NamespaceOpt = "default",
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
) -> None:
    """Delete a service account."""
    client(state_dir, server).cluster("DELETE", _sa_path(namespace, name))


@app.command("token")
def token(
    service_account: Annotated[str, typer.Option("--service-account", help="The service account to issue a token for.")],
    namespace: NamespaceOpt = "default",
    audience: Annotated[
        list[str] | None, typer.Option("--audience", help="Audience of the token (repeatable; default: the issuer).")
    ] = None,
    duration: Annotated[str, typer.Option("--duration", help="Lifetime: 600..86400 seconds, or 10m..24h.")] = "3600",
    pod_name: Annotated[str | None, typer.Option("--pod-name", help="Bind the token to a pod of this name.")] = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
) -> None:
    """Print a projected service-account token, as `kubectl create token` does (the admin, or a "Strongroom Node Agent")."""
    c = client(state_dir, server)
    spec: dict[str, Any] = {"expirationSeconds": parse_duration(duration)}
    if audience:
        spec["audiences"] = audience
    if pod_name:
        spec["boundObjectRef"] = {"kind": "Pod", "apiVersion": "v1", "name": pod_name}
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    result = c.cluster("POST", f"{_sa_path(namespace, service_account)}/token", json=body)
    sys.stdout.write(result["status"]["token"] + "\n")


def issuer_url(c: Client) -> str:
    """Read from the cluster's public discovery document, as a relying party would."""
    url = f"{c.server}/clusters/{CLUSTER}/.well-known/openid-configuration"
    try:
        r = c.http.get(url)
    except httpx.HTTPError as exc:
        raise CLIError(f"cannot reach {c.server}: {exc}", "ServiceUnavailable") from None
    if r.status_code != 200:
        raise CLIError(f"GET {url}: HTTP {r.status_code}", "ServiceUnavailable")
    return r.json()["issuer"]


@app.command("oidc-issuer")
def oidc_issuer(state_dir: StateDirOpt = None, server: ServerOpt = None) -> None:
    """Print the local cluster's OIDC issuer URL (for --issuer of a federated credential)."""
    sys.stdout.write(issuer_url(client(state_dir, server)) + "\n")
