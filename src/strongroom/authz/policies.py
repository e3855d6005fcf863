"""Vault access policies: the legacy permission model (enableRbacAuthorization=false).

An access policy entry is stored on the vault exactly as ARM shows it:
`{"tenantId", "objectId", "applicationId", "permissions": {"keys", "secrets",
"certificates", "storage"}}`. A caller's permissions are the union of the
entries with its object id (entries with an applicationId are compound
identities: they apply only when the caller acts through that application).
"""

from __future__ import annotations

import re
from typing import Any

from strongroom.errors import BadRequest, Forbidden, ServiceError

# ARM's permission enums, spelled as ARM spells them; "all" stands for every other one.
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "keys": (
        "encrypt", "decrypt", "wrapKey", "unwrapKey", "sign", "verify", "get", "list", "create", "update",
        "import", "delete", "backup", "restore", "recover", "purge", "release", "rotate",
        "getrotationpolicy", "setrotationpolicy",
    ),
    "secrets": ("get", "list", "set", "delete", "backup", "restore", "recover", "purge"),
    "certificates": (
        "get", "list", "delete", "create", "import", "update", "managecontacts", "getissuers", "listissuers",
        "setissuers", "deleteissuers", "manageissuers", "recover", "purge", "backup", "restore",
    ),
    "storage": (
        "get", "list", "delete", "set", "update", "regeneratekey", "recover", "purge", "backup", "restore",
        "setsas", "listsas", "getsas", "deletesas",
    ),
}
_CANONICAL = {cat: {p.lower(): p for p in (*perms, "all")} for cat, perms in PERMISSIONS.items()}
MAX_POLICIES = 1024
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
ACCESS_POLICY_HELP = "https://go.microsoft.com/fwlink/?linkid=2125287"


def bad_request(message: str) -> ServiceError:
    return BadRequest("BadRequest", message)


def canonical_permissions(category: str, values: list[str], expand_all: bool = False) -> list[str]:
    """Validate and spell permissions as ARM does; with expand_all, "all" becomes the full list (as az's CLI sends it)."""
    known = _CANONICAL[category]
    out: list[str] = []
    for v in values:
        if not isinstance(v, str) or v.lower() not in known:
            raise bad_request(
                f"Invalid {category} permission '{v}'. Allowed values: {', '.join(sorted(known.values(), key=str.lower))}."
            )
        names = PERMISSIONS[category] if expand_all and v.lower() == "all" else (known[v.lower()],)
        for name in names:
            if name not in out:
                out.append(name)
    return out


def all_permissions() -> dict[str, list[str]]:
    return {cat: list(perms) for cat, perms in PERMISSIONS.items()}


def entry(tenant_id: str, object_id: str, permissions: dict[str, list[str]], application_id: str | None = None) -> dict[str, Any]:
    return {
        "tenantId": tenant_id,
        "objectId": object_id,
        "applicationId": application_id,
        "permissions": {cat: list(permissions.get(cat, [])) for cat in PERMISSIONS},
    }


