"""The audit hook: handlers note what they learn about a request in its ASGI scope.

A request is audited when its route's guard (`server/guards.py`) calls `begin()`
with the declared operation, before it authenticates the caller (so a 401 is
recorded too), then `caller()` once the token is verified; the handler adds what
only it knows: `refine()` (a more precise resource), `decision()` once
authorization has decided. The audit middleware turns these
facts, the status and the timings into one AuditEvent when the response starts.
Only verified token claims are kept, never the token itself.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

SCOPE_KEY = "strongroom.audit"

# Claims worth recording, as Azure records them in identity.claim.
CALLER_CLAIMS = ("oid", "appid", "tid", "idtyp", "xms_mirid")


def facts(scope: MutableMapping[str, Any]) -> dict[str, Any]:
    """The request's fact dict, created on first use."""
    found = scope.get(SCOPE_KEY)
    if found is None:
        found = scope[SCOPE_KEY] = {}
    return found


def begin(
    scope: MutableMapping[str, Any],
    operation: str,
    *,
    resource_id: str | None,
    object_url: str | None = None,
    vault: str | None = None,
) -> dict[str, Any]:
    """Mark the request as the audited operation `operation` (e.g. "SecretGet")."""
    f = facts(scope)
    f["operationName"] = operation
    f["resourceId"] = resource_id
    if object_url is not None:
        f["id"] = object_url
    if vault is not None:
        f["vault"] = vault
    return f


def refine(
    scope: MutableMapping[str, Any],
    *,
    resource_id: str | None = None,
    object_url: str | None = None,
    vault: str | None = None,
) -> None:
    """Name the resource more precisely than the route's guard could (it records the operation and the path)."""
    f = facts(scope)
    if resource_id is not None:
        f["resourceId"] = resource_id
    if object_url is not None:
        f["id"] = object_url
    if vault is not None:
        f["vault"] = vault


def operation(scope: MutableMapping[str, Any], name: str) -> None:
    """Rename the operation once the handler knows better (e.g. a PUT that recovers a vault)."""
    facts(scope)["operationName"] = name


def caller(scope: MutableMapping[str, Any], claims: dict[str, Any]) -> None:
    """Record who called, from the verified token's claims."""
    facts(scope)["caller"] = {k: claims[k] for k in CALLER_CLAIMS if isinstance(claims.get(k), str)}


def decision(
    scope: MutableMapping[str, Any], *, allowed: bool, assignment_id: str | None, rbac: bool = True
) -> None:
    """Record the authorization decision: RBAC vaults report isRbacAuthorized, access-policy vaults isAccessPolicyMatch."""
    f = facts(scope)
    if rbac:
        f["isRbacAuthorized"] = allowed
    else:
        f["isAccessPolicyMatch"] = allowed
    f["appliedAssignmentId"] = assignment_id
