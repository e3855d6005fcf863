"""`strongroom keyvault create|list|show|delete|purge|recover` (az keyvault ...)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from strongroom.cli.client import Client, CLIError
from strongroom.cli.common import ServerOpt, StateDirOpt, TagsOpt, client, parse_tags, three_state, three_state_option
from strongroom.cli.output import OutputFormat, OutputOpt, QueryOpt, emit

app = typer.Typer(help="Manage vaults (az keyvault).", no_args_is_help=True)

DEFAULT_RESOURCE_GROUP = "strongroom"
NameOpt = Annotated[str, typer.Option("--name", "-n", help="Name of the vault.")]
GroupOpt = Annotated[
    str | None, typer.Option("--resource-group", "-g", help=f"Resource group (default: {DEFAULT_RESOURCE_GROUP}).")
]


def _vault_path(c: Client, group: str, name: str) -> str:
    return f"/subscriptions/{c.subscription_id}/resourceGroups/{group}/providers/Microsoft.KeyVault/vaults/{name}"


def _with_group(vault: dict[str, Any]) -> dict[str, Any]:
    """az adds `resourceGroup` to ARM's vault JSON."""
    vault["resourceGroup"] = vault["id"].split("/")[4]
    return vault


def find_vault(c: Client, name: str, group: str | None = None) -> dict[str, Any]:
    if group:
        return _with_group(c.arm("GET", _vault_path(c, group, name)))
    for v in c.arm("GET", f"/subscriptions/{c.subscription_id}/providers/Microsoft.KeyVault/vaults")["value"]:
        if v["name"].lower() == name.lower():
            return _with_group(v)
    raise CLIError(f"The Vault '{name}' not found within subscription.", "ResourceNotFound")


def _refuse_existing(c: Client, name: str) -> None:
    """A second `create` would PUT the create defaults over the vault's settings; az refuses it, and so do we."""
    vaults = c.arm("GET", f"/subscriptions/{c.subscription_id}/providers/Microsoft.KeyVault/vaults")["value"]
    if any(v["name"].lower() == name.lower() for v in vaults):
        raise CLIError(
            f"The specified vault: {name} already exists. Change its settings with `strongroom keyvault update`.",
            "VaultAlreadyExists",
        )


@app.command("create")
def create(
    name: NameOpt,
    resource_group: GroupOpt = None,
    location: Annotated[str, typer.Option("--location", "-l")] = "local",
    retention_days: Annotated[int | None, typer.Option("--retention-days", help="Soft-delete retention, 7-90.")] = None,
    enable_purge_protection: Annotated[
        str | None, three_state_option("--enable-purge-protection", "Purge protection (cannot be turned off):")
    ] = None,
    enable_rbac_authorization: Annotated[
        str | None, three_state_option("--enable-rbac-authorization", "Azure RBAC (default) or access policies:")
    ] = None,
    tags: TagsOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Create a vault. As az (2.25+), an existing vault is an error: change it with `keyvault update`."""
    c = client(state_dir, server)
    _refuse_existing(c, name)
    body: dict[str, Any] = {
        "location": location,
        "properties": {
            "tenantId": c.tenant_id or c.metadata()["tenantId"],
            "sku": {"family": "A", "name": "standard"},
            "enableRbacAuthorization": three_state(enable_rbac_authorization, "--enable-rbac-authorization") is not False,
        },
    }
    if retention_days is not None:
        body["properties"]["softDeleteRetentionInDays"] = retention_days
    if enable_purge_protection is not None:
        body["properties"]["enablePurgeProtection"] = three_state(enable_purge_protection, "--enable-purge-protection")
    if tags is not None:
        body["tags"] = parse_tags(tags)
    result = c.arm("PUT", _vault_path(c, resource_group or DEFAULT_RESOURCE_GROUP, name), json=body)
    emit(_with_group(result), output, query)


@app.command("show")
def show(
    name: NameOpt,
    resource_group: GroupOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Show a vault."""
    emit(find_vault(client(state_dir, server), name, resource_group), output, query)


@app.command("list")
def list_(
    resource_group: GroupOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """List vaults."""
    c = client(state_dir, server)
    path = (
        f"/subscriptions/{c.subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.KeyVault/vaults"
        if resource_group
        else f"/subscriptions/{c.subscription_id}/providers/Microsoft.KeyVault/vaults"
    )
    emit([_with_group(v) for v in c.arm("GET", path)["value"]], output, query)


@app.command("list-deleted")
def list_deleted(
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """List soft-deleted vaults."""
    c = client(state_dir, server)
    emit(c.arm("GET", f"/subscriptions/{c.subscription_id}/providers/Microsoft.KeyVault/deletedVaults")["value"], output, query)


@app.command("delete")
def delete(
    name: NameOpt,
    resource_group: GroupOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
) -> None:
    """Delete a vault (soft delete: purge or recover it later)."""
    c = client(state_dir, server)
    vault = find_vault(c, name, resource_group)
    c.arm("DELETE", vault["id"])


@app.command("purge")
def purge(
    name: NameOpt,
    location: Annotated[str, typer.Option("--location", "-l")] = "local",
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
) -> None:
    """Permanently delete a soft-deleted vault and everything in it."""
    c = client(state_dir, server)
    c.arm("POST", f"/subscriptions/{c.subscription_id}/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}/purge")


@app.command("recover")
def recover(
    name: NameOpt,
    resource_group: GroupOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Recover a soft-deleted vault."""
    c = client(state_dir, server)
    deleted = c.arm("GET", f"/subscriptions/{c.subscription_id}/providers/Microsoft.KeyVault/locations/local/deletedVaults/{name}")
    group = resource_group or deleted["properties"]["vaultId"].split("/")[4]
    body = {"location": "local", "properties": {"createMode": "recover"}}
    emit(_with_group(c.arm("PUT", _vault_path(c, group, name), json=body)), output, query)
