"""`strongroom ad ...` (az ad): app registrations and service principals with secrets, certificates
and federated credentials (the legacy path next to managed identities; it must keep working).

Talks to the server's Graph-shaped endpoints (`/v1.0/applications`, `/v1.0/servicePrincipals`).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives import serialization

from strongroom.cli.client import Client, CLIError
from strongroom.cli.common import ServerOpt, StateDirOpt, client
from strongroom.cli.output import OutputFormat, OutputOpt, QueryOpt, emit
from strongroom.cli.role import API_VERSION as AUTHZ_API_VERSION
from strongroom.cli.role import AUTHZ, resolve_role
from strongroom.identity.certs import CertificateError, load_certificate, self_signed

app = typer.Typer(help="App registrations and service principals (az ad).", no_args_is_help=True)
sp_app = typer.Typer(help="Service principals (az ad sp).", no_args_is_help=True)
app_app = typer.Typer(help="App registrations (az ad app).", no_args_is_help=True)
cred_app = typer.Typer(help="Password and certificate credentials of an app.", no_args_is_help=True)
fic_app = typer.Typer(help="Federated identity credentials of an app.", no_args_is_help=True)
app.add_typer(sp_app, name="sp")
app.add_typer(app_app, name="app")
app_app.add_typer(cred_app, name="credential")
app_app.add_typer(fic_app, name="federated-credential")

CREDENTIALS_WARNING = (
    "The output includes credentials that you must protect. Be sure that you do not include these credentials in "
    "your code or check the credentials into your source control."
)
IdOpt = Annotated[str, typer.Option("--id", help="appId or object id of the application.")]
YearsOpt = Annotated[int, typer.Option("--years", min=1, max=100, help="Years the credential is valid.")]
CertOpt = Annotated[
    str | None, typer.Option("--cert", help="A PEM or DER public certificate, or @<file> to read it from a file.")
]
CreateCertOpt = Annotated[bool, typer.Option("--create-cert", help="Create a self-signed certificate and register it.")]


def _quote(value: str) -> str:
    return value.replace("'", "''")


def _value_or_file(value: str) -> str:
    """az's `@file` convention."""
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            return path.read_text()
        except OSError as exc:
            raise CLIError(f"cannot read {path}: {exc.strerror}", "InvalidArgumentValue") from None
    return value


def _find_application(c: Client, ident: str) -> dict[str, Any]:
    return c.graph("GET", f"/v1.0/applications/{ident}")


