"""Who may use a vault: `keyvault set-policy|delete-policy|update` and `keyvault secret access-review`.

set-policy/delete-policy work as az's: read the vault, change its access policy
list, PUT the vault back (so `keyvault show` prints what ARM stores). Permission
names are az's; `all` expands to every permission of its category. `update
--enable-rbac-authorization true|false` switches the vault's permission model;
as in Azure, the model not in force is kept but ignored.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from strongroom.authz import policies
from strongroom.cli.client import Client, CLIError
from strongroom.cli.common import ServerOpt, StateDirOpt, TagsOpt, client, parse_tags, three_state, three_state_option
from strongroom.cli.keyvault import find_vault
from strongroom.cli.output import OutputFormat, OutputOpt, QueryOpt, emit
from strongroom.errors import ServiceError

NameOpt = Annotated[str, typer.Option("--name", "-n", help="Name of the vault.")]
GroupOpt = Annotated[str | None, typer.Option("--resource-group", "-g", help="Resource group of the vault.")]
ObjectIdOpt = Annotated[str | None, typer.Option("--object-id", help="Object id (principalId) of the principal.")]
SpnOpt = Annotated[str | None, typer.Option("--spn", help="Service principal name: its appId (clientId).")]
UpnOpt = Annotated[str | None, typer.Option("--upn", help="User principal name (no users exist in Strongroom).")]
AppIdOpt = Annotated[str | None, typer.Option("--application-id", help="Application id, for a compound identity.")]


def _perm_option(category: str) -> Any:
    names = " ".join(policies.PERMISSIONS[category])
    return typer.Option(f"--{category[:-1] if category != 'storage' else 'storage'}-permissions",
                        help=f"Space-separated {category} permissions: all {names}.")


SecretPermsOpt = Annotated[list[str] | None, _perm_option("secrets")]
KeyPermsOpt = Annotated[list[str] | None, _perm_option("keys")]
CertificatePermsOpt = Annotated[list[str] | None, _perm_option("certificates")]
StoragePermsOpt = Annotated[list[str] | None, _perm_option("storage")]
RbacOpt = Annotated[str | None, three_state_option("--enable-rbac-authorization", "Azure RBAC or access policies:")]
PurgeProtectionOpt = Annotated[str | None, three_state_option("--enable-purge-protection", "Purge protection (cannot be turned off):")]


def _object_id(c: Client, object_id: str | None, spn: str | None, upn: str | None) -> str:
    if sum(x is not None for x in (object_id, spn, upn)) != 1:
        raise CLIError("Please specify only one of --object-id, --upn, --spn", "InvalidArgumentValue")
    if object_id:
        return object_id
    if upn:
        raise CLIError(f"Cannot find user with upn '{upn}': Strongroom's directory has service principals and "
                       "managed identities only. Use --spn or --object-id.", "ResourceNotFound")
    try:
        return c.arm("GET", f"/strongroom/directory/principals/{spn}")["objectId"]
    except CLIError as exc:
        if exc.code != "PrincipalNotFound":
            raise
        raise CLIError(f"Unable to find service principal with spn '{spn}'", "ResourceNotFound") from None


def _permissions(category: str, values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    try:
        return policies.canonical_permissions(category, values, expand_all=True)
    except ServiceError as exc:
        raise CLIError(exc.message, "InvalidArgumentValue") from None


def _put_policies(c: Client, vault: dict[str, Any], access_policies: list[dict[str, Any]]) -> dict[str, Any]:
    body = {
        "location": vault["location"],
        "tags": vault.get("tags") or {},
        "properties": {
            "tenantId": vault["properties"]["tenantId"],
            "sku": vault["properties"]["sku"],
            "accessPolicies": access_policies,
        },
    }
    result = c.arm("PUT", vault["id"], json=body)
    result["resourceGroup"] = result["id"].split("/")[4]
    return result


def _same(p: dict[str, Any], object_id: str, application_id: str | None) -> bool:
    return p["objectId"].lower() == object_id.lower() and (p.get("applicationId") or "").lower() == (application_id or "").lower()


def set_policy(
    name: NameOpt,
    resource_group: GroupOpt = None,
    object_id: ObjectIdOpt = None,
    spn: SpnOpt = None,
    upn: UpnOpt = None,
    application_id: AppIdOpt = None,
    secret_permissions: SecretPermsOpt = None,
    key_permissions: KeyPermsOpt = None,
    certificate_permissions: CertificatePermsOpt = None,
    storage_permissions: StoragePermsOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Grant permissions to a principal on an access-policy vault (az keyvault set-policy)."""
    c = client(state_dir, server)
    vault = find_vault(c, name, resource_group)
    if vault["properties"].get("enableRbacAuthorization"):
        raise CLIError("Cannot set policies to a vault with '--enable-rbac-authorization' specified", "BadRequest")
    oid = _object_id(c, object_id, spn, upn)
    given = {
        "secrets": _permissions("secrets", secret_permissions),
        "keys": _permissions("keys", key_permissions),
        "certificates": _permissions("certificates", certificate_permissions),
        "storage": _permissions("storage", storage_permissions),
    }
    current = list(vault["properties"].get("accessPolicies") or [])
    for p in current:
        if _same(p, oid, application_id):
            # As az: categories not given keep their permissions.
            p["permissions"] = {cat: given[cat] if given[cat] is not None else p["permissions"].get(cat, []) for cat in given}
            break
    else:
        current.append(policies.entry(vault["properties"]["tenantId"], oid,
                                      {cat: v or [] for cat, v in given.items()}, application_id))
    emit(_put_policies(c, vault, current), output, query)


