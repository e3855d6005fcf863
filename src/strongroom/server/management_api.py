"""A slice of Azure Resource Manager: Microsoft.KeyVault/vaults and deletedVaults.

The CLI's `keyvault create|list|show|delete|purge|recover` use these paths, as az does.
Errors use ARM's shape (`{"error": {"code", "message"}}`) with ARM's codes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from strongroom.audit import facts as audit
from strongroom.authz import Caller, control
from strongroom.authz import policies as access_policies
from strongroom.errors import NotFound
from strongroom.keyvault.vaults import Vault, vault_resource_not_found
from strongroom.server import bodies, guards
from strongroom.server.guards import management, route, runtime
from strongroom.server.http import JSON, json_body
from strongroom.server.runtime import Runtime

PROVIDER = "providers/Microsoft.KeyVault"


def _refine_audit(request: Request) -> Caller:
    """The caller the route's guard verified; its audit record names the vault (a collection's path for lists)."""
    rt = runtime(request)
    name = request.path_params.get("name")
    audit.refine(
        request.scope, resource_id=request.url.path.removesuffix("/purge"),
        object_url=rt.settings.vault_url(name) + "/" if name else None, vault=name,
    )
    return guards.caller(request)


def check_subscription(rt: Runtime, subscription: str) -> None:
    if subscription.lower() != rt.tenant.subscription_id:
        raise NotFound("SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")


def _may_manage(rt: Runtime, caller: Caller, vault: Vault, action: str) -> None:
    control.require_manage(rt.authorizer, caller, vault, action)


def _readable(rt: Runtime, caller: Caller, request: Request, vault: Vault | None) -> Vault:
    """The vault if `caller` may read it; ARM answers 403 before it says whether a resource exists."""
    if vault is not None and control.may_read(rt.authorizer, caller, vault):
        return vault
    p = request.path_params
    scope = f"/subscriptions/{p['subscription']}/resourceGroups/{p['rg']}/{PROVIDER}/vaults/{p['name']}"
    control.require(rt.authorizer, caller, control.VAULT_READ, scope)
    raise vault_resource_not_found(p["name"])


async def ensure_resource_group(rt: Runtime, name: str, location: Any) -> None:
    """A vault's group exists once the vault names it (as `-g` does for identities), so `az group show` finds it."""
    await run_in_threadpool(rt.directory.ensure_resource_group, name, location if isinstance(location, str) and location else "local")


