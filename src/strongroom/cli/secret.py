"""`strongroom keyvault secret ...` (az keyvault secret ...)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Any

import typer

from strongroom.cli.client import CLIError
from strongroom.cli.common import (
    ServerOpt,
    StateDirOpt,
    TagsOpt,
    client,
    iso,
    object_target,
    parse_tags,
    parse_time,
    three_state,
    three_state_option,
)
from strongroom.cli.output import OutputFormat, OutputOpt, QueryOpt, emit
from strongroom.util.files import write_file_atomically

app = typer.Typer(help="Manage secrets (az keyvault secret).", no_args_is_help=True)

VaultOpt = Annotated[str | None, typer.Option("--vault-name", help="Name of the vault.")]
NameOpt = Annotated[str | None, typer.Option("--name", "-n", help="Name of the secret.")]
IdOpt = Annotated[str | None, typer.Option("--id", help="Id of the secret (https://<vault>.vault.../secrets/<name>[/<version>]).")]
VersionOpt = Annotated[str | None, typer.Option("--version", "-v", help="Secret version; default: latest.")]
ENCODINGS = ("utf-8", "ascii", "base64", "hex", "utf-16be", "utf-16le")


def _target(vault_name: str | None, name: str | None, ident: str | None, version: str | None = None) -> tuple[str, str, str]:
    return object_target("secrets", vault_name, name, ident, version)


def _attributes(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "created": iso(a.get("created")),
        "enabled": a.get("enabled"),
        "expires": iso(a.get("exp")),
        "notBefore": iso(a.get("nbf")),
        "recoverableDays": a.get("recoverableDays"),
        "recoveryLevel": a.get("recoveryLevel"),
        "updated": iso(a.get("updated")),
    }


def az_secret(bundle: dict[str, Any]) -> dict[str, Any]:
    """Key Vault's SecretBundle/SecretItem in the shape az prints."""
    out: dict[str, Any] = {
        "attributes": _attributes(bundle.get("attributes", {})),
        "contentType": bundle.get("contentType"),
        "id": bundle.get("id"),
        "kid": bundle.get("kid"),
        "managed": bundle.get("managed"),
        "name": bundle["id"].split("/")[4],
        "tags": bundle.get("tags"),
    }
    if "value" in bundle:
        out["value"] = bundle["value"]
    if "recoveryId" in bundle:
        out["deletedDate"] = iso(bundle.get("deletedDate"))
        out["recoveryId"] = bundle["recoveryId"]
        out["scheduledPurgeDate"] = iso(bundle.get("scheduledPurgeDate"))
    return out


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}", "InvalidArgumentValue") from None


def _read_file(path: Path, encoding: str) -> str:
    data = _read_bytes(path)
    if encoding == "base64":
        return base64.b64encode(data).decode()
    if encoding == "hex":
        return data.hex()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        raise CLIError(f"{path} is not valid {encoding}; use --encoding base64 or hex for binary files",
                       "InvalidArgumentValue") from None


def _decode_value(value: str, encoding: str) -> bytes:
    """The bytes `set --file --encoding` read, from the stored value."""
    try:
        if encoding == "base64":
            return base64.b64decode(value, validate=True)
        if encoding == "hex":
            return bytes.fromhex(value)
        return value.encode(encoding)
    except (ValueError, UnicodeError):
        # Say what is wrong without echoing the value.
        raise CLIError(f"the secret's value is not {encoding}-encoded; pass another --encoding",
                       "InvalidArgumentValue") from None


