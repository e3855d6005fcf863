"""A small Microsoft Graph slice for app registrations: /v1.0/applications and /v1.0/servicePrincipals.

Enough for `strongroom ad sp create-for-rbac`, `ad app credential reset` and `ad
app federated-credential ...`, with Graph's paths and JSON names. One deviation,
kept on purpose: an application and its service principal are created and
deleted together (the directory keeps them as one record), so there is no
separate `POST /servicePrincipals`. Only the instance administrator may call
these endpoints (token audience https://graph.microsoft.com).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from strongroom.errors import BadRequest, Conflict, NotFound
from strongroom.identity.certs import CertificateError, key_credential, load_certificate
from strongroom.identity.directory import Principal, new_client_secret, password_credential
from strongroom.identity.fic import FederatedCredential, validate
from strongroom.server import guards
from strongroom.server.guards import Guard, admin, route, runtime
from strongroom.server.http import JSON, json_body
from strongroom.server.runtime import Runtime
from strongroom.util.clock import now

GRAPH = "https://graph.microsoft.com/v1.0"
DEFAULT_PASSWORD_YEARS = 2  # Graph's addPassword default
# `az role assignment create --assignee <appId>` looks the service principal up by one of its names.
_SP_NAME = re.compile(r"^\s*servicePrincipalNames/any\(\s*(\w+)\s*:\s*\1\s+eq\s+'((?:[^']|'')*)'\s*\)\s*\Z")
_FILTER = re.compile(r"^\s*(displayName|appId|id)\s+eq\s+'((?:[^']|'')*)'\s*\Z")
_STARTSWITH = re.compile(r"^\s*startswith\(\s*displayName\s*,\s*'((?:[^']|'')*)'\s*\)\s*\Z")


def _iso(ts: int | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any, name: str) -> int | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"Invalid value specified for property '{name}' of resource 'PasswordCredential'.") from None
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp())


def _bad(message: str) -> BadRequest:
    return BadRequest("Request_BadRequest", message)


def _not_found(ident: str) -> NotFound:
    return NotFound(
        "Request_ResourceNotFound",
        f"Resource '{ident}' does not exist or one of its queried reference-property objects are not present.",
    )


def password_json(cred: dict[str, Any], secret: str | None = None) -> dict[str, Any]:
    return {
        "customKeyIdentifier": None,
        "displayName": cred.get("displayName"),
        "endDateTime": _iso(cred.get("end")),
        "hint": cred.get("hint"),
        "keyId": cred["keyId"],
        "secretText": secret,
        "startDateTime": _iso(cred.get("start")),
    }


def key_json(cred: dict[str, Any]) -> dict[str, Any]:
    return {
        "customKeyIdentifier": cred["thumbprint"],
        "displayName": cred.get("displayName"),
        "endDateTime": _iso(cred.get("end")),
        "key": None,
        "keyId": cred["keyId"],
        "startDateTime": _iso(cred.get("start")),
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    }


def application_json(p: Principal) -> dict[str, Any]:
    return {
        "id": p.app_object_id,
        "appId": p.client_id,
        "displayName": p.display_name,
        "createdDateTime": _iso(p.created),
        "signInAudience": "AzureADMyOrg",
        "keyCredentials": [key_json(c) for c in p.certificates],
        "passwordCredentials": [password_json(c) for c in p.secret_hashes],
    }


def service_principal_json(rt: Runtime, p: Principal) -> dict[str, Any]:
    mi = p.is_managed_identity
    return {
        "id": p.object_id,
        "appId": p.client_id,
        "displayName": p.display_name,
        "accountEnabled": True,
        "appOwnerOrganizationId": None if mi else rt.tenant.tenant_id,
        "servicePrincipalType": "ManagedIdentity" if mi else "Application",
        "servicePrincipalNames": [p.client_id] + ([p.resource_id] if mi and p.resource_id else []),
        "alternativeNames": ["isExplicit=True", p.resource_id] if mi else [],
        "keyCredentials": [key_json(c) for c in p.certificates],
        "passwordCredentials": [password_json(c) for c in p.secret_hashes],
    }


def fic_json(fic: FederatedCredential) -> dict[str, Any]:
    return {
        "id": fic.id,
        "name": fic.name,
        "issuer": fic.issuer,
        "subject": fic.subject,
        "audiences": fic.audiences,
        "description": fic.description,
    }


def _filtered(principals: list[Principal], expression: str | None, id_attr: str) -> list[Principal]:
    if not expression:
        return principals
    m = _FILTER.match(expression)
    if m:
        field, value = m.group(1), m.group(2).replace("''", "'")
        attr = {"displayName": "display_name", "appId": "client_id", "id": id_attr}[field]
        return [p for p in principals if str(getattr(p, attr) or "").lower() == value.lower()]
    m = _SP_NAME.match(expression)
    if m:
        name = m.group(2).replace("''", "'").lower()
        return [p for p in principals if name in (p.client_id.lower(), (p.resource_id or "").lower())]
    m = _STARTSWITH.match(expression)
    if m:
        prefix = m.group(1).replace("''", "'").lower()
        return [p for p in principals if p.display_name.lower().startswith(prefix)]
    raise _bad(f"Unsupported $filter expression: {expression}")


def _admin(request: Request) -> Runtime:
    """The route's guard admitted the instance administrator (Graph audience)."""
    rt = runtime(request)
    assert rt.identity is not None
    return rt


