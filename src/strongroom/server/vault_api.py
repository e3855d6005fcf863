"""The Key Vault data plane over HTTP (secrets.json paths).

Each handler: resolve the vault (done by host routing), check the api-version,
authenticate, authorize the operation's data action, then call `keyvault`.
Writes wait for the fsync off the event loop: SecretSet (the hot write) through the
storage's loop-side group commit (`SecretStore.set_async`), the others in the threadpool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from strongroom.audit import facts as audit
from strongroom.authz import Caller, forbidden
from strongroom.authz.actions import SECRET_ACTIONS, SECRET_POLICY_PERMISSIONS
from strongroom.errors import BadRequest
from strongroom.keyvault import wire
from strongroom.keyvault.objects import Page
from strongroom.keyvault.vaults import Vault
from strongroom.server import guards
from strongroom.server import secret_bodies as bodies
from strongroom.server.guards import VAULT_CREATE, route, runtime, vault
from strongroom.server.http import JSON, int_param, json_body

API_VERSIONS = ("7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01")
LATEST_API_VERSION = API_VERSIONS[-1]
# Previews current clients send: az 2.91 pins 7.6-preview.2 for every `az keyvault key` command, and the
# azure-keyvault-keys 4.12 betas it ships default to 2026-01-01-preview. They are answered in the stable wire
# format (preview-only features are not served: docs/compatibility.md).
PREVIEW_API_VERSIONS = (
    "7.2-preview", "7.3-preview", "7.4-preview.1", "7.5-preview.1", "7.6-preview.1", "7.6-preview.2", "2026-01-01-preview",
)
ACCEPTED_API_VERSIONS = frozenset(API_VERSIONS + PREVIEW_API_VERSIONS)


@dataclass
class VaultCall:
    vault: Vault
    caller: Caller
    base_url: str
    api_version: str


def begin(
    request: Request,
    operation: str,
    object_name: str | None = None,
    *,
    kind: str = "secrets",
    actions: dict[str, str] = SECRET_ACTIONS,
    permissions: dict[str, str] = SECRET_POLICY_PERMISSIONS,
) -> VaultCall:
    """api-version and authorization for one data-plane call, once the route's guard admitted the caller.

    `kind` is the object collection ("secrets", "keys", "certificates": ids and RBAC
    scopes are `/{kind}/{name}`); `actions`/`permissions` map the operation to its RBAC
    data action and access-policy permission.
    """
    rt = runtime(request)
    vault: Vault = request.scope["strongroom.vault"]
    # The route's guard has recorded the operation, verified the token and taken the caller's quota.
    claims = guards.claims(request)
    # From the scope, not request.url: building a URL object cost ~3% of a hot read's CPU.
    base_url = f"{request.scope['scheme']}://{request.headers.get('host') or request.url.netloc}"
    api_version = request.query_params.get("api-version", "")
    if api_version not in ACCEPTED_API_VERSIONS:
        raise BadRequest(
            "BadParameter",
            f"The specified version ({api_version}) is not recognized. "
            f"Consider using the latest supported version ({LATEST_API_VERSION}).",
        )
    caller = Caller.from_claims(claims)
    action = actions[operation]
    resource_id = vault.resource_id + (f"/{kind}/{object_name}" if object_name else "")
    decision = rt.authorizer.check(caller, vault, action, resource_id, permissions[operation])
    audit.decision(request.scope, allowed=decision.allowed, assignment_id=decision.assignment_id, rbac=decision.rbac)
    if not decision.allowed:
        raise forbidden(caller, vault, action, resource_id, decision)
    return VaultCall(vault, caller, base_url, api_version)


def _page_response(call: VaultCall, path: str, page: Page[Any], items: list, maxresults: int | None) -> JSON:
    next_link = None
    if page.next_token:
        query = {"api-version": call.api_version, "$skiptoken": page.next_token}
        if maxresults is not None:
            query["maxresults"] = str(maxresults)
        next_link = f"{call.base_url}{path}?{urlencode(query)}"
    return JSON({"value": items, "nextLink": next_link})


async def set_secret(request: Request) -> Response:
    name = request.path_params["name"]
    call = begin(request, "SecretSet", name)
    given = bodies.secret_set(await json_body(request))
    sv = await runtime(request).secrets.set_async(call.vault, name, given)  # no threadpool: see set_async
    return JSON(wire.secret_bundle(sv, call.vault, call.base_url))


async def get_secret(request: Request) -> Response:
    name = request.path_params["name"]
    call = begin(request, "SecretGet", name)
    sv = runtime(request).secrets.get(
        call.vault, name, request.path_params.get("version", ""), request.query_params.get("outContentType")
    )
    return JSON(wire.secret_bundle(sv, call.vault, call.base_url))


async def update_secret(request: Request) -> Response:
    name = request.path_params["name"]
    call = begin(request, "SecretUpdate", name)
    given = bodies.secret_update(await json_body(request))
    sv = await run_in_threadpool(
        runtime(request).secrets.update, call.vault, name, request.path_params.get("version", ""), given
    )
    bundle = wire.secret_bundle(sv, call.vault, call.base_url)
    bundle.pop("value")  # Azure's update answer carries no value
    return JSON(bundle)


async def delete_secret(request: Request) -> Response:
    name = request.path_params["name"]
    call = begin(request, "SecretDelete", name)
    head, sv = await run_in_threadpool(runtime(request).secrets.delete, call.vault, name)
    return JSON(wire.deleted_secret_bundle(head, sv, call.vault, call.base_url))


async def list_secrets(request: Request) -> Response:
    call = begin(request, "SecretList")
    maxresults = int_param(request, "maxresults")
    page = runtime(request).secrets.list(call.vault, maxresults, request.query_params.get("$skiptoken"))
    items = [wire.secret_item(sv, call.vault, call.base_url) for _, sv in page.items]
    return _page_response(call, "/secrets", page, items, maxresults)


async def list_versions(request: Request) -> Response:
    name = request.path_params["name"]
    call = begin(request, "SecretListVersions", name)
    maxresults = int_param(request, "maxresults")
    page = runtime(request).secrets.list_versions(call.vault, name, maxresults, request.query_params.get("$skiptoken"))
    items = [wire.secret_item(sv, call.vault, call.base_url, versioned=True) for _, sv in page.items]
    return _page_response(call, f"/secrets/{name}/versions", page, items, maxresults)


async def list_deleted(request: Request) -> Response:
    call = begin(request, "SecretListDeleted")
    maxresults = int_param(request, "maxresults")
    page = runtime(request).secrets.list_deleted(call.vault, maxresults, request.query_params.get("$skiptoken"))
    items = [wire.deleted_secret_item(head, sv, call.vault, call.base_url) for head, sv in page.items]
    return _page_response(call, "/deletedsecrets", page, items, maxresults)


async def get_deleted(request: Request) -> Response:
    name = request.path_params["name"]
    call = begin(request, "SecretGetDeleted", name)
    head, sv = runtime(request).secrets.show_deleted(call.vault, name)
    return JSON(wire.deleted_secret_bundle(head, sv, call.vault, call.base_url))


async def recover_deleted(request: Request) -> Response:
    name = request.path_params["name"]
    call = begin(request, "SecretRecover", name)
    sv = await run_in_threadpool(runtime(request).secrets.recover, call.vault, name)
    bundle = wire.secret_bundle(sv, call.vault, call.base_url)
    bundle.pop("value")
    return JSON(bundle)


async def purge_deleted(request: Request) -> Response:
    name = request.path_params["name"]
    call = begin(request, "SecretPurge", name)
    await run_in_threadpool(runtime(request).secrets.purge, call.vault, name)
    return Response(status_code=204)


async def backup_secret(request: Request) -> Response:
    name = request.path_params["name"]
    call = begin(request, "SecretBackup", name)
    blob = runtime(request).secrets.backup(call.vault, name)
    return JSON({"value": blob})


async def restore_secret(request: Request) -> Response:
    call = begin(request, "SecretRestore")
    blob = bodies.backup_blob(await json_body(request))
    sv = await run_in_threadpool(runtime(request).secrets.restore, call.vault, blob, call.base_url)
    bundle = wire.secret_bundle(sv, call.vault, call.base_url)
    bundle.pop("value")
    return JSON(bundle)


routes = [
    route("/secrets", list_secrets, ["GET"], vault("SecretList")),
    route("/secrets/restore", restore_secret, ["POST"], vault("SecretRestore")),
    route("/secrets/{name}", set_secret, ["PUT"], vault("SecretSet", VAULT_CREATE)),
    route("/secrets/{name}", delete_secret, ["DELETE"], vault("SecretDelete")),
    route("/secrets/{name}", get_secret, ["GET"], vault("SecretGet")),
    route("/secrets/{name}/", get_secret, ["GET"], vault("SecretGet")),
    route("/secrets/{name}/", update_secret, ["PATCH"], vault("SecretUpdate")),
    route("/secrets/{name}/versions", list_versions, ["GET"], vault("SecretListVersions")),
    route("/secrets/{name}/backup", backup_secret, ["POST"], vault("SecretBackup")),
    route("/secrets/{name}/{version}", get_secret, ["GET"], vault("SecretGet")),
    route("/secrets/{name}/{version}", update_secret, ["PATCH"], vault("SecretUpdate")),
    route("/deletedsecrets", list_deleted, ["GET"], vault("SecretListDeleted")),
    route("/deletedsecrets/{name}", get_deleted, ["GET"], vault("SecretGetDeleted")),
    route("/deletedsecrets/{name}", purge_deleted, ["DELETE"], vault("SecretPurge")),
    route("/deletedsecrets/{name}/recover", recover_deleted, ["POST"], vault("SecretRecover")),
]