def _end(years: int) -> str:
    return (datetime.now(UTC) + timedelta(days=365 * years)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _set_certificate(c: Client, app_obj: dict[str, Any], cert_text: str, years: int, append: bool) -> None:
    try:
        cert = load_certificate(cert_text)
    except CertificateError as exc:
        raise CLIError(f"--cert: {exc}", "InvalidArgumentValue") from None
    der = cert.public_bytes(serialization.Encoding.DER)
    new = {"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.b64encode(der).decode(), "endDateTime": _end(years)}
    keep = [{"keyId": k["keyId"]} for k in app_obj.get("keyCredentials", [])] if append else []
    c.graph("PATCH", f"/v1.0/applications/{app_obj['id']}", json={"keyCredentials": [*keep, new]})


def _create_certificate(c: Client, app_obj: dict[str, Any], years: int, append: bool) -> str:
    """az writes the new key and certificate to a PEM file in the home directory and prints its path."""
    pem, cert = self_signed(app_obj["displayName"], years)
    fd, path = tempfile.mkstemp(suffix=".pem", prefix="tmp", dir=Path.home())
    with os.fdopen(fd, "wb") as f:  # mkstemp creates it 0600
        f.write(pem)
    _set_certificate(c, app_obj, cert.public_bytes(serialization.Encoding.PEM).decode(), years, append)
    return path


def _reset_password(c: Client, app_obj: dict[str, Any], years: int, append: bool, display_name: str | None) -> str:
    if not append:
        for cred in app_obj.get("passwordCredentials", []):
            c.graph("POST", f"/v1.0/applications/{app_obj['id']}/removePassword", json={"keyId": cred["keyId"]})
    spec: dict[str, Any] = {"endDateTime": _end(years)}
    if display_name:
        spec["displayName"] = display_name
    added = c.graph("POST", f"/v1.0/applications/{app_obj['id']}/addPassword", json={"passwordCredential": spec})
    return added["secretText"]


def _credentials(
    c: Client, app_obj: dict[str, Any], *, cert: str | None, create_cert: bool, years: int, append: bool,
    display_name: str | None = None,
) -> dict[str, Any]:
    """Set a password (default) or certificate credential; returns az's output fields for it."""
    if create_cert:
        return {"password": None, "fileWithCertAndPrivateKey": _create_certificate(c, app_obj, years, append)}
    if cert is not None:
        _set_certificate(c, app_obj, _value_or_file(cert), years, append)
        return {"password": None}
    return {"password": _reset_password(c, app_obj, years, append, display_name)}


def _assign_roles(c: Client, app_id: str, role: str, scopes: list[str]) -> None:
    """az's --role/--scopes: one assignment of `role` per scope for the new service principal."""
    principal_id = c.graph("GET", f"/v1.0/servicePrincipals/{app_id}")["id"]
    for scope in scopes:
        scope = scope.rstrip("/")
        role_def = resolve_role(c, role, scope)
        print(f"Creating '{role}' role assignment under scope '{scope}'", file=sys.stderr)
        body = {"properties": {"roleDefinitionId": role_def["id"], "principalId": principal_id, "principalType": "ServicePrincipal"}}
        c.arm("PUT", f"{scope}/{AUTHZ}/roleAssignments/{uuid.uuid4()}", params={"api-version": AUTHZ_API_VERSION}, json=body)


# -- ad sp -------------------------------------------------------------------------------------


@sp_app.command("create-for-rbac")
def create_for_rbac(
    name: Annotated[str | None, typer.Option("--name", "-n", help="Display name of the app (default: azure-cli-<time>).")] = None,
    cert: CertOpt = None,
    create_cert: CreateCertOpt = False,
    years: YearsOpt = 1,
    role: Annotated[str | None, typer.Option("--role", help="Role to assign at each of --scopes (none by default).")] = None,
    scopes: Annotated[list[str] | None, typer.Option("--scopes", help="Space-separated scopes for --role.")] = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Create an app registration and its service principal with a password (or certificate) credential.

    With --role and --scopes it is also assigned that role at each scope (az makes no assignment otherwise).
    Running it again with the same --name resets the credentials of the existing app, as az does.
    """
    if bool(role) != bool(scopes):
        raise CLIError("usage error: To create role assignments, specify both --role and --scopes.", "InvalidArgumentValue")
    c = client(state_dir, server)
    name = name or datetime.now().strftime("azure-cli-%Y-%m-%d-%H-%M-%S")
    found = c.graph("GET", "/v1.0/applications", params={"$filter": f"displayName eq '{_quote(name)}'"})["value"]
    if found:
        app_obj = found[0]
        print(f"Found an existing application instance: (id) {app_obj['id']}. We will patch it.", file=sys.stderr)
    else:
        app_obj = c.graph("POST", "/v1.0/applications", json={"displayName": name})
    creds = _credentials(c, app_obj, cert=cert, create_cert=create_cert, years=years, append=False)
    if role and scopes:
        _assign_roles(c, app_obj["appId"], role, scopes)
    print(CREDENTIALS_WARNING, file=sys.stderr)
    result = {"appId": app_obj["appId"], "displayName": app_obj["displayName"], **creds, "tenant": c.tenant_id or c.metadata()["tenantId"]}
    emit(dict(sorted(result.items())), output, query)


@sp_app.command("list")
def sp_list(
    display_name: Annotated[str | None, typer.Option("--display-name", help="Only this display name.")] = None,
    filter_: Annotated[str | None, typer.Option("--filter", help="OData filter, e.g. \"appId eq '...'\".")] = None,
    all_: Annotated[bool, typer.Option("--all", help="List all (always the case here).")] = False,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """List service principals, managed identities' included."""
    c = client(state_dir, server)
    expr = filter_ or (f"displayName eq '{_quote(display_name)}'" if display_name else None)
    params = {"$filter": expr} if expr else {}
    emit(c.graph("GET", "/v1.0/servicePrincipals", params=params)["value"], output, query)


@sp_app.command("show")
def sp_show(
    id_: Annotated[str, typer.Option("--id", help="appId or object id of the service principal.")],
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Show a service principal."""
    emit(client(state_dir, server).graph("GET", f"/v1.0/servicePrincipals/{id_}"), output, query)


@sp_app.command("delete")
def sp_delete(
    id_: Annotated[str, typer.Option("--id", help="appId or object id of the service principal.")],
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
) -> None:
    """Delete a service principal together with its app registration."""
    client(state_dir, server).graph("DELETE", f"/v1.0/servicePrincipals/{id_}")


# -- ad app --------------------------------------------------------------------------------------


@app_app.command("list")
def app_list(
    display_name: Annotated[str | None, typer.Option("--display-name", help="Only this display name.")] = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """List app registrations."""
    c = client(state_dir, server)
    params = {"$filter": f"displayName eq '{_quote(display_name)}'"} if display_name else {}
    emit(c.graph("GET", "/v1.0/applications", params=params)["value"], output, query)


@app_app.command("show")
def app_show(
    id_: IdOpt, state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None
) -> None:
    """Show an app registration."""
    app_obj = _find_application(client(state_dir, server), id_)
    app_obj.pop("@odata.context", None)
    emit(app_obj, output, query)


@app_app.command("delete")
def app_delete(id_: IdOpt, state_dir: StateDirOpt = None, server: ServerOpt = None) -> None:
    """Delete an app registration (and its service principal and federated credentials)."""
    c = client(state_dir, server)
    c.graph("DELETE", f"/v1.0/applications/{_find_application(c, id_)['id']}")


@cred_app.command("reset")
def credential_reset(
    id_: IdOpt,
    cert: CertOpt = None,
    create_cert: CreateCertOpt = False,
    append: Annotated[bool, typer.Option("--append", help="Add the credential instead of replacing the existing ones.")] = False,
    years: YearsOpt = 1,
    display_name: Annotated[str | None, typer.Option("--display-name", help="Name of a new password.")] = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Reset (or with --append add) an app's password or certificate credential."""
    c = client(state_dir, server)
    app_obj = _find_application(c, id_)
    creds = _credentials(c, app_obj, cert=cert, create_cert=create_cert, years=years, append=append, display_name=display_name)
    print(CREDENTIALS_WARNING, file=sys.stderr)
    emit(dict(sorted({"appId": app_obj["appId"], **creds, "tenant": c.tenant_id or c.metadata()["tenantId"]}.items())), output, query)


@cred_app.command("list")
def credential_list(
    id_: IdOpt,
    cert: Annotated[bool, typer.Option("--cert", help="List certificate credentials instead of passwords.")] = False,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """List an app's password (or certificate) credential metadata; values are never retrievable."""
    app_obj = _find_application(client(state_dir, server), id_)
    emit(app_obj["keyCredentials" if cert else "passwordCredentials"], output, query)


# -- ad app federated-credential ------------------------------------------------------------------


@fic_app.command("create")
def fic_create(
    id_: IdOpt,
    parameters: Annotated[
        str, typer.Option("--parameters", help="JSON {name, issuer, subject, audiences, description} or @<file>.")
    ],
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Create a federated identity credential on an app."""
    c = client(state_dir, server)
    try:
        body = json.loads(_value_or_file(parameters))
    except ValueError:
        raise CLIError("--parameters: not valid JSON", "InvalidArgumentValue") from None
    if isinstance(body, dict):
        body.setdefault("audiences", ["api://AzureADTokenExchange"])
    app_obj = _find_application(c, id_)
    emit(c.graph("POST", f"/v1.0/applications/{app_obj['id']}/federatedIdentityCredentials", json=body), output, query)


@fic_app.command("list")
def fic_list(
    id_: IdOpt, state_dir: StateDirOpt = None, server: ServerOpt = None, output: OutputOpt = OutputFormat.json, query: QueryOpt = None
) -> None:
    """List an app's federated identity credentials."""
    c = client(state_dir, server)
    app_obj = _find_application(c, id_)
    emit(c.graph("GET", f"/v1.0/applications/{app_obj['id']}/federatedIdentityCredentials")["value"], output, query)


FicIdOpt = Annotated[str, typer.Option("--federated-credential-id", help="Id or name of the federated credential.")]


@fic_app.command("show")
def fic_show(
    id_: IdOpt,
    federated_credential_id: FicIdOpt,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Show a federated identity credential of an app."""
    c = client(state_dir, server)
    app_obj = _find_application(c, id_)
    emit(c.graph("GET", f"/v1.0/applications/{app_obj['id']}/federatedIdentityCredentials/{federated_credential_id}"), output, query)


@fic_app.command("delete")
def fic_delete(id_: IdOpt, federated_credential_id: FicIdOpt, state_dir: StateDirOpt = None, server: ServerOpt = None) -> None:
    """Delete a federated identity credential of an app."""
    c = client(state_dir, server)
    app_obj = _find_application(c, id_)
    c.graph("DELETE", f"/v1.0/applications/{app_obj['id']}/federatedIdentityCredentials/{federated_credential_id}")
