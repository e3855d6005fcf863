"""ARM's `vaults/{name}/accessPolicies/{add|replace|remove}`: change one vault's access policies in place.

This is the call azure-mgmt-keyvault's `update_access_policy` (and Terraform's
access-policy resource) makes; `az keyvault set-policy` instead reads the vault
and PUTs it back, which `management_api.put_vault` handles. Per entry
(matched by objectId + applicationId): `add` merges permissions, `replace`
sets them, `remove` takes the listed permissions away (and the entry with them
once it holds none).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from strongroom.audit import facts as audit
from strongroom.authz import control, policies
from strongroom.errors import BadRequest
from strongroom.server import guards
from strongroom.server.guards import management, route, runtime
from strongroom.server.http import JSON, json_body
from strongroom.server.management_api import PROVIDER, _vault_in

KINDS = ("add", "replace", "remove")


async def update_access_policy(request: Request) -> Response:
    rt = runtime(request)
    kind = request.path_params["kind"]
    audit.refine(request.scope, vault=request.path_params["name"])
    caller = guards.caller(request)
    vault = _vault_in(rt, request)
    if kind not in KINDS:
        raise BadRequest("BadRequest", f"The operation kind '{kind}' is not valid; use one of {', '.join(KINDS)}.")
    control.require_manage(rt.authorizer, caller, vault, control.ACCESS_POLICY_WRITE)
    body = await json_body(request)
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        raise BadRequest("BadRequest", "The request body must be an object with 'properties'.")
    changes = policies.normalize(props.get("accessPolicies"), rt.tenant.tenant_id)
    updated = list(vault.access_policies)
    for entry in changes:
        updated = policies.upsert(updated, entry, kind)
    # Writing access policies grants data access: roleAssignments/write at the vault (authz/control.py).
    control.require_vault_update(rt.authorizer, caller, vault, access_policies=updated,
                                 manage_action=control.ACCESS_POLICY_WRITE)

    def write():
        return rt.vaults.create_or_update(
            vault.name, subscription_id=vault.subscription_id, resource_group=vault.resource_group,
            tenant_id=vault.tenant_id, created_by=vault.created_by, access_policies=updated,
        )[0]

    saved = await run_in_threadpool(write)
    return JSON(
        {
            "id": f"{saved.resource_id}/accessPolicies/{kind}",
            "type": "Microsoft.KeyVault/vaults/accessPolicies",
            "name": kind,
            "location": saved.location,
            "properties": {"accessPolicies": saved.access_policies},
        }
    )


routes = [
    route(
        "/subscriptions/{subscription}/resourceGroups/{rg}/" + PROVIDER + "/vaults/{name}/accessPolicies/{kind}",
        update_access_policy, ["PUT"], management("VaultPatch"),
    ),
]