def _application(rt: Runtime, request: Request) -> Principal:
    ident = request.path_params["id"]
    app = rt.directory.application(ident)
    if app is None:
        raise _not_found(ident)
    return app


async def _save(rt: Runtime, p: Principal) -> None:
    await run_in_threadpool(rt.directory.save, p)


# -- applications ---------------------------------------------------------------


async def create_application(request: Request) -> Response:
    rt = _admin(request)
    body = await json_body(request)
    name = body.get("displayName") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise _bad("Property 'displayName' is required and must be 1 to 256 characters.")
    app = await run_in_threadpool(rt.directory.create_application, name)
    return JSON({"@odata.context": f"{GRAPH}/$metadata#applications/$entity", **application_json(app)}, status_code=201)


async def list_applications(request: Request) -> Response:
    rt = _admin(request)
    apps = _filtered(rt.directory.applications(), request.query_params.get("$filter"), "app_object_id")
    return JSON({"@odata.context": f"{GRAPH}/$metadata#applications", "value": [application_json(a) for a in apps]})


async def get_application(request: Request) -> Response:
    rt = _admin(request)
    return JSON({"@odata.context": f"{GRAPH}/$metadata#applications/$entity", **application_json(_application(rt, request))})


async def patch_application(request: Request) -> Response:
    """displayName and keyCredentials (the whole list, as Graph: entries naming an existing keyId without `key` keep it)."""
    rt = _admin(request)
    app = _application(rt, request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    if "displayName" in body:
        if not isinstance(body["displayName"], str) or not body["displayName"].strip():
            raise _bad("Property 'displayName' must be a non-empty string.")
        app.display_name = body["displayName"]
    if "keyCredentials" in body:
        app.certificates = _key_credentials(app, body["keyCredentials"])
    await _save(rt, app)
    return Response(status_code=204)


def _key_credentials(app: Principal, creds: Any) -> list[dict[str, Any]]:
    if not isinstance(creds, list):
        raise _bad("Property 'keyCredentials' must be an array.")
    existing = {c["keyId"]: c for c in app.certificates}
    out: list[dict[str, Any]] = []
    for c in creds:
        if not isinstance(c, dict):
            raise _bad("Each keyCredential must be an object.")
        if not c.get("key"):
            if c.get("keyId") not in existing:
                raise _bad("A keyCredential without 'key' must name an existing keyId.")
            out.append(existing[c["keyId"]])
            continue
        if c.get("type", "AsymmetricX509Cert") != "AsymmetricX509Cert" or c.get("usage", "Verify") != "Verify":
            raise _bad("Only keyCredentials of type 'AsymmetricX509Cert' with usage 'Verify' are supported.")
        try:
            cred = key_credential(load_certificate(str(c["key"])), c.get("displayName"))
        except CertificateError as exc:
            raise _bad(f"Invalid value specified for property 'key' of resource 'KeyCredential': {exc}.") from None
        end = _parse_time(c.get("endDateTime"), "endDateTime")
        if end is not None:
            cred["end"] = min(cred["end"], end)
        out.append(cred)
    return out


async def delete_application(request: Request) -> Response:
    rt = _admin(request)
    app = _application(rt, request)
    await _delete(rt, app)
    return Response(status_code=204)


async def _delete(rt: Runtime, p: Principal) -> None:
    assert rt.identity is not None
    await run_in_threadpool(rt.directory.remove, p, rt.identity.fics.removal_writes(p))


async def add_password(request: Request) -> Response:
    rt = _admin(request)
    app = _application(rt, request)
    body = await json_body(request)
    spec = body.get("passwordCredential", {}) if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        raise _bad("Property 'passwordCredential' must be an object.")
    end = _parse_time(spec.get("endDateTime"), "endDateTime")
    if end is None:
        end = now() + DEFAULT_PASSWORD_YEARS * 365 * 86400
    if end <= now():
        raise _bad("The endDateTime of a password credential must be in the future.")
    secret = new_client_secret()
    cred = password_credential(secret, spec.get("displayName"), end)
    app.secret_hashes.append(cred)
    await _save(rt, app)
    return JSON({"@odata.context": f"{GRAPH}/$metadata#microsoft.graph.passwordCredential", **password_json(cred, secret)})


async def remove_password(request: Request) -> Response:
    rt = _admin(request)
    app = _application(rt, request)
    body = await json_body(request)
    key_id = body.get("keyId") if isinstance(body, dict) else None
    if not any(c["keyId"] == key_id for c in app.secret_hashes):
        raise _not_found(str(key_id))
    app.secret_hashes = [c for c in app.secret_hashes if c["keyId"] != key_id]
    await _save(rt, app)
    return Response(status_code=204)


# -- federated identity credentials of applications ------------------------------------


async def create_app_fic(request: Request) -> Response:
    rt = _admin(request)
    assert rt.identity is not None
    app = _application(rt, request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    fic = validate(body.get("name", ""), body.get("issuer"), body.get("subject"), body.get("audiences"), body.get("description"))
    if rt.identity.fics.get(app, fic.name) is not None:
        raise Conflict("Request_MultipleObjectsWithSameKeyValue",
                       f"FederatedIdentityCredential with name {fic.name} already exists.")
    fic, _ = await run_in_threadpool(rt.identity.fics.put, app, fic)
    ctx = f"{GRAPH}/$metadata#applications('{app.app_object_id}')/federatedIdentityCredentials/$entity"
    return JSON({"@odata.context": ctx, **fic_json(fic)}, status_code=201)


async def list_app_fics(request: Request) -> Response:
    rt = _admin(request)
    assert rt.identity is not None
    app = _application(rt, request)
    return JSON({"value": [fic_json(f) for f in rt.identity.fics.list(app)]})


def _app_fic(rt: Runtime, request: Request) -> tuple[Principal, FederatedCredential]:
    assert rt.identity is not None
    app = _application(rt, request)
    fic = rt.identity.fics.get(app, request.path_params["fic"])
    if fic is None:
        raise _not_found(request.path_params["fic"])
    return app, fic


async def get_app_fic(request: Request) -> Response:
    rt = _admin(request)
    return JSON(fic_json(_app_fic(rt, request)[1]))


async def delete_app_fic(request: Request) -> Response:
    rt = _admin(request)
    assert rt.identity is not None
    app, fic = _app_fic(rt, request)
    await run_in_threadpool(rt.identity.fics.delete, app, fic)
    return Response(status_code=204)


# -- service principals -----------------------------------------------------------------


def _service_principal(rt: Runtime, request: Request) -> Principal:
    ident = request.path_params["id"]
    found = rt.directory.find(ident) if "/" not in ident else None
    if found is None:
        raise _not_found(ident)
    return found


async def list_service_principals(request: Request) -> Response:
    rt = _admin(request)
    sps = _filtered(rt.directory.principals(), request.query_params.get("$filter"), "object_id")
    return JSON({"@odata.context": f"{GRAPH}/$metadata#servicePrincipals", "value": [service_principal_json(rt, p) for p in sps]})


async def get_service_principal(request: Request) -> Response:
    rt = _admin(request)
    return JSON(service_principal_json(rt, _service_principal(rt, request)))


async def delete_service_principal(request: Request) -> Response:
    """Deletes the service principal together with its app registration (one record here)."""
    rt = _admin(request)
    sp = _service_principal(rt, request)
    if sp.object_id == rt.tenant.admin_object_id:
        raise _bad("The instance administrator's service principal cannot be deleted.")
    if sp.is_managed_identity:
        raise _bad("A managed identity's service principal is deleted with the identity: use `identity delete`.")
    await _delete(rt, sp)
    return Response(status_code=204)


_APPS = "/v1.0/applications"
def _graph_admin(operation: str) -> Guard:
    return admin(operation, audience=guards.GRAPH)  # GRAPH here is Graph's URL


routes = [
    route(_APPS, create_application, ["POST"], _graph_admin("ApplicationCreate")),
    route(_APPS, list_applications, ["GET"], _graph_admin("ApplicationList")),
    route(_APPS + "/{id}", get_application, ["GET"], _graph_admin("ApplicationGet")),
    route(_APPS + "/{id}", patch_application, ["PATCH"], _graph_admin("ApplicationUpdate")),
    route(_APPS + "/{id}", delete_application, ["DELETE"], _graph_admin("ApplicationDelete")),
    route(_APPS + "/{id}/addPassword", add_password, ["POST"], _graph_admin("ApplicationAddPassword")),
    route(_APPS + "/{id}/removePassword", remove_password, ["POST"], _graph_admin("ApplicationRemovePassword")),
    route(_APPS + "/{id}/federatedIdentityCredentials", create_app_fic, ["POST"], _graph_admin("ApplicationFederatedCredentialCreate")),
    route(_APPS + "/{id}/federatedIdentityCredentials", list_app_fics, ["GET"], _graph_admin("ApplicationFederatedCredentialList")),
    route(_APPS + "/{id}/federatedIdentityCredentials/{fic}", get_app_fic, ["GET"], _graph_admin("ApplicationFederatedCredentialGet")),
    route(_APPS + "/{id}/federatedIdentityCredentials/{fic}", delete_app_fic, ["DELETE"],
          _graph_admin("ApplicationFederatedCredentialDelete")),
    route("/v1.0/servicePrincipals", list_service_principals, ["GET"], _graph_admin("ServicePrincipalList")),
    route("/v1.0/servicePrincipals/{id}", get_service_principal, ["GET"], _graph_admin("ServicePrincipalGet")),
    route("/v1.0/servicePrincipals/{id}", delete_service_principal, ["DELETE"], _graph_admin("ServicePrincipalDelete")),
]
