"""`strongroom keyvault key ...` (az keyvault key ...): keys, their rotation policy, and crypto operations.

Output follows az's key transforms: `attributes` with ISO dates, `key` as the
JSON Web Key with az's camelCase `keyOps`, `managed`, `tags`, `releasePolicy`.
"""

from __future__ import annotations

import base64
import binascii
import json
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

app = typer.Typer(help="Manage keys (az keyvault key).", no_args_is_help=True)
rotation_app = typer.Typer(help="Manage a key's rotation policy (az keyvault key rotation-policy).", no_args_is_help=True)
app.add_typer(rotation_app, name="rotation-policy")

VaultOpt = Annotated[str | None, typer.Option("--vault-name", help="Name of the vault.")]
NameOpt = Annotated[str | None, typer.Option("--name", "-n", help="Name of the key.")]
IdOpt = Annotated[str | None, typer.Option("--id", help="Id of the key (https://<vault>.vault.../keys/<name>[/<version>]).")]
VersionOpt = Annotated[str | None, typer.Option("--version", "-v", help="Key version; default: latest.")]
JWK_FIELDS = ("crv", "d", "dp", "dq", "e", "k", "keyOps", "kid", "kty", "n", "p", "q", "qi", "t", "x", "y")


def target(vault_name: str | None, name: str | None, ident: str | None, version: str | None = None) -> tuple[str, str, str]:
    return object_target("keys", vault_name, name, ident, version)


def _attributes(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "created": iso(a.get("created")), "enabled": a.get("enabled"), "expires": iso(a.get("exp")),
        "exportable": a.get("exportable"), "hsmPlatform": a.get("hsmPlatform"), "notBefore": iso(a.get("nbf")),
        "recoverableDays": a.get("recoverableDays"), "recoveryLevel": a.get("recoveryLevel"),
        "updated": iso(a.get("updated")),
    }


def _deleted(bundle: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    if "recoveryId" in bundle:
        out["deletedDate"] = iso(bundle.get("deletedDate"))
        out["recoveryId"] = bundle["recoveryId"]
        out["scheduledPurgeDate"] = iso(bundle.get("scheduledPurgeDate"))
    return out


def az_key(bundle: dict[str, Any]) -> dict[str, Any]:
    """A KeyBundle (or DeletedKeyBundle) as `az keyvault key show` prints it."""
    jwk = bundle.get("key", {})
    key = {f: None for f in JWK_FIELDS}
    key.update({k: v for k, v in jwk.items() if k != "key_ops"})
    key["keyOps"] = jwk.get("key_ops")
    out = {
        "attributes": _attributes(bundle.get("attributes", {})), "key": key, "managed": bundle.get("managed"),
        "releasePolicy": bundle.get("release_policy"), "tags": bundle.get("tags"),
    }
    return _deleted(bundle, out)


def az_key_item(item: dict[str, Any]) -> dict[str, Any]:
    out = {
        "attributes": _attributes(item.get("attributes", {})), "kid": item.get("kid"),
        "managed": item.get("managed"), "name": item["kid"].split("/")[4], "releasePolicy": None, "tags": item.get("tags"),
    }
    return _deleted(item, out)


def _json_arg(value: str, flag: str) -> Any:
    """A JSON argument, inline or `@file`, as az takes it."""
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).expanduser().read_text()
        except OSError as exc:
            raise CLIError(f"{flag}: cannot read {value[1:]}: {exc.strerror}", "InvalidArgumentValue") from None
    try:
        return json.loads(text)
    except ValueError:
        raise CLIError(f"{flag}: not valid JSON", "InvalidArgumentValue") from None