def arm_time(ts: int | None) -> str | None:
    """ARM writes times as ISO 8601 UTC strings, Key Vault's data plane as Unix seconds."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def vault_json(rt: Runtime, vault: Vault) -> dict[str, Any]:
    return {
        "id": vault.resource_id,
        "name": vault.name,
        "type": "Microsoft.KeyVault/vaults",
        "location": vault.location,
        "tags": vault.tags,
        "properties": {
            "tenantId": vault.tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "accessPolicies": vault.access_policies,
            "vaultUri": rt.settings.vault_url(vault.name) + "/",
            "enabledForDeployment": False,
            "enabledForDiskEncryption": False,
            "enabledForTemplateDeployment": False,
            "enableSoftDelete": True,
            "softDeleteRetentionInDays": vault.retention_days,
            "enableRbacAuthorization": vault.rbac_authorization,
            "enablePurgeProtection": True if vault.purge_protection else None,
            "provisioningState": "Succeeded",
            "publicNetworkAccess": "Enabled",
        },
        "systemData": {"createdBy": vault.created_by, "createdByType": "Application", "createdAt": arm_time(vault.created)},
    }


def deleted_vault_json(vault: Vault) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{vault.subscription_id}/{PROVIDER}/locations/{vault.location}/deletedVaults/{vault.name}",
        "name": vault.name,
        "type": "Microsoft.KeyVault/deletedVaults",
        "properties": {
            "vaultId": vault.resource_id,
            "location": vault.location,
            "deletionDate": arm_time(vault.deleted),
            "scheduledPurgeDate": arm_time(vault.scheduled_purge),
            "tags": vault.tags,
            "purgeProtectionEnabled": vault.purge_protection,
        },
    }


def _vault_in(rt: Runtime, request: Request) -> Vault:
    p = request.path_params
    check_subscription(rt, p["subscription"])
    vault = rt.vaults.get(p["name"])
    if vault is None or vault.resource_group.lower() != p["rg"].lower():
        raise vault_resource_not_found(p["name"])
    return vault


async def put_vault(request: Request) -> Response:
    rt = runtime(request)
    caller = _refine_audit(request)
    p = request.path_params
    check_subscription(rt, p["subscription"])
    body, props = bodies.vault_put(await json_body(request))  # every field of its documented type, or 400
    existing = rt.vaults.get(p["name"])
    if props.get("createMode") == "recover":
        audit.operation(request.scope, "VaultRecover")
        deleted = rt.vaults.get(p["name"], include_deleted=True)
        if deleted is None or deleted.deleted is None or deleted.resource_group.lower() != p["rg"].lower():
            raise NotFound("ResourceNotFound", f"Deleted vault '{p['name']}' was not found.")
        _may_manage(rt, caller, deleted, control.VAULT_WRITE)
        vault = await run_in_threadpool(rt.vaults.recover, p["name"])
        return JSON(vault_json(rt, vault))
    control.permission_model_flag(props.get("enableRbacAuthorization"))
    policies = props.get("accessPolicies")
    if policies is not None:
        policies = access_policies.normalize(policies, rt.tenant.tenant_id)
    if existing is not None:  # changing who gets data access needs roleAssignments/write (authz/control.py)
        control.require_vault_update(
            rt.authorizer, caller, existing,
            rbac_authorization=props.get("enableRbacAuthorization"), access_policies=policies,
        )
    await ensure_resource_group(rt, p["rg"], body.get("location"))
    vault, created = await run_in_threadpool(
        lambda: rt.vaults.create_or_update(
            p["name"],
            subscription_id=rt.tenant.subscription_id,
            resource_group=p["rg"],
            tenant_id=rt.tenant.tenant_id,
            created_by=caller.object_id,
            location=body.get("location") or "local",
            retention_days=props.get("softDeleteRetentionInDays"),
            purge_protection=props.get("enablePurgeProtection"),
            rbac_authorization=props.get("enableRbacAuthorization"),
            tags=body.get("tags"),
            access_policies=policies,
            on_create=rt.authorizer.on_vault_created(caller),  # the creator's grant, in the same batch
        )
    )
    return JSON(vault_json(rt, vault), status_code=201 if created else 200)


async def get_vault(request: Request) -> Response:
    rt = runtime(request)
    caller = _refine_audit(request)
    check_subscription(rt, request.path_params["subscription"])
    found = rt.vaults.get(request.path_params["name"])
    if found is not None and found.resource_group.lower() != request.path_params["rg"].lower():
        found = None
    return JSON(vault_json(rt, _readable(rt, caller, request, found)))


async def delete_vault(request: Request) -> Response:
    rt = runtime(request)
    caller = _refine_audit(request)
    vault = _vault_in(rt, request)
    _may_manage(rt, caller, vault, control.VAULT_DELETE)
    await run_in_threadpool(rt.vaults.delete, vault.name)
    return Response(status_code=200)


async def list_vaults(request: Request) -> Response:
    rt = runtime(request)
    caller = _refine_audit(request)
    check_subscription(rt, request.path_params["subscription"])
    rg = request.path_params.get("rg")
    vaults = [
        v for v in rt.vaults.list()
        if (rg is None or v.resource_group.lower() == rg.lower()) and control.may_read(rt.authorizer, caller, v)
    ]
    return JSON({"value": [vault_json(rt, v) for v in vaults]})


async def list_deleted_vaults(request: Request) -> Response:
    rt = runtime(request)
    caller = _refine_audit(request)
    check_subscription(rt, request.path_params["subscription"])
    deleted = [v for v in rt.vaults.list(include_deleted=True) if control.may_read(rt.authorizer, caller, v)]
    return JSON({"value": [deleted_vault_json(v) for v in deleted]})


def _deleted_vault(rt: Runtime, request: Request) -> Vault:
    check_subscription(rt, request.path_params["subscription"])
    vault = rt.vaults.get(request.path_params["name"], include_deleted=True)
    if vault is None or vault.deleted is None:
        raise NotFound("ResourceNotFound", f"Deleted vault '{request.path_params['name']}' was not found.")
    return vault


async def get_deleted_vault(request: Request) -> Response:
    rt = runtime(request)
    caller = _refine_audit(request)
    vault = _deleted_vault(rt, request)
    _may_manage(rt, caller, vault, control.VAULT_READ)
    return JSON(deleted_vault_json(vault))


async def purge_vault(request: Request) -> Response:
    rt = runtime(request)
    caller = _refine_audit(request)
    vault = _deleted_vault(rt, request)
    _may_manage(rt, caller, vault, control.DELETED_VAULT_PURGE)
    await run_in_threadpool(rt.vaults.purge, vault.name)
    if rt.authorizer.store is not None:  # a purged vault's role assignments go with it
        await run_in_threadpool(rt.authorizer.store.remove_at_or_below, vault.resource_id)
    return Response(status_code=200)


_VAULT = "/subscriptions/{subscription}/resourceGroups/{rg}/" + PROVIDER + "/vaults"
_SUB = "/subscriptions/{subscription}/" + PROVIDER

routes = [
    route(_VAULT + "/{name}", put_vault, ["PUT"], management("VaultPut")),
    route(_VAULT + "/{name}", get_vault, ["GET"], management("VaultGet")),
    route(_VAULT + "/{name}", delete_vault, ["DELETE"], management("VaultDelete")),
    route(_VAULT, list_vaults, ["GET"], management("VaultList")),
    route(_SUB + "/vaults", list_vaults, ["GET"], management("VaultList")),
    route(_SUB + "/deletedVaults", list_deleted_vaults, ["GET"], management("VaultListDeleted")),
    route(_SUB + "/locations/{location}/deletedVaults/{name}", get_deleted_vault, ["GET"], management("VaultGetDeleted")),
    route(_SUB + "/locations/{location}/deletedVaults/{name}/purge", purge_vault, ["POST"], management("VaultPurge")),
]