@app.command("set")
def set_(
    vault_name: VaultOpt = None,
    name: NameOpt = None,
    value: Annotated[str | None, typer.Option("--value", help="Plain text secret value.")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read the value from a file.")] = None,
    encoding: Annotated[str, typer.Option("--encoding", "-e", help=f"With --file: {'|'.join(ENCODINGS)}.")] = "utf-8",
    content_type: Annotated[str | None, typer.Option("--content-type", help="Type of the secret value, e.g. a MIME type.")] = None,
    tags: TagsOpt = None,
    expires: Annotated[str | None, typer.Option("--expires", help="Expiration (UTC, ISO 8601).")] = None,
    not_before: Annotated[str | None, typer.Option("--not-before", help="Not usable before (UTC, ISO 8601).")] = None,
    disabled: Annotated[str | None, three_state_option("--disabled", "Create the secret disabled:")] = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Create a secret, or a new version of it."""
    vault, name, _ = _target(vault_name, name, None)
    if (value is None) == (file is None):
        raise CLIError("usage error: exactly one of --value or --file", "InvalidArgumentValue")
    if encoding not in ENCODINGS:
        raise CLIError(f"--encoding must be one of {', '.join(ENCODINGS)}", "InvalidArgumentValue")
    tag_map = parse_tags(tags)
    if file is not None:
        value = _read_file(file, encoding)
        tag_map = {**(tag_map or {}), "file-encoding": encoding}  # as az records it
    attrs: dict[str, Any] = {"enabled": not three_state(disabled, "--disabled")}
    if expires:
        attrs["exp"] = parse_time(expires, "--expires")
    if not_before:
        attrs["nbf"] = parse_time(not_before, "--not-before")
    body: dict[str, Any] = {"value": value, "attributes": attrs}
    if content_type is not None:
        body["contentType"] = content_type
    if tag_map is not None:
        body["tags"] = tag_map
    result = client(state_dir, server).vault(vault, "PUT", f"/secrets/{name}", json=body)
    emit(az_secret(result), output, query)


@app.command("show")
def show(
    vault_name: VaultOpt = None,
    name: NameOpt = None,
    version: VersionOpt = None,
    ident: IdOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Get a secret's value and attributes."""
    vault, name, version = _target(vault_name, name, ident, version)
    result = client(state_dir, server).vault(vault, "GET", f"/secrets/{name}/{version}")
    emit(az_secret(result), output, query)


@app.command("download")
def download(
    file: Annotated[Path, typer.Option("--file", "-f", help="File to write the value to; must not exist.")],
    vault_name: VaultOpt = None,
    name: NameOpt = None,
    version: VersionOpt = None,
    ident: IdOpt = None,
    encoding: Annotated[
        str | None,
        typer.Option("--encoding", "-e", help=f"{'|'.join(ENCODINGS)}; default: the secret's 'file-encoding' tag, else utf-8."),
    ] = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
) -> None:
    """Write a secret's value to a file (mode 0600)."""
    vault, name, version = _target(vault_name, name, ident, version)
    if encoding is not None and encoding not in ENCODINGS:
        raise CLIError(f"--encoding must be one of {', '.join(ENCODINGS)}", "InvalidArgumentValue")
    if file.exists():
        raise CLIError(f"File {file} already exists.", "InvalidArgumentValue")
    bundle = client(state_dir, server).vault(vault, "GET", f"/secrets/{name}/{version}")
    value = bundle["value"]
    # As az: a value stored with `set --file --encoding X` comes back as the original bytes.
    encoding = encoding or (bundle.get("tags") or {}).get("file-encoding") or "utf-8"
    if encoding not in ENCODINGS:
        raise CLIError(f"the secret's file-encoding tag '{encoding}' is not one of {', '.join(ENCODINGS)}", "InvalidArgumentValue")
    write_file_atomically(file, _decode_value(value, encoding), mode=0o600)


@app.command("list")
def list_(
    vault_name: Annotated[str, typer.Option("--vault-name")],
    maxresults: Annotated[int | None, typer.Option("--maxresults")] = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """List secrets (names and attributes, no values)."""
    items = client(state_dir, server).vault_pages(vault_name, "/secrets")
    emit([az_secret(i) for i in items[:maxresults]], output, query)


@app.command("list-versions")
def list_versions(
    vault_name: VaultOpt = None,
    name: NameOpt = None,
    ident: IdOpt = None,
    maxresults: Annotated[int | None, typer.Option("--maxresults")] = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """List the versions of a secret."""
    vault, name, _ = _target(vault_name, name, ident)
    items = client(state_dir, server).vault_pages(vault, f"/secrets/{name}/versions")
    emit([az_secret(i) for i in items[:maxresults]], output, query)


@app.command("set-attributes")
def set_attributes(
    vault_name: VaultOpt = None,
    name: NameOpt = None,
    version: VersionOpt = None,
    ident: IdOpt = None,
    enabled: Annotated[str | None, three_state_option("--enabled", "Enable or disable the version:")] = None,
    expires: Annotated[str | None, typer.Option("--expires")] = None,
    not_before: Annotated[str | None, typer.Option("--not-before")] = None,
    content_type: Annotated[str | None, typer.Option("--content-type")] = None,
    tags: TagsOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Update a secret version's attributes, content type or tags (never its value)."""
    vault, name, version = _target(vault_name, name, ident, version)
    attrs: dict[str, Any] = {}
    if enabled is not None:
        attrs["enabled"] = three_state(enabled, "--enabled")
    if expires:
        attrs["exp"] = parse_time(expires, "--expires")
    if not_before:
        attrs["nbf"] = parse_time(not_before, "--not-before")
    body: dict[str, Any] = {"attributes": attrs}
    if content_type is not None:
        body["contentType"] = content_type
    if tags is not None:
        body["tags"] = parse_tags(tags)
    result = client(state_dir, server).vault(vault, "PATCH", f"/secrets/{name}/{version}", json=body)
    emit(az_secret(result), output, query)


@app.command("delete")
def delete(
    vault_name: VaultOpt = None,
    name: NameOpt = None,
    ident: IdOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Delete a secret (all versions; soft delete)."""
    vault, name, _ = _target(vault_name, name, ident)
    emit(az_secret(client(state_dir, server).vault(vault, "DELETE", f"/secrets/{name}")), output, query)


@app.command("list-deleted")
def list_deleted(
    vault_name: Annotated[str, typer.Option("--vault-name")],
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """List deleted secrets that can still be recovered or purged."""
    items = client(state_dir, server).vault_pages(vault_name, "/deletedsecrets")
    emit([az_secret(i) for i in items], output, query)


@app.command("show-deleted")
def show_deleted(
    vault_name: VaultOpt = None,
    name: NameOpt = None,
    ident: IdOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Show a deleted secret."""
    vault, name, _ = _target(vault_name, name, ident)
    emit(az_secret(client(state_dir, server).vault(vault, "GET", f"/deletedsecrets/{name}")), output, query)


@app.command("recover")
def recover(
    vault_name: VaultOpt = None,
    name: NameOpt = None,
    ident: IdOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Recover a deleted secret."""
    vault, name, _ = _target(vault_name, name, ident)
    emit(az_secret(client(state_dir, server).vault(vault, "POST", f"/deletedsecrets/{name}/recover")), output, query)


@app.command("purge")
def purge(
    vault_name: VaultOpt = None,
    name: NameOpt = None,
    ident: IdOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
) -> None:
    """Permanently delete a deleted secret."""
    vault, name, _ = _target(vault_name, name, ident)
    client(state_dir, server).vault(vault, "DELETE", f"/deletedsecrets/{name}")


@app.command("backup")
def backup(
    file: Annotated[Path, typer.Option("--file", "-f", help="File to write the backup blob to; must not exist.")],
    vault_name: VaultOpt = None,
    name: NameOpt = None,
    ident: IdOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
) -> None:
    """Back up every version of a secret into an encrypted blob."""
    vault, name, _ = _target(vault_name, name, ident)
    if file.exists():
        raise CLIError(f"File {file} already exists.", "InvalidArgumentValue")
    blob = client(state_dir, server).vault(vault, "POST", f"/secrets/{name}/backup")["value"]
    padded = blob + "=" * (-len(blob) % 4)
    write_file_atomically(file, base64.urlsafe_b64decode(padded), mode=0o600)


@app.command("restore")
def restore(
    file: Annotated[Path, typer.Option("--file", "-f", help="Backup blob written by `secret backup`.")],
    vault_name: Annotated[str, typer.Option("--vault-name")],
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Restore a backed-up secret into a vault."""
    blob = base64.urlsafe_b64encode(_read_bytes(file)).decode().rstrip("=")
    result = client(state_dir, server).vault(vault_name, "POST", "/secrets/restore", json={"value": blob})
    emit(az_secret(result), output, query)

