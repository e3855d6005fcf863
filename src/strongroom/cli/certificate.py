"""`strongroom keyvault certificate ...` (az keyvault certificate ...).

Policies are taken in az's shape (`keyProperties`, `x509CertificateProperties`,
... as `get-default-policy` prints it) or in Key Vault's REST shape
(`key_props`, `x509_props`, ...); output follows az's certificate transforms.
"""

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
    three_state,
    three_state_option,
)
from strongroom.cli.key import _json_arg
from strongroom.cli.output import OutputFormat, OutputOpt, QueryOpt, emit
from strongroom.util.files import write_file_atomically

app = typer.Typer(help="Manage certificates (az keyvault certificate).", no_args_is_help=True)
issuer_app = typer.Typer(help="Manage certificate issuers (az keyvault certificate issuer).", no_args_is_help=True)
contact_app = typer.Typer(help="Manage certificate contacts (az keyvault certificate contact).", no_args_is_help=True)
app.add_typer(issuer_app, name="issuer")
app.add_typer(contact_app, name="contact")

VaultOpt = Annotated[str | None, typer.Option("--vault-name", help="Name of the vault.")]
NameOpt = Annotated[str | None, typer.Option("--name", "-n", help="Name of the certificate.")]
IdOpt = Annotated[str | None, typer.Option("--id", help="Id of the certificate (https://<vault>.vault.../certificates/<name>[/<version>]).")]
VersionOpt = Annotated[str | None, typer.Option("--version", "-v", help="Certificate version; default: latest.")]

DEFAULT_POLICY: dict[str, Any] = {
    "issuerParameters": {"certificateTransparency": None, "name": "Self"},
    "keyProperties": {"curve": None, "exportable": True, "keySize": 2048, "keyType": "RSA", "reuseKey": True},
    "lifetimeActions": [{"action": {"actionType": "AutoRenew"}, "trigger": {"daysBeforeExpiry": 90}}],
    "secretProperties": {"contentType": "application/x-pkcs12"},
    "x509CertificateProperties": {
        "keyUsage": ["cRLSign", "dataEncipherment", "digitalSignature", "keyEncipherment", "keyAgreement", "keyCertSign"],
        "subject": "CN=CLIGetDefaultPolicy",
        "validityInMonths": 12,
    },
}


def target(vault_name: str | None, name: str | None, ident: str | None, version: str | None = None) -> tuple[str, str, str]:
    return object_target("certificates", vault_name, name, ident, version)


# -- policy shapes ------------------------------------------------------------------------


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def rest_policy(p: Any) -> dict[str, Any]:
    """A policy in Key Vault's REST shape, from az's shape or the REST shape itself."""
    if not isinstance(p, dict):
        raise CLIError("--policy: a certificate policy must be a JSON object", "InvalidArgumentValue")
    if any(k in p for k in ("key_props", "x509_props", "secret_props", "issuer", "lifetime_actions")):
        return p
    out: dict[str, Any] = {}
    issuer = p.get("issuerParameters") or {}
    if issuer:
        out["issuer"] = _drop_none({"name": issuer.get("name"), "cty": issuer.get("certificateType"),
                                    "cert_transparency": issuer.get("certificateTransparency")})
    kp = p.get("keyProperties") or {}
    if kp:
        out["key_props"] = _drop_none({"exportable": kp.get("exportable"), "kty": kp.get("keyType"), "key_size": kp.get("keySize"),
                                       "reuse_key": kp.get("reuseKey"), "crv": kp.get("curve")})
    sp = p.get("secretProperties") or {}
    if sp:
        out["secret_props"] = _drop_none({"contentType": sp.get("contentType")})
    xp = p.get("x509CertificateProperties") or {}
    if xp:
        sans = xp.get("subjectAlternativeNames") or {}
        out["x509_props"] = _drop_none({
            "subject": xp.get("subject"), "ekus": xp.get("ekus"), "key_usage": xp.get("keyUsage"),
            "validity_months": xp.get("validityInMonths"),
            "sans": _drop_none({"dns_names": sans.get("dnsNames"), "emails": sans.get("emails"), "upns": sans.get("upns")}) or None,
        })
    if p.get("lifetimeActions") is not None:
        out["lifetime_actions"] = [
            {"action": {"action_type": (a.get("action") or {}).get("actionType")},
             "trigger": _drop_none({"days_before_expiry": (a.get("trigger") or {}).get("daysBeforeExpiry"),
                                    "lifetime_percentage": (a.get("trigger") or {}).get("lifetimePercentage")})}
            for a in p["lifetimeActions"]
        ]
    if isinstance(p.get("attributes"), dict) and p["attributes"].get("enabled") is not None:
        out["attributes"] = {"enabled": p["attributes"]["enabled"]}
    return out