def delete_policy(
    name: NameOpt,
    resource_group: GroupOpt = None,
    object_id: ObjectIdOpt = None,
    spn: SpnOpt = None,
    upn: UpnOpt = None,
    application_id: AppIdOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Remove a principal's access policy from a vault (az keyvault delete-policy)."""
    c = client(state_dir, server)
    vault = find_vault(c, name, resource_group)
    if vault["properties"].get("enableRbacAuthorization"):
        raise CLIError("Cannot delete policies to a vault with '--enable-rbac-authorization' specified", "BadRequest")
    oid = _object_id(c, object_id, spn, upn)
    current = [p for p in vault["properties"].get("accessPolicies") or [] if not _same(p, oid, application_id)]
    emit(_put_policies(c, vault, current), output, query)


def update(
    name: NameOpt,
    resource_group: GroupOpt = None,
    enable_rbac_authorization: RbacOpt = None,
    enable_purge_protection: PurgeProtectionOpt = None,
    retention_days: Annotated[int | None, typer.Option("--retention-days", help="Soft-delete retention, 7-90.")] = None,
    tags: TagsOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """Update a vault's properties (az keyvault update): tags, retention, purge protection, permission model.

    What is not given stays as it is; `--tags` replaces all tags (`--tags ""` clears them).
    """
    c = client(state_dir, server)
    vault = find_vault(c, name, resource_group)
    props: dict[str, Any] = {"tenantId": vault["properties"]["tenantId"], "sku": vault["properties"]["sku"]}
    if retention_days is not None:
        props["softDeleteRetentionInDays"] = retention_days
    rbac = three_state(enable_rbac_authorization, "--enable-rbac-authorization")
    if rbac is not None:
        props["enableRbacAuthorization"] = rbac
    purge = three_state(enable_purge_protection, "--enable-purge-protection")
    if purge is not None:
        props["enablePurgeProtection"] = purge
    new_tags = parse_tags(tags) if tags is not None else vault.get("tags") or {}
    result = c.arm("PUT", vault["id"], json={"location": vault["location"], "tags": new_tags, "properties": props})
    result["resourceGroup"] = result["id"].split("/")[4]
    emit(result, output, query)


def _review_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The people-facing view: one line per grant."""
    out = []
    for r in rows:
        if r["grantType"] == "RoleAssignment":
            via = f"{r['roleDefinitionName']} @ {r['scopeLevel']}"
        elif r["grantType"] == "AccessPolicy":
            via = "access policy: " + " ".join(a.split("/", 1)[1] for a in r["permissions"])
        else:
            via = r["grantType"]
        if r.get("via"):  # reaches the data by changing access: say how
            via += " -> " + ", ".join(r["via"])
        out.append({
            "Principal": r["principalName"] or "(unknown)",
            "PrincipalId": r["principalId"],
            "Read": "yes" if r["canRead"] else "",
            "Change": "yes" if r["canChange"] else "",
            "GrantAccess": "yes" if r["canGrantAccess"] else "",
            "Via": via,
        })
    return out


def access_review(
    vault_name: Annotated[str, typer.Option("--vault-name", help="Name of the vault.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Name of the secret.")],
    resource_group: GroupOpt = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
    output: OutputOpt = OutputFormat.json,
    query: QueryOpt = None,
) -> None:
    """List every principal that can read or change a secret, and the assignment or policy that grants it."""
    c = client(state_dir, server)
    vault = find_vault(c, vault_name, resource_group)
    review = c.arm("GET", f"{vault['id']}/secrets/{name}/providers/Strongroom.Authorization/accessReview",
                   params={"api-version": "2022-04-01"})
    rows = review["value"]
    if output is OutputFormat.table and not query:
        emit(_review_table(rows), output)
    else:
        emit(rows, output, query)
