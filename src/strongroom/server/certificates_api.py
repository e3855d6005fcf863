"""The Key Vault certificates data plane over HTTP (certificates.json paths), and the private CA's certificate.

Handlers follow vault_api: the route's guard (audit operation, vault bearer, throttle
class), then `begin()` with the certificate data actions, then
`keyvault.certificates` with the body parsed into its typed input
(`certificate_bodies`). CreateCertificate answers 202 with the certificate
operation and a Location to poll, as Key Vault does.
"""

from __future__ import annotations

from functools import partial
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from strongroom.authz.actions import CERTIFICATE_ACTIONS, CERTIFICATE_POLICY_PERMISSIONS
from strongroom.errors import BadRequest
from strongroom.keyvault import certificate_wire as wire
from strongroom.server import certificate_bodies as bodies
from strongroom.server.crypto_pool import run_heavy
from strongroom.server.guards import VAULT_CREATE, public, route, runtime, vault
from strongroom.server.http import JSON, int_param, json_body
from strongroom.server.secret_bodies import backup_blob
from strongroom.server.vault_api import _page_response
from strongroom.server.vault_api import begin as vault_begin

begin = partial(vault_begin, kind="certificates", actions=CERTIFICATE_ACTIONS, permissions=CERTIFICATE_POLICY_PERMISSIONS)


def _name(request: Request) -> str:
    return request.path_params["name"]


def _include_pending(request: Request) -> bool:
    raw = request.query_params.get("includePending", "false").lower()
    if raw not in ("true", "false"):
        raise BadRequest("BadParameter", "Query parameter 'includePending' must be true or false.")
    return raw == "true"


async def create_certificate(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "CertificateCreate", name)
    given = bodies.create(await json_body(request))
    op = await run_heavy(runtime(request).certificates.create, call.vault, name, given)
    spelled = runtime(request).certificates.objects.spelling(call.vault, name)
    query = urlencode({"api-version": call.api_version, "request_id": op.request_id})
    return JSON(
        wire.operation(op, spelled, call.base_url, as_submitted=True),
        status_code=202,
        headers={"Location": f"{call.base_url}/certificates/{spelled}/pending?{query}", "Retry-After": "0"},
    )


async def import_certificate(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "CertificateImport", name)
    given = bodies.import_(await json_body(request))
    cv, policy = await run_heavy(runtime(request).certificates.import_certificate, call.vault, name, given)
    return JSON(wire.certificate_bundle(cv, policy, call.vault, call.base_url))


async def get_certificate(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "CertificateGet", name)
    cv, policy = runtime(request).certificates.get(call.vault, name, request.path_params.get("version", ""))
    return JSON(wire.certificate_bundle(cv, policy, call.vault, call.base_url))


async def update_certificate(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "CertificateUpdate", name)
    given = bodies.update(await json_body(request))
    cv, policy = await run_in_threadpool(
        runtime(request).certificates.update, call.vault, name, request.path_params.get("version", ""), given
    )
    return JSON(wire.certificate_bundle(cv, policy, call.vault, call.base_url))


async def delete_certificate(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "CertificateDelete", name)
    head, cv, policy = await run_in_threadpool(runtime(request).certificates.delete, call.vault, name)
    return JSON(wire.deleted_certificate_bundle(head, cv, policy, call.vault, call.base_url))


async def list_certificates(request: Request) -> Response:
    call = begin(request, "CertificateList")
    maxresults = int_param(request, "maxresults")
    include_pending = _include_pending(request)
    page = runtime(request).certificates.list(
        call.vault, maxresults, request.query_params.get("$skiptoken"), include_pending=include_pending
    )
    items = [wire.certificate_item(cv, call.vault, call.base_url) for _, cv in page.items]
    return _page_response(call, "/certificates", page, items, maxresults)


async def list_versions(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "CertificateListVersions", name)
    maxresults = int_param(request, "maxresults")
    page = runtime(request).certificates.list_versions(call.vault, name, maxresults, request.query_params.get("$skiptoken"))
    items = [wire.certificate_item(cv, call.vault, call.base_url, versioned=True) for _, cv in page.items]
    return _page_response(call, f"/certificates/{name}/versions", page, items, maxresults)


async def list_deleted(request: Request) -> Response:
    call = begin(request, "CertificateListDeleted")
    maxresults = int_param(request, "maxresults")
    include_pending = _include_pending(request)
    page = runtime(request).certificates.list(
        call.vault, maxresults, request.query_params.get("$skiptoken"), include_pending=include_pending, deleted=True
    )
    items = [wire.deleted_certificate_item(head, cv, call.vault, call.base_url) for head, cv in page.items]
    return _page_response(call, "/deletedcertificates", page, items, maxresults)