def az_policy(p: dict[str, Any] | None) -> dict[str, Any] | None:
    if p is None:
        return None
    attrs, kp, xp = p.get("attributes") or {}, p.get("key_props") or {}, p.get("x509_props") or {}
    sans = xp.get("sans") or {}
    return {
        "attributes": {"created": iso(attrs.get("created")), "enabled": attrs.get("enabled"), "expires": None,
                       "notBefore": None, "recoveryLevel": None, "updated": iso(attrs.get("updated"))},
        "id": p.get("id"),
        "issuerParameters": {"certificateTransparency": (p.get("issuer") or {}).get("cert_transparency"),
                             "certificateType": (p.get("issuer") or {}).get("cty"), "name": (p.get("issuer") or {}).get("name")},
        "keyProperties": {"curve": kp.get("crv"), "exportable": kp.get("exportable"), "keySize": kp.get("key_size"),
                          "keyType": kp.get("kty"), "reuseKey": kp.get("reuse_key")},
        "lifetimeActions": [
            {"action": {"actionType": a["action"]["action_type"]},
             "trigger": {"daysBeforeExpiry": a["trigger"].get("days_before_expiry"),
                         "lifetimePercentage": a["trigger"].get("lifetime_percentage")}}
            for a in p.get("lifetime_actions") or []
        ],
        "secretProperties": {"contentType": (p.get("secret_props") or {}).get("contentType")},
        "x509CertificateProperties": {
            "ekus": xp.get("ekus"), "keyUsage": xp.get("key_usage"), "subject": xp.get("subject"),
            "subjectAlternativeNames": {"dnsNames": sans.get("dns_names"), "emails": sans.get("emails"), "upns": sans.get("upns")},
            "validityInMonths": xp.get("validity_months"),
        },
    }


def _thumbprint(x5t: str | None) -> tuple[str | None, str | None]:
    if not x5t:
        return None, None
    raw = base64.urlsafe_b64decode(x5t + "=" * (-len(x5t) % 4))
    return base64.b64encode(raw).decode(), raw.hex().upper()


def _cert_attributes(a: dict[str, Any]) -> dict[str, Any]:
    return {"created": iso(a.get("created")), "enabled": a.get("enabled"), "expires": iso(a.get("exp")),
            "notBefore": iso(a.get("nbf")), "recoveryLevel": a.get("recoveryLevel"), "updated": iso(a.get("updated"))}


