"""`strongroom cloud show`: how to point the real `az` CLI at this instance.

It reads the instance's public cloud metadata (`/metadata/endpoints`, the document
`az cloud register` itself reads) and prints the setup as commands to paste
(`--commands`, the default for people), as the JSON for `az cloud register
--cloud-config @file` (`--cloud-config`), or everything as JSON (`-o json`).
The client secret is never printed: the login line reads it from admin.json.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from strongroom.cli.client import Client, CLIError, state_dir_default
from strongroom.cli.common import ServerOpt, StateDirOpt, client
from strongroom.cli.output import OutputFormat, QueryOpt, emit

app = typer.Typer(help="Point Azure's own tools at this instance (az cloud).", no_args_is_help=True)
METADATA_API_VERSION = "2022-09-01"  # what `az cloud register` asks for


def cloud_metadata(c: Client) -> dict[str, Any]:
    url = f"{c.server}/metadata/endpoints?api-version={METADATA_API_VERSION}"
    try:
        r = c.http.get(url)
    except httpx.HTTPError as exc:
        raise CLIError(f"cannot reach {c.server}: {exc}", "ServiceUnavailable") from None
    if r.status_code != 200:
        raise CLIError(f"GET {url}: HTTP {r.status_code}", "ServiceUnavailable")
    return r.json()


def cloud_config(meta: dict[str, Any]) -> dict[str, Any]:
    """The `--cloud-config` JSON: the same endpoints, usable with `--skip-endpoint-discovery` too."""
    auth = meta["authentication"]
    return {
        "endpoints": {
            "activeDirectory": auth["loginEndpoint"],
            "activeDirectoryResourceId": auth["audiences"][0],
            "management": auth["audiences"][0],
            "resourceManager": meta["resourceManager"],
            "microsoftGraphResourceId": meta["microsoftGraphResourceId"],
        },
        "suffixes": {"keyvaultDns": "." + meta["suffixes"]["keyVaultDns"].lstrip(".")},
    }


def setup(c: Client, state_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    name = meta["name"]
    ca = (state_dir / "ca.pem").resolve()
    admin = (state_dir / "admin.json").resolve()
    read_secret = f"python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"clientSecret\"])' {shlex.quote(str(admin))}"
    register = f"az cloud register --name {name} --endpoint-resource-manager {meta['resourceManager']}"
    commands = [
        f"export REQUESTS_CA_BUNDLE={shlex.quote(str(ca))}",
        register,
        f"az cloud set --name {name}",
        "az config set core.instance_discovery=false",
        f"az login --service-principal --username {c.client_id} --tenant {c.tenant_id} --password \"$({read_secret})\"",
    ]
    return {
        "name": name,
        "register": register,
        "cloudConfig": cloud_config(meta),
        "caFile": str(ca),
        "tenantId": c.tenant_id,
        "clientId": c.client_id,
        "commands": commands,
    }


@app.command("show")
def show(
    cloud_config_only: bool = typer.Option(
        False, "--cloud-config", help="Print only the JSON for `az cloud register --cloud-config @file`."
    ),
    output: Annotated[OutputFormat | None, typer.Option("--output", "-o", help="Output format (default: the commands as text).")] = None,
    query: QueryOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
) -> None:
    """Print the `az cloud register` / `az login` commands for this instance (or its --cloud-config JSON)."""
    c = client(state_dir, server)
    meta = cloud_metadata(c)
    c.metadata()  # fills the tenant id when the credentials came from the environment
    info = setup(c, state_dir or state_dir_default(), meta)
    if cloud_config_only:
        sys.stdout.write(json.dumps(info["cloudConfig"], indent=2) + "\n")
    elif output is None and query is None:
        sys.stdout.write("\n".join(info["commands"]) + "\n")
    else:
        emit(info, output or OutputFormat.json, query)