def normalize(policies: Any, tenant_id: str) -> list[dict[str, Any]]:
    """Check a PUT body's `properties.accessPolicies` and return it in stored form (400 on bad input)."""
    if not isinstance(policies, list):
        raise bad_request("The property 'accessPolicies' must be an array.")
    if len(policies) > MAX_POLICIES:
        raise bad_request(f"The number of access policies exceeds the limit of {MAX_POLICIES}.")
    out: list[dict[str, Any]] = []
    for p in policies:
        if not isinstance(p, dict):
            raise bad_request("Each access policy must be an object.")
        oid = p.get("objectId")
        if not isinstance(oid, str) or not _GUID.match(oid):
            raise bad_request(f"The access policy objectId '{oid}' is not a valid GUID.")
        tid = p.get("tenantId") or tenant_id
        if not isinstance(tid, str) or tid.lower() != tenant_id.lower():
            raise bad_request(f"The access policy tenantId '{tid}' does not match the vault's tenant '{tenant_id}'.")
        app = p.get("applicationId")
        if app is not None and (not isinstance(app, str) or not _GUID.match(app)):
            raise bad_request(f"The access policy applicationId '{app}' is not a valid GUID.")
        perms = p.get("permissions")
        if not isinstance(perms, dict):
            raise bad_request("Each access policy needs 'permissions'.")
        clean: dict[str, list[str]] = {}
        for cat in PERMISSIONS:
            values = perms.get(cat) or []
            if not isinstance(values, list):
                raise bad_request(f"permissions.{cat} must be an array.")
            clean[cat] = canonical_permissions(cat, values)
        unknown = set(perms) - set(PERMISSIONS)
        if unknown:
            raise bad_request(f"Unknown permission categories: {', '.join(sorted(unknown))}.")
        out.append(entry(tenant_id, oid.lower(), clean, app.lower() if app else None))
    return out


def granted(policies: list[dict[str, Any]], object_id: str, app_id: str | None) -> dict[str, set[str]]:
    """The union of permissions (lowercased, "all" expanded) the caller holds."""
    out: dict[str, set[str]] = {cat: set() for cat in PERMISSIONS}
    oid = object_id.lower()
    for p in policies:
        if p.get("objectId", "").lower() != oid:
            continue
        app = p.get("applicationId")
        if app and (not app_id or app.lower() != app_id.lower()):
            continue
        for cat, values in (p.get("permissions") or {}).items():
            if cat not in out:
                continue
            for v in values:
                if v.lower() == "all":
                    out[cat].update(x.lower() for x in PERMISSIONS[cat])
                else:
                    out[cat].add(v.lower())
    return out


def allows(policies: list[dict[str, Any]], object_id: str, app_id: str | None, permission: str) -> bool:
    """`permission` is "category/name", e.g. "secrets/get"."""
    category, _, name = permission.partition("/")
    return name.lower() in granted(policies, object_id, app_id).get(category, set())


def entry_allows(p: dict[str, Any], permission: str) -> bool:
    category, _, name = permission.partition("/")
    values = [v.lower() for v in (p.get("permissions") or {}).get(category, [])]
    return "all" in values or name.lower() in values


def access_denied(caller_description: str, vault_name: str, location: str, permission: str) -> ServiceError:
    category, _, name = permission.partition("/")
    return Forbidden(
        "Forbidden",
        f"The user, group or application '{caller_description}' does not have {category} {name} permission on key "
        f"vault '{vault_name};location={location}'. For help resolving this issue, please see {ACCESS_POLICY_HELP}",
        "AccessDenied",
    )


def upsert(policies: list[dict[str, Any]], new: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """Apply ARM's accessPolicies/{add|replace|remove} to one entry (matched by objectId + applicationId)."""
    out = [dict(p) for p in policies]
    key = (new["objectId"].lower(), (new.get("applicationId") or "").lower())
    for i, p in enumerate(out):
        if (p["objectId"].lower(), (p.get("applicationId") or "").lower()) != key:
            continue
        perms = {cat: list(p["permissions"].get(cat, [])) for cat in PERMISSIONS}
        for cat in PERMISSIONS:
            given = new["permissions"].get(cat, [])
            if kind == "add":
                perms[cat] += [v for v in given if v not in perms[cat]]
            elif kind == "replace":
                perms[cat] = list(given)
            else:
                drop = {v.lower() for v in given}
                perms[cat] = [v for v in perms[cat] if v.lower() not in drop]
        if kind == "remove" and not any(perms.values()):
            del out[i]
        else:
            out[i] = {**p, "permissions": perms}
        return out
    if kind != "remove":
        out.append(new)
    if len(out) > MAX_POLICIES:
        raise bad_request(f"The number of access policies exceeds the limit of {MAX_POLICIES}.")
    return out