async def get_deleted(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "CertificateGetDeleted", name)
    head, cv, policy = runtime(request).certificates.get_deleted(call.vault, name)
    return JSON(wire.deleted_certificate_bundle(head, cv, policy, call.vault, call.base_url))


async def recover_deleted(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "CertificateRecover", name)
    cv, policy = await run_in_threadpool(runtime(request).certificates.recover, call.vault, name)
    return JSON(wire.certificate_bundle(cv, policy, call.vault, call.base_url))


async def purge_deleted(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "CertificatePurge", name)
    await run_in_threadpool(runtime(request).certificates.purge, call.vault, name)
    return Response(status_code=204)


async def backup_certificate(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "CertificateBackup", name)
    return JSON({"value": runtime(request).certificates.backup(call.vault, name)})


async def restore_certificate(request: Request) -> Response:
    call = begin(request, "CertificateRestore")
    blob = backup_blob(await json_body(request))
    cv, policy = await run_in_threadpool(runtime(request).certificates.restore, call.vault, blob, call.base_url)
    return JSON(wire.certificate_bundle(cv, policy, call.vault, call.base_url))


# -- policy -----------------------------------------------------------------------------


def _spelled(request: Request, call, name: str) -> str:
    return runtime(request).certificates.objects.spelling(call.vault, name)


async def get_policy(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "CertificatePolicyGet", name)
    policy = runtime(request).certificates.get_policy(call.vault, name)
    return JSON(wire.policy(policy, _spelled(request, call, name), call.base_url))


async def update_policy(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "CertificatePolicyUpdate", name)
    patch = bodies.policy_patch(await json_body(request))
    policy = await run_in_threadpool(runtime(request).certificates.update_policy, call.vault, name, patch)
    return JSON(wire.policy(policy, _spelled(request, call, name), call.base_url))


# -- the certificate operation ------------------------------------------------------------


async def get_operation(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "CertificatePendingGet", name)
    op = runtime(request).certificates.operations.get(call.vault, name)
    return JSON(wire.operation(op, _spelled(request, call, name), call.base_url))


async def update_operation(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "CertificatePendingUpdate", name)
    requested = bodies.cancellation(await json_body(request))
    op = await run_in_threadpool(runtime(request).certificates.operations.cancel, call.vault, name, requested)
    return JSON(wire.operation(op, _spelled(request, call, name), call.base_url))


async def delete_operation(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "CertificatePendingDelete", name)
    op = await run_in_threadpool(runtime(request).certificates.operations.delete, call.vault, name)
    return JSON(wire.operation(op, _spelled(request, call, name), call.base_url))


async def merge_certificate(request: Request) -> Response:
    name = _name(request)
    call = begin(request, "CertificatePendingMerge", name)
    given = bodies.merge(await json_body(request))
    cv, policy = await run_heavy(runtime(request).certificates.merge, call.vault, name, given)
    return JSON(wire.certificate_bundle(cv, policy, call.vault, call.base_url), status_code=201)


# -- issuers and contacts ------------------------------------------------------------------


async def list_issuers(request: Request) -> Response:
    call = begin(request, "CertificateIssuersList")
    items = [wire.issuer_item(rec, call.base_url) for rec in runtime(request).certificates.issuers.list(call.vault)]
    return JSON({"value": items, "nextLink": None})


async def get_issuer(request: Request) -> Response:
    call = begin(request, "CertificateIssuerGet")
    rec = runtime(request).certificates.issuers.get(call.vault, request.path_params["issuer"])
    return JSON(wire.issuer_bundle(rec, call.base_url))


async def set_issuer(request: Request) -> Response:
    call = begin(request, "CertificateIssuerSet")
    given = bodies.issuer(await json_body(request))
    rec = await run_in_threadpool(runtime(request).certificates.issuers.set, call.vault, request.path_params["issuer"], given)
    return JSON(wire.issuer_bundle(rec, call.base_url))


async def update_issuer(request: Request) -> Response:
    call = begin(request, "CertificateIssuerUpdate")
    given = bodies.issuer(await json_body(request))
    rec = await run_in_threadpool(
        partial(runtime(request).certificates.issuers.set, update=True), call.vault, request.path_params["issuer"], given
    )
    return JSON(wire.issuer_bundle(rec, call.base_url))


