"""`strongroom identity ...` (az identity): user-assigned managed identities and their federated credentials.

Output is az's: ARM's resource with `properties` flattened into the top level
and `resourceGroup` added, keys in alphabetical order.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from strongroom.cli.client import Client
from strongroom.cli.common import ServerOpt, StateDirOpt, TagsOpt, client, parse_tags
from strongroom.cli.keyvault import DEFAULT_RESOURCE_GROUP
from strongroom.cli.output import OutputFormat, OutputOpt, QueryOpt, emit

app = typer.Typer(help="Manage user-assigned managed identities (az identity).", no_args_is_help=True)
fic_app = typer.Typer(help="Federated identity credentials of a managed identity.", no_args_is_help=True)
app.add_typer(fic_app, name="federated-credential")

API_VERSION = "2023-01-31"
DEFAULT_AUDIENCE = "api://AzureADTokenExchange"
MI = "providers/Microsoft.ManagedIdentity/userAssignedIdentities"

NameOpt = Annotated[str, typer.Option("--name", "-n", help="Name of the identity.")]
GroupOpt = Annotated[
    str | None,
    typer.Option("--resource-group", "-g", help=f"Resource group, created if new (default: {DEFAULT_RESOURCE_GROUP})."),
]
IdentityNameOpt = Annotated[str, typer.Option("--identity-name", help="Name of the managed identity.")]
FicNameOpt = Annotated[str, typer.Option("--name", "-n", help="Name of the federated identity credential.")]


def _path(c: Client, group: str | None, name: str | None = None) -> str:
    path = f"/subscriptions/{c.subscription_id}/resourceGroups/{group or DEFAULT_RESOURCE_GROUP}/{MI}"
    return f"{path}/{name}" if name else path


def _arm(c: Client, method: str, path: str, **kwargs: Any) -> Any:
    return c.arm(method, path, params={"api-version": API_VERSION}, **kwargs)


def flatten(resource: dict[str, Any]) -> dict[str, Any]:
    """az's view of an ARM resource: properties lifted to the top, resourceGroup added, keys sorted."""
    flat = {k: v for k, v in resource.items() if k != "properties"}
    flat.update(resource.get("properties") or {})
    flat["resourceGroup"] = resource["id"].split("/")[4]
    flat.setdefault("systemData", None)
    return dict(sorted(flat.items()))


@app.command("create")
def create(
    name: NameOpt,
    resource_group: GroupOpt = None,
    location: Annotated[str, typer.Option("--location", "-l")] = "local",
    tags: TagsOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Create a user-assigned managed identity (its resource group is created if it does not exist)."""
    c = client(state_dir, server)
    body: dict[str, Any] = {"location": location}
    if tags is not None:
        body["tags"] = parse_tags(tags)
    emit(flatten(_arm(c, "PUT", _path(c, resource_group, name), json=body)), output, query)


@app.command("show")
def show(
    name: NameOpt,
    resource_group: GroupOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Show a managed identity."""
    c = client(state_dir, server)
    emit(flatten(_arm(c, "GET", _path(c, resource_group, name))), output, query)


@app.command("list")
def list_(
    resource_group: Annotated[str | None, typer.Option("--resource-group", "-g", help="Only this resource group.")] = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """List managed identities (of the subscription, or of one resource group)."""
    c = client(state_dir, server)
    path = _path(c, resource_group) if resource_group else f"/subscriptions/{c.subscription_id}/{MI}"
    emit([flatten(r) for r in _arm(c, "GET", path)["value"]], output, query)


@app.command("delete")
def delete(
    name: NameOpt,
    resource_group: GroupOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
) -> None:
    """Delete a managed identity and its federated credentials (role assignments naming it are left, as in Azure)."""
    c = client(state_dir, server)
    _arm(c, "DELETE", _path(c, resource_group, name))


@app.command("rotate-signing-key")
def rotate_signing_key(
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Rotate the key that signs access tokens; tokens signed by the previous key stay valid until they expire."""
    c = client(state_dir, server)
    emit(c.arm("POST", "/strongroom/identity/signing-keys/rotate"), output, query)


# -- federated credentials -----------------------------------------------------------------


@fic_app.command("create")
def fic_create(
    name: FicNameOpt,
    identity_name: IdentityNameOpt,
    issuer: Annotated[str, typer.Option("--issuer", help="The OIDC issuer URL of the external identity provider.")],
    subject: Annotated[str, typer.Option("--subject", help="The subject, e.g. system:serviceaccount:<ns>:<sa>.")],
    audiences: Annotated[
        list[str] | None, typer.Option("--audiences", help=f"The audience (exactly one; default {DEFAULT_AUDIENCE}).")
    ] = None,
    resource_group: GroupOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Create (or update) a federated identity credential: trust tokens of `issuer` about `subject`."""
    c = client(state_dir, server)
    body = {"properties": {"issuer": issuer, "subject": subject, "audiences": audiences or [DEFAULT_AUDIENCE]}}
    path = f"{_path(c, resource_group, identity_name)}/federatedIdentityCredentials/{name}"
    emit(flatten(_arm(c, "PUT", path, json=body)), output, query)


@fic_app.command("show")
def fic_show(
    name: FicNameOpt,
    identity_name: IdentityNameOpt,
    resource_group: GroupOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Show a federated identity credential."""
    c = client(state_dir, server)
    path = f"{_path(c, resource_group, identity_name)}/federatedIdentityCredentials/{name}"
    emit(flatten(_arm(c, "GET", path)), output, query)


@fic_app.command("list")
def fic_list(
    identity_name: IdentityNameOpt,
    resource_group: GroupOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """List the federated identity credentials of a managed identity."""
    c = client(state_dir, server)
    path = f"{_path(c, resource_group, identity_name)}/federatedIdentityCredentials"
    emit([flatten(r) for r in _arm(c, "GET", path)["value"]], output, query)


@fic_app.command("delete")
def fic_delete(
    name: FicNameOpt,
    identity_name: IdentityNameOpt,
    resource_group: GroupOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not prompt for confirmation (never prompts here).")] = False,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
) -> None:
    """Delete a federated identity credential."""
    c = client(state_dir, server)
    _arm(c, "DELETE", f"{_path(c, resource_group, identity_name)}/federatedIdentityCredentials/{name}")