def _b64(value: str, flag: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise CLIError(f"{flag}: not base64", "InvalidArgumentValue") from None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _from_b64url(text: str | None) -> bytes | None:
    if text is None:
        return None
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _attrs(disabled: str | None, expires: str | None, not_before: str | None, enabled: str | None = None) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if disabled is not None:
        attrs["enabled"] = not three_state(disabled, "--disabled")
    if enabled is not None:
        attrs["enabled"] = three_state(enabled, "--enabled")
    if expires:
        attrs["exp"] = parse_time(expires, "--expires")
    if not_before:
        attrs["nbf"] = parse_time(not_before, "--not-before")
    return attrs


OpsOpt = Annotated[
    list[str] | None, typer.Option("--ops", help="Space-separated operations: encrypt decrypt sign verify wrapKey unwrapKey.")
]


@app.command("create")
def create(
    vault_name: VaultOpt = None,
    name: NameOpt = None,
    kty: Annotated[str | None, typer.Option("--kty", help="RSA, RSA-HSM, EC, EC-HSM, oct, oct-HSM.")] = None,
    size: Annotated[int | None, typer.Option("--size", help="RSA: 2048, 3072, 4096; oct: 128, 192, 256.")] = None,
    curve: Annotated[str | None, typer.Option("--curve", help="P-256, P-384, P-521, P-256K.")] = None,
    protection: Annotated[str | None, typer.Option("--protection", "-p", help="software or hsm.")] = None,
    ops: OpsOpt = None,
    disabled: Annotated[str | None, three_state_option("--disabled", "Create the key disabled:")] = None,
    expires: Annotated[str | None, typer.Option("--expires")] = None,
    not_before: Annotated[str | None, typer.Option("--not-before")] = None,
    tags: TagsOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Create a key, or a new version of it."""
    vault, name, _ = target(vault_name, name, None)
    kty = kty or ("EC" if curve else "RSA")
    if protection == "hsm" and not kty.endswith("-HSM"):
        kty += "-HSM"
    body: dict[str, Any] = {"kty": kty, "attributes": _attrs(disabled, expires, not_before)}
    if size is not None:
        body["key_size"] = size
    if curve:
        body["crv"] = curve
    if ops:
        body["key_ops"] = ops
    if tags is not None:
        body["tags"] = parse_tags(tags)
    emit(az_key(client(state_dir, server).vault(vault, "POST", f"/keys/{name}/create", json=body)), output, query)


def _pem_to_jwk(pem: bytes, password: str | None) -> dict[str, Any]:
    """A private key PEM as a JWK (az's `--pem-file` import builds the JWK client-side too)."""
    from cryptography.hazmat.primitives import serialization

    from strongroom.keyvault import jwk

    try:
        key = serialization.load_pem_private_key(pem, password.encode() if password else None)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"cannot read the PEM private key: {exc}", "InvalidArgumentValue") from None
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, rsa.RSAPrivateKey):
        return {"kty": "RSA", **jwk.rsa_to_jwk(key)}
    if isinstance(key, ec.EllipticCurvePrivateKey):
        crv = jwk.curve_name(key.curve)
        return {"kty": "EC", **jwk.ec_to_jwk(key, crv)}
    raise CLIError("only RSA and EC private keys can be imported", "InvalidArgumentValue")


@app.command("import")
def import_(
    vault_name: VaultOpt = None,
    name: NameOpt = None,
    pem_file: Annotated[Path | None, typer.Option("--pem-file", help="PEM file with the private key.")] = None,
    pem_string: Annotated[str | None, typer.Option("--pem-string", help="The private key PEM itself.")] = None,
    pem_password: Annotated[str | None, typer.Option("--pem-password", help="Password of an encrypted PEM.")] = None,
    jwk_file: Annotated[Path | None, typer.Option("--jwk-file", help="JSON Web Key file (with the private part).")] = None,
    kty: Annotated[str | None, typer.Option("--kty", help="Import as this type, e.g. RSA-HSM.")] = None,
    protection: Annotated[str | None, typer.Option("--protection", "-p", help="software or hsm.")] = None,
    ops: OpsOpt = None,
    disabled: Annotated[str | None, three_state_option("--disabled", "Import the key disabled:")] = None,
    expires: Annotated[str | None, typer.Option("--expires")] = None,
    not_before: Annotated[str | None, typer.Option("--not-before")] = None,
    tags: TagsOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Import a private key (PEM or JWK) as a new key version."""
    vault, name, _ = target(vault_name, name, None)
    if sum(x is not None for x in (pem_file, pem_string, jwk_file)) != 1:
        raise CLIError("usage error: exactly one of --pem-file, --pem-string or --jwk-file", "InvalidArgumentValue")
    if jwk_file is not None:
        key = _json_arg(f"@{jwk_file}", "--jwk-file")
    else:
        try:
            pem = pem_file.read_bytes() if pem_file is not None else (pem_string or "").encode()
        except OSError as exc:
            raise CLIError(f"cannot read {pem_file}: {exc.strerror}", "InvalidArgumentValue") from None
        key = _pem_to_jwk(pem, pem_password)
    if kty:
        key["kty"] = kty
    if ops:
        key["key_ops"] = ops
    body: dict[str, Any] = {"key": key, "attributes": _attrs(disabled, expires, not_before)}
    if protection == "hsm":
        body["Hsm"] = True
    if tags is not None:
        body["tags"] = parse_tags(tags)
    emit(az_key(client(state_dir, server).vault(vault, "PUT", f"/keys/{name}", json=body)), output, query)


@app.command("show")
def show(
    vault_name: VaultOpt = None, name: NameOpt = None, version: VersionOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Show a key's public part and attributes."""
    vault, name, version = target(vault_name, name, ident, version)
    emit(az_key(client(state_dir, server).vault(vault, "GET", f"/keys/{name}/{version}")), output, query)


@app.command("list")
def list_(
    vault_name: Annotated[str, typer.Option("--vault-name")],
    maxresults: Annotated[int | None, typer.Option("--maxresults")] = None,
    include_managed: Annotated[bool, typer.Option("--include-managed", help="Also list certificates' keys.")] = False,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """List keys (as az: without certificates' keys unless --include-managed)."""
    items = client(state_dir, server).vault_pages(vault_name, "/keys")
    items = [i for i in items if include_managed or not i.get("managed")]
    emit([az_key_item(i) for i in items[:maxresults]], output, query)


@app.command("list-versions")
def list_versions(
    vault_name: VaultOpt = None, name: NameOpt = None, ident: IdOpt = None,
    maxresults: Annotated[int | None, typer.Option("--maxresults")] = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """List the versions of a key."""
    vault, name, _ = target(vault_name, name, ident)
    items = client(state_dir, server).vault_pages(vault, f"/keys/{name}/versions")
    emit([az_key_item(i) for i in items[:maxresults]], output, query)


@app.command("list-deleted")
def list_deleted(
    vault_name: Annotated[str, typer.Option("--vault-name")],
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """List deleted keys that can still be recovered or purged."""
    emit([az_key_item(i) for i in client(state_dir, server).vault_pages(vault_name, "/deletedkeys")], output, query)


@app.command("show-deleted")
def show_deleted(
    vault_name: VaultOpt = None, name: NameOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Show a deleted key."""
    vault, name, _ = target(vault_name, name, ident)
    emit(az_key(client(state_dir, server).vault(vault, "GET", f"/deletedkeys/{name}")), output, query)


@app.command("set-attributes")
def set_attributes(
    vault_name: VaultOpt = None, name: NameOpt = None, version: VersionOpt = None, ident: IdOpt = None,
    enabled: Annotated[str | None, three_state_option("--enabled", "Enable or disable the version:")] = None,
    expires: Annotated[str | None, typer.Option("--expires")] = None,
    not_before: Annotated[str | None, typer.Option("--not-before")] = None,
    ops: OpsOpt = None,
    tags: TagsOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Update a key version's attributes, operations or tags."""
    vault, name, version = target(vault_name, name, ident, version)
    body: dict[str, Any] = {"attributes": _attrs(None, expires, not_before, enabled)}
    if ops:
        body["key_ops"] = ops
    if tags is not None:
        body["tags"] = parse_tags(tags)
    emit(az_key(client(state_dir, server).vault(vault, "PATCH", f"/keys/{name}/{version}", json=body)), output, query)


@app.command("delete")
def delete(
    vault_name: VaultOpt = None, name: NameOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Delete a key (all versions; soft delete)."""
    vault, name, _ = target(vault_name, name, ident)
    emit(az_key(client(state_dir, server).vault(vault, "DELETE", f"/keys/{name}")), output, query)


@app.command("recover")
def recover(
    vault_name: VaultOpt = None, name: NameOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Recover a deleted key."""
    vault, name, _ = target(vault_name, name, ident)
    emit(az_key(client(state_dir, server).vault(vault, "POST", f"/deletedkeys/{name}/recover")), output, query)


@app.command("purge")
def purge(
    vault_name: VaultOpt = None, name: NameOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None,
) -> None:
    """Permanently delete a deleted key."""
    vault, name, _ = target(vault_name, name, ident)
    client(state_dir, server).vault(vault, "DELETE", f"/deletedkeys/{name}")


@app.command("backup")
def backup(
    file: Annotated[Path, typer.Option("--file", "-f", help="File to write the backup blob to; must not exist.")],
    vault_name: VaultOpt = None, name: NameOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None,
) -> None:
    """Back up every version of a key into an encrypted blob."""
    vault, name, _ = target(vault_name, name, ident)
    if file.exists():
        raise CLIError(f"File {file} already exists.", "InvalidArgumentValue")
    blob = client(state_dir, server).vault(vault, "POST", f"/keys/{name}/backup")["value"]
    write_file_atomically(file, _from_b64url(blob) or b"", mode=0o600)


@app.command("restore")
def restore(
    file: Annotated[Path, typer.Option("--file", "-f", help="Backup blob written by `key backup`.")],
    vault_name: Annotated[str, typer.Option("--vault-name")],
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Restore a backed-up key into a vault."""
    try:
        blob = _b64url(file.read_bytes())
    except OSError as exc:
        raise CLIError(f"cannot read {file}: {exc.strerror}", "InvalidArgumentValue") from None
    emit(az_key(client(state_dir, server).vault(vault_name, "POST", "/keys/restore", json={"value": blob})), output, query)


@app.command("rotate")
def rotate(
    vault_name: VaultOpt = None, name: NameOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Make a new version of the key now (same type, size, operations)."""
    vault, name, _ = target(vault_name, name, ident)
    emit(az_key(client(state_dir, server).vault(vault, "POST", f"/keys/{name}/rotate")), output, query)


# -- rotation policy --------------------------------------------------------------------


def az_rotation_policy(p: dict[str, Any]) -> dict[str, Any]:
    attrs = p.get("attributes") or {}
    actions = []
    for a in p.get("lifetimeActions") or []:
        trig = a.get("trigger") or {}
        actions.append({"action": (a.get("action") or {}).get("type"), "timeAfterCreate": trig.get("timeAfterCreate"),
                        "timeBeforeExpiry": trig.get("timeBeforeExpiry")})
    return {"createdOn": iso(attrs.get("created")), "expiresIn": attrs.get("expiryTime"), "id": p.get("id"),
            "lifetimeActions": actions, "updatedOn": iso(attrs.get("updated"))}


def rest_rotation_policy(value: Any) -> dict[str, Any]:
    """az's --value: the REST shape, or az's own (expiresIn, lifetimeActions[{action, timeAfterCreate...}])."""
    if not isinstance(value, dict):
        raise CLIError("--value: a rotation policy must be a JSON object", "InvalidArgumentValue")
    if "lifetimeActions" in value and all(isinstance(a, dict) and "trigger" in a for a in value["lifetimeActions"] or []):
        return value
    actions = []
    for a in value.get("lifetimeActions") or value.get("lifetime_actions") or []:
        trig = {k: a[s] for k, s in (("timeAfterCreate", "timeAfterCreate"), ("timeBeforeExpiry", "timeBeforeExpiry")) if a.get(s)}
        actions.append({"trigger": trig, "action": {"type": a.get("action") or a.get("type")}})
    out: dict[str, Any] = {"lifetimeActions": actions, "attributes": {}}
    expiry = value.get("expiresIn") or (value.get("attributes") or {}).get("expiryTime")
    if expiry:
        out["attributes"]["expiryTime"] = expiry
    return out


@rotation_app.command("show")
def rotation_show(
    vault_name: VaultOpt = None, name: NameOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Show a key's rotation policy."""
    vault, name, _ = target(vault_name, name, ident)
    emit(az_rotation_policy(client(state_dir, server).vault(vault, "GET", f"/keys/{name}/rotationpolicy")), output, query)


@rotation_app.command("update")
def rotation_update(
    value: Annotated[str, typer.Option("--value", help="The policy: JSON or @file.")],
    vault_name: VaultOpt = None, name: NameOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Set a key's rotation policy (Rotate/Notify lifetime actions, expiryTime)."""
    vault, name, _ = target(vault_name, name, ident)
    body = rest_rotation_policy(_json_arg(value, "--value"))
    result = client(state_dir, server).vault(vault, "PUT", f"/keys/{name}/rotationpolicy", json=body)
    emit(az_rotation_policy(result), output, query)


# -- cryptographic operations ------------------------------------------------------------

AlgOpt = Annotated[str, typer.Option("--algorithm", "-a", help="The algorithm, e.g. RSA-OAEP-256, A256GCM, RS256, ES256.")]
DataTypeOpt = Annotated[
    str, typer.Option("--data-type", help="base64 or plaintext: how --value (encrypt) / the result (decrypt) is given.")
]


def _hex(data: str | None) -> str | None:
    raw = _from_b64url(data)
    return raw.hex() if raw is not None else None


@app.command("encrypt")
def encrypt(
    value: Annotated[str, typer.Option("--value", help="The data to encrypt.")],
    algorithm: AlgOpt,
    vault_name: VaultOpt = None, name: NameOpt = None, version: VersionOpt = None, ident: IdOpt = None,
    data_type: DataTypeOpt = "base64",
    iv: Annotated[str | None, typer.Option("--iv", help="Hex IV (AES-CBC).")] = None,
    aad: Annotated[str | None, typer.Option("--aad", help="Hex additional authenticated data (AES-GCM).")] = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Encrypt data with a key; the result is base64, iv/tag/aad hex (as az prints them)."""
    vault, name, version = target(vault_name, name, ident, version)
    plain = _b64(value, "--value") if data_type == "base64" else value.encode()
    body: dict[str, Any] = {"alg": algorithm, "value": _b64url(plain)}
    if iv:
        body["iv"] = _b64url(bytes.fromhex(iv))
    if aad:
        body["aad"] = _b64url(bytes.fromhex(aad))
    r = client(state_dir, server).vault(vault, "POST", f"/keys/{name}/{version}/encrypt", json=body)
    emit({"aad": _hex(r.get("aad")), "algorithm": algorithm, "iv": _hex(r.get("iv")), "kid": r.get("kid"),
          "result": base64.b64encode(_from_b64url(r["value"]) or b"").decode(), "tag": _hex(r.get("tag"))}, output, query)


@app.command("decrypt")
def decrypt(
    value: Annotated[str, typer.Option("--value", help="Base64 ciphertext.")],
    algorithm: AlgOpt,
    vault_name: VaultOpt = None, name: NameOpt = None, version: VersionOpt = None, ident: IdOpt = None,
    data_type: DataTypeOpt = "base64",
    iv: Annotated[str | None, typer.Option("--iv", help="Hex IV (AES).")] = None,
    aad: Annotated[str | None, typer.Option("--aad", help="Hex additional authenticated data (AES-GCM).")] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Hex authentication tag (AES-GCM).")] = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Decrypt data with a key."""
    vault, name, version = target(vault_name, name, ident, version)
    body: dict[str, Any] = {"alg": algorithm, "value": _b64url(_b64(value, "--value"))}
    for field, raw in (("iv", iv), ("aad", aad), ("tag", tag)):
        if raw:
            body[field] = _b64url(bytes.fromhex(raw))
    r = client(state_dir, server).vault(vault, "POST", f"/keys/{name}/{version}/decrypt", json=body)
    plain = _from_b64url(r["value"]) or b""
    result = base64.b64encode(plain).decode() if data_type == "base64" else plain.decode("utf-8", "replace")
    emit({"algorithm": algorithm, "kid": r.get("kid"), "result": result}, output, query)


@app.command("sign")
def sign(
    digest: Annotated[str, typer.Option("--digest", help="Base64 digest of the data (the caller hashes).")],
    algorithm: AlgOpt,
    vault_name: VaultOpt = None, name: NameOpt = None, version: VersionOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Sign a digest with a key."""
    vault, name, version = target(vault_name, name, ident, version)
    body = {"alg": algorithm, "value": _b64url(_b64(digest, "--digest"))}
    r = client(state_dir, server).vault(vault, "POST", f"/keys/{name}/{version}/sign", json=body)
    emit({"algorithm": algorithm, "kid": r.get("kid"),
          "signature": base64.b64encode(_from_b64url(r["value"]) or b"").decode()}, output, query)


@app.command("verify")
def verify(
    digest: Annotated[str, typer.Option("--digest", help="Base64 digest that was signed.")],
    signature: Annotated[str, typer.Option("--signature", help="Base64 signature.")],
    algorithm: AlgOpt,
    vault_name: VaultOpt = None, name: NameOpt = None, version: VersionOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Verify a signature with a key."""
    vault, name, version = target(vault_name, name, ident, version)
    body = {"alg": algorithm, "digest": _b64url(_b64(digest, "--digest")), "value": _b64url(_b64(signature, "--signature"))}
    r = client(state_dir, server).vault(vault, "POST", f"/keys/{name}/{version}/verify", json=body)
    emit({"algorithm": algorithm, "isValid": r.get("value")}, output, query)