async def delete_issuer(request: Request) -> Response:
    call = begin(request, "CertificateIssuerDelete")
    rec = await run_in_threadpool(runtime(request).certificates.issuers.delete, call.vault, request.path_params["issuer"])
    return JSON(wire.issuer_bundle(rec, call.base_url))


async def get_contacts(request: Request) -> Response:
    call = begin(request, "CertificateContactsGet")
    return JSON(wire.contacts(runtime(request).certificates.contacts.get(call.vault), call.base_url))


async def set_contacts(request: Request) -> Response:
    call = begin(request, "CertificateContactsSet")
    given = bodies.contacts(await json_body(request))
    items = await run_in_threadpool(runtime(request).certificates.contacts.set, call.vault, given)
    return JSON(wire.contacts(items, call.base_url))


async def delete_contacts(request: Request) -> Response:
    call = begin(request, "CertificateContactsDelete")
    items = await run_in_threadpool(runtime(request).certificates.contacts.delete, call.vault)
    return JSON(wire.contacts(items, call.base_url))


async def ca_certificate(request: Request) -> Response:
    """The private CA's certificate (PEM): public, as any CA certificate is, so clients can trust it."""
    pem = await run_in_threadpool(runtime(request).certificates.ca_pem)
    return Response(pem, media_type="application/x-pem-file")


routes = [
    route("/certificates", list_certificates, ["GET"], vault("CertificateList")),
    route("/certificates/restore", restore_certificate, ["POST"], vault("CertificateRestore")),
    route("/certificates/contacts", get_contacts, ["GET"], vault("CertificateContactsGet")),
    route("/certificates/contacts", set_contacts, ["PUT"], vault("CertificateContactsSet")),
    route("/certificates/contacts", delete_contacts, ["DELETE"], vault("CertificateContactsDelete")),
    route("/certificates/issuers", list_issuers, ["GET"], vault("CertificateIssuersList")),
    route("/certificates/issuers/{issuer}", get_issuer, ["GET"], vault("CertificateIssuerGet")),
    route("/certificates/issuers/{issuer}", set_issuer, ["PUT"], vault("CertificateIssuerSet")),
    route("/certificates/issuers/{issuer}", update_issuer, ["PATCH"], vault("CertificateIssuerUpdate")),
    route("/certificates/issuers/{issuer}", delete_issuer, ["DELETE"], vault("CertificateIssuerDelete")),
    route("/certificates/{name}/create", create_certificate, ["POST"], vault("CertificateCreate")),
    route("/certificates/{name}/import", import_certificate, ["POST"], vault("CertificateImport", VAULT_CREATE)),
    route("/certificates/{name}/pending", get_operation, ["GET"], vault("CertificatePendingGet")),
    route("/certificates/{name}/pending", update_operation, ["PATCH"], vault("CertificatePendingUpdate")),
    route("/certificates/{name}/pending", delete_operation, ["DELETE"], vault("CertificatePendingDelete")),
    route("/certificates/{name}/pending/merge", merge_certificate, ["POST"], vault("CertificatePendingMerge")),
    route("/certificates/{name}/policy", get_policy, ["GET"], vault("CertificatePolicyGet")),
    route("/certificates/{name}/policy", update_policy, ["PATCH"], vault("CertificatePolicyUpdate")),
    route("/certificates/{name}/versions", list_versions, ["GET"], vault("CertificateListVersions")),
    route("/certificates/{name}/backup", backup_certificate, ["POST"], vault("CertificateBackup")),
    route("/certificates/{name}", delete_certificate, ["DELETE"], vault("CertificateDelete")),
    route("/certificates/{name}", get_certificate, ["GET"], vault("CertificateGet")),
    route("/certificates/{name}/", get_certificate, ["GET"], vault("CertificateGet")),
    route("/certificates/{name}/", update_certificate, ["PATCH"], vault("CertificateUpdate")),
    route("/certificates/{name}/{version}", get_certificate, ["GET"], vault("CertificateGet")),
    route("/certificates/{name}/{version}", update_certificate, ["PATCH"], vault("CertificateUpdate")),
    route("/deletedcertificates", list_deleted, ["GET"], vault("CertificateListDeleted")),
    route("/deletedcertificates/{name}", get_deleted, ["GET"], vault("CertificateGetDeleted")),
    route("/deletedcertificates/{name}", purge_deleted, ["DELETE"], vault("CertificatePurge")),
    route("/deletedcertificates/{name}/recover", recover_deleted, ["POST"], vault("CertificateRecover")),
]

control_routes = [route("/strongroom/pki/ca.pem", ca_certificate, ["GET"], public())]