def _deleted(b: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    if "recoveryId" in b:
        out.update({"deletedDate": iso(b.get("deletedDate")), "recoveryId": b["recoveryId"],
                    "scheduledPurgeDate": iso(b.get("scheduledPurgeDate"))})
    return out


def az_certificate_item(item: dict[str, Any]) -> dict[str, Any]:
    tb64, thex = _thumbprint(item.get("x5t"))
    out = {"attributes": _cert_attributes(item.get("attributes", {})), "id": item["id"], "name": item["id"].split("/")[4],
           "subject": "", "tags": item.get("tags"), "x509Thumbprint": tb64, "x509ThumbprintHex": thex}
    if "recoveryId" in item:
        del out["subject"]
    return _deleted(item, out)


def az_certificate(b: dict[str, Any]) -> dict[str, Any]:
    """A CertificateBundle as `az keyvault certificate show` prints it."""
    out = az_certificate_item(b)
    out.pop("subject", None)
    out.update({"cer": b.get("cer"), "contentType": b.get("contentType"), "kid": b.get("kid"),
                "policy": az_policy(b.get("policy")), "sid": b.get("sid")})
    return _deleted(b, out)


def az_operation(op: dict[str, Any]) -> dict[str, Any]:
    issuer = op.get("issuer") or {}
    return {
        "cancellationRequested": op.get("cancellation_requested"), "csr": op.get("csr"), "error": op.get("error"),
        "id": op.get("id"), "issuerParameters": {"certificateTransparency": issuer.get("cert_transparency"),
                                                 "certificateType": issuer.get("cty"), "name": issuer.get("name")},
        "name": op["id"].split("/")[4] if op.get("id") else None, "requestId": op.get("request_id"),
        "status": op.get("status"), "statusDetails": op.get("status_details"), "target": op.get("target"),
    }


# -- commands ----------------------------------------------------------------------------


@app.command("get-default-policy")
def get_default_policy(output: OutputOpt = OutputFormat.json, query: QueryOpt = None) -> None:
    """Print az's default policy (self-signed, RSA 2048, 12 months), to edit and pass to `create --policy`."""
    emit(DEFAULT_POLICY, output, query)


@app.command("create")
def create(
    policy: Annotated[str, typer.Option("--policy", "-p", help="The policy: JSON or @file (az's or Key Vault's shape).")],
    vault_name: VaultOpt = None, name: NameOpt = None,
    disabled: Annotated[str | None, three_state_option("--disabled", "Create the certificate disabled:")] = None,
    validity: Annotated[int | None, typer.Option("--validity", help="Months of validity; overrides the policy's.")] = None,
    tags: TagsOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Create a certificate (a new version when it exists) and wait for the operation to finish."""
    vault, name, _ = target(vault_name, name, None)
    rest = rest_policy(_json_arg(policy, "--policy"))
    if validity is not None:
        rest.setdefault("x509_props", {})["validity_months"] = validity
    body: dict[str, Any] = {"policy": rest}
    if disabled is not None:
        body["attributes"] = {"enabled": not three_state(disabled, "--disabled")}
    if tags is not None:
        body["tags"] = parse_tags(tags)
    c = client(state_dir, server)
    op = c.vault(vault, "POST", f"/certificates/{name}/create", json=body)
    if op.get("status") == "inProgress" and (op.get("issuer") or {}).get("name", "").lower() != "unknown":
        op = c.vault(vault, "GET", f"/certificates/{name}/pending")
    emit(az_operation(op), output, query)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Option("--file", "-f", help="PFX or PEM file with the certificate and its private key.")],
    vault_name: VaultOpt = None, name: NameOpt = None,
    password: Annotated[str | None, typer.Option("--password", help="Password of the PFX or of the PEM's key.")] = None,
    policy: Annotated[str | None, typer.Option("--policy", "-p", help="Policy (JSON or @file), e.g. for PEM content type.")] = None,
    disabled: Annotated[str | None, three_state_option("--disabled", "Import the certificate disabled:")] = None,
    tags: TagsOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Import a certificate with its private key (PFX or PEM)."""
    vault, name, _ = target(vault_name, name, None)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CLIError(f"cannot read {file}: {exc.strerror}", "InvalidArgumentValue") from None
    value = data.decode() if data.lstrip().startswith(b"-----BEGIN") else base64.b64encode(data).decode()
    body: dict[str, Any] = {"value": value}
    if password is not None:
        body["pwd"] = password
    if policy is not None:
        body["policy"] = rest_policy(_json_arg(policy, "--policy"))
    elif value.startswith("-----BEGIN"):
        body["policy"] = {"secret_props": {"contentType": "application/x-pem-file"}}
    if disabled is not None:
        body["attributes"] = {"enabled": not three_state(disabled, "--disabled")}
    if tags is not None:
        body["tags"] = parse_tags(tags)
    emit(az_certificate(client(state_dir, server).vault(vault, "POST", f"/certificates/{name}/import", json=body)), output, query)


@app.command("show")
def show(
    vault_name: VaultOpt = None, name: NameOpt = None, version: VersionOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Show a certificate (public part, attributes, policy)."""
    vault, name, version = target(vault_name, name, ident, version)
    emit(az_certificate(client(state_dir, server).vault(vault, "GET", f"/certificates/{name}/{version}")), output, query)


@app.command("list")
def list_(
    vault_name: Annotated[str, typer.Option("--vault-name")],
    maxresults: Annotated[int | None, typer.Option("--maxresults")] = None,
    include_pending: Annotated[bool, typer.Option("--include-pending", help="Also certificates still pending.")] = False,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """List certificates."""
    items = client(state_dir, server).vault_pages(vault_name, "/certificates", {"includePending": str(include_pending).lower()})
    emit([az_certificate_item(i) for i in items[:maxresults]], output, query)


@app.command("list-versions")
def list_versions(
    vault_name: VaultOpt = None, name: NameOpt = None, ident: IdOpt = None,
    maxresults: Annotated[int | None, typer.Option("--maxresults")] = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """List the versions of a certificate."""
    vault, name, _ = target(vault_name, name, ident)
    items = client(state_dir, server).vault_pages(vault, f"/certificates/{name}/versions")
    emit([az_certificate_item(i) for i in items[:maxresults]], output, query)


@app.command("list-deleted")
def list_deleted(
    vault_name: Annotated[str, typer.Option("--vault-name")],
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """List deleted certificates that can still be recovered or purged."""
    emit([az_certificate_item(i) for i in client(state_dir, server).vault_pages(vault_name, "/deletedcertificates")], output, query)


@app.command("show-deleted")
def show_deleted(
    vault_name: VaultOpt = None, name: NameOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Show a deleted certificate."""
    vault, name, _ = target(vault_name, name, ident)
    emit(az_certificate(client(state_dir, server).vault(vault, "GET", f"/deletedcertificates/{name}")), output, query)


@app.command("download")
def download(
    file: Annotated[Path, typer.Option("--file", "-f", help="File to write the public certificate to; must not exist.")],
    vault_name: VaultOpt = None, name: NameOpt = None, version: VersionOpt = None, ident: IdOpt = None,
    encoding: Annotated[str, typer.Option("--encoding", "-e", help="PEM or DER.")] = "PEM",
    state_dir: StateDirOpt = None, server: ServerOpt = None,
) -> None:
    """Write the public certificate (no private key) to a file, PEM or DER."""
    vault, name, version = target(vault_name, name, ident, version)
    if encoding not in ("PEM", "DER"):
        raise CLIError("--encoding must be PEM or DER", "InvalidArgumentValue")
    if file.exists():
        raise CLIError(f"File {file} already exists.", "InvalidArgumentValue")
    cer = client(state_dir, server).vault(vault, "GET", f"/certificates/{name}/{version}").get("cer")
    if not cer:
        raise CLIError(f"certificate {name} has no issued version yet (its operation is pending)", "CertificateNotFound")
    der = base64.b64decode(cer)
    if encoding == "DER":
        data = der
    else:
        b64 = base64.b64encode(der).decode()
        data = ("-----BEGIN CERTIFICATE-----\n" + "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
                + "\n-----END CERTIFICATE-----\n").encode()
    write_file_atomically(file, data, mode=0o644)


@app.command("set-attributes")
def set_attributes(
    vault_name: VaultOpt = None, name: NameOpt = None, version: VersionOpt = None, ident: IdOpt = None,
    enabled: Annotated[str | None, three_state_option("--enabled", "Enable or disable the version:")] = None,
    policy: Annotated[str | None, typer.Option("--policy", "-p", help="Policy changes (JSON or @file).")] = None,
    tags: TagsOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Update a certificate version's enabled flag and tags, and its policy."""
    vault, name, version = target(vault_name, name, ident, version)
    body: dict[str, Any] = {}
    if enabled is not None:
        body["attributes"] = {"enabled": three_state(enabled, "--enabled")}
    if tags is not None:
        body["tags"] = parse_tags(tags)
    if policy is not None:
        body["policy"] = rest_policy(_json_arg(policy, "--policy"))
    emit(az_certificate(client(state_dir, server).vault(vault, "PATCH", f"/certificates/{name}/{version}", json=body)), output, query)


@app.command("delete")
def delete(
    vault_name: VaultOpt = None, name: NameOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Delete a certificate with its key and secret (soft delete)."""
    vault, name, _ = target(vault_name, name, ident)
    emit(az_certificate(client(state_dir, server).vault(vault, "DELETE", f"/certificates/{name}")), output, query)


@app.command("recover")
def recover(
    vault_name: VaultOpt = None, name: NameOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Recover a deleted certificate."""
    vault, name, _ = target(vault_name, name, ident)
    emit(az_certificate(client(state_dir, server).vault(vault, "POST", f"/deletedcertificates/{name}/recover")), output, query)


@app.command("purge")
def purge(
    vault_name: VaultOpt = None, name: NameOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None,
) -> None:
    """Permanently delete a deleted certificate, its key and its secret."""
    vault, name, _ = target(vault_name, name, ident)
    client(state_dir, server).vault(vault, "DELETE", f"/deletedcertificates/{name}")


@app.command("backup")
def backup(
    file: Annotated[Path, typer.Option("--file", "-f", help="File to write the backup blob to; must not exist.")],
    vault_name: VaultOpt = None, name: NameOpt = None, ident: IdOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None,
) -> None:
    """Back up a certificate (every version, policy, key and secret) into an encrypted blob."""
    vault, name, _ = target(vault_name, name, ident)
    if file.exists():
        raise CLIError(f"File {file} already exists.", "InvalidArgumentValue")
    blob = client(state_dir, server).vault(vault, "POST", f"/certificates/{name}/backup")["value"]
    write_file_atomically(file, base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4)), mode=0o600)


@app.command("restore")
def restore(
    file: Annotated[Path, typer.Option("--file", "-f", help="Backup blob written by `certificate backup`.")],
    vault_name: Annotated[str, typer.Option("--vault-name")],
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Restore a backed-up certificate into a vault."""
    try:
        blob = base64.urlsafe_b64encode(file.read_bytes()).decode().rstrip("=")
    except OSError as exc:
        raise CLIError(f"cannot read {file}: {exc.strerror}", "InvalidArgumentValue") from None
    emit(az_certificate(client(state_dir, server).vault(vault_name, "POST", "/certificates/restore", json={"value": blob})), output, query)


@app.command("pending-show")
def pending_show(
    vault_name: VaultOpt = None, name: NameOpt = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Show the certificate operation (az keyvault certificate pending show)."""
    vault, name, _ = target(vault_name, name, None)
    emit(az_operation(client(state_dir, server).vault(vault, "GET", f"/certificates/{name}/pending")), output, query)


# -- issuers ------------------------------------------------------------------------------

IssuerOpt = Annotated[str, typer.Option("--issuer-name", help="Name of the issuer.")]


def az_issuer(rec: dict[str, Any]) -> dict[str, Any]:
    attrs, creds, org = rec.get("attributes") or {}, rec.get("credentials") or {}, rec.get("org_details") or {}
    return {
        "attributes": {"created": iso(attrs.get("created")), "enabled": attrs.get("enabled"), "updated": iso(attrs.get("updated"))},
        "credentials": {"accountId": creds.get("account_id"), "password": None},
        "id": rec.get("id"),
        "organizationDetails": {"adminDetails": org.get("admin_details"), "id": org.get("id"), "zip": 0},
        "provider": rec.get("provider"),
    }


@issuer_app.command("create")
def issuer_create(
    vault_name: Annotated[str, typer.Option("--vault-name")],
    issuer_name: IssuerOpt,
    provider_name: Annotated[str, typer.Option("--provider-name", help="The provider, e.g. Strongroom (the instance CA), DigiCert.")],
    account_id: Annotated[str | None, typer.Option("--account-id")] = None,
    password: Annotated[str | None, typer.Option("--password")] = None,
    organization_id: Annotated[str | None, typer.Option("--organization-id")] = None,
    disabled: Annotated[str | None, three_state_option("--disabled", "Create the issuer disabled:")] = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Create a certificate issuer."""
    body: dict[str, Any] = {"provider": provider_name}
    if account_id is not None or password is not None:
        body["credentials"] = _drop_none({"account_id": account_id, "pwd": password})
    if organization_id is not None:
        body["org_details"] = {"id": organization_id, "admin_details": []}
    if disabled is not None:
        body["attributes"] = {"enabled": not three_state(disabled, "--disabled")}
    result = client(state_dir, server).vault(vault_name, "PUT", f"/certificates/issuers/{issuer_name}", json=body)
    emit(az_issuer(result), output, query)


@issuer_app.command("show")
def issuer_show(
    vault_name: Annotated[str, typer.Option("--vault-name")], issuer_name: IssuerOpt,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Show a certificate issuer."""
    emit(az_issuer(client(state_dir, server).vault(vault_name, "GET", f"/certificates/issuers/{issuer_name}")), output, query)


@issuer_app.command("list")
def issuer_list(
    vault_name: Annotated[str, typer.Option("--vault-name")],
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """List certificate issuers."""
    items = client(state_dir, server).vault_pages(vault_name, "/certificates/issuers")
    emit([{"id": i["id"], "provider": i.get("provider")} for i in items], output, query)


@issuer_app.command("delete")
def issuer_delete(
    vault_name: Annotated[str, typer.Option("--vault-name")], issuer_name: IssuerOpt,
    state_dir: StateDirOpt = None, server: ServerOpt = None,
) -> None:
    """Delete a certificate issuer."""
    client(state_dir, server).vault(vault_name, "DELETE", f"/certificates/issuers/{issuer_name}")


# -- contacts ------------------------------------------------------------------------------


def az_contacts(rec: dict[str, Any]) -> dict[str, Any]:
    return {"contactList": [{"emailAddress": c.get("email"), "name": c.get("name"), "phone": c.get("phone")}
                            for c in rec.get("contacts") or []], "id": rec.get("id")}


def _contacts(c: Any, vault: str) -> list[dict[str, Any]]:
    try:
        return c.vault(vault, "GET", "/certificates/contacts").get("contacts") or []
    except CLIError as exc:
        if exc.code == "ContactsNotFound":
            return []
        raise


@contact_app.command("add")
def contact_add(
    vault_name: Annotated[str, typer.Option("--vault-name")],
    email: Annotated[str, typer.Option("--email")],
    name: Annotated[str | None, typer.Option("--name")] = None,
    phone: Annotated[str | None, typer.Option("--phone")] = None,
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Add a contact to the vault's certificate contacts."""
    c = client(state_dir, server)
    contacts = [x for x in _contacts(c, vault_name) if x.get("email", "").lower() != email.lower()]
    contacts.append(_drop_none({"email": email, "name": name, "phone": phone}))
    emit(az_contacts(c.vault(vault_name, "PUT", "/certificates/contacts", json={"contacts": contacts})), output, query)


@contact_app.command("list")
def contact_list(
    vault_name: Annotated[str, typer.Option("--vault-name")],
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """List the vault's certificate contacts."""
    emit(az_contacts(client(state_dir, server).vault(vault_name, "GET", "/certificates/contacts")), output, query)


@contact_app.command("delete")
def contact_delete(
    vault_name: Annotated[str, typer.Option("--vault-name")],
    email: Annotated[str, typer.Option("--email")],
    state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None,
) -> None:
    """Remove a contact from the vault's certificate contacts."""
    c = client(state_dir, server)
    contacts = _contacts(c, vault_name)
    remaining = [x for x in contacts if x.get("email", "").lower() != email.lower()]
    if len(remaining) == len(contacts):
        raise CLIError(f"no contact with email '{email}'", "ContactNotFound")
    if remaining:
        result = c.vault(vault_name, "PUT", "/certificates/contacts", json={"contacts": remaining})
    else:
        result = c.vault(vault_name, "DELETE", "/certificates/contacts")
        result["contacts"] = []
    emit(az_contacts(result), output, query)
