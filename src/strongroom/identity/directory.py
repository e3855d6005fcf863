"""The tenant and its principals: app registrations (service principals) and user-assigned managed identities.

Client secrets are stored only as SHA-256 digests: they are 40+ random
characters, so a fast hash is enough and keeps the hot token path cheap.
Certificates are stored as their public DER bytes and thumbprints; the private
key never reaches the server.

Keys in storage (all behind the barrier):
  identity/principals/{clientId}          the principal
  identity/objects/{objectId}             -> clientId (principalId / oid lookup)
  identity/apps/{applicationObjectId}     -> clientId (Graph's application id lookup)
  identity/mi/{rg}/{name}                 -> clientId (ARM resource lookup, lower-cased)
  identity/resource-groups/{rg}           resource groups, created implicitly by `-g`
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from strongroom.barrier import SealedStore, records
from strongroom.errors import ServiceError
from strongroom.util.armnames import resource_group_problem
from strongroom.util.clock import now

TENANT_KEY = "identity/tenant"
_PRINCIPALS = "identity/principals/"
_MI_INDEX = "identity/mi/"
_RESOURCE_GROUPS = "identity/resource-groups/"
MI_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
DEFAULT_LOCATION = "local"  # a resource group's location when it was created implicitly by `-g`

# ARM's rules for user-assigned identity names and resource group names.
_MI_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,127}\Z")


def _check_resource_group_name(name: str) -> None:
    problem = resource_group_problem(name)
    if problem is not None:
        raise DirectoryError(400, "InvalidResourceGroupName", problem)


class DirectoryError(ServiceError):
    """A directory operation was refused; `status` and `code` follow ARM's (or Graph's) conventions."""

    code: str

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message)


@dataclass
class Tenant:
    tenant_id: str
    subscription_id: str
    admin_object_id: str


@dataclass
class Principal:
    """A service principal: `client_id` is Entra's appId, `object_id` its oid (principalId).

    `kind` is "ServicePrincipal" for app registrations (and the bootstrap admin)
    or "ManagedIdentity" for user-assigned managed identities, whose Azure
    resource id is `resource_id`. An app registration and its service principal
    are one record here: `app_object_id` is the application object's id (Graph's
    /applications/{id}), `object_id` the service principal's.
    """

    client_id: str
    object_id: str
    display_name: str
    secret_hashes: list[dict[str, Any]] = field(default_factory=list)
    created: int = 0
    kind: str = "ServicePrincipal"
    resource_id: str | None = None
    app_object_id: str | None = None
    certificates: list[dict[str, Any]] = field(default_factory=list)
    resource_group: str | None = None
    name: str | None = None
    location: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def is_managed_identity(self) -> bool:
        return self.kind == "ManagedIdentity"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _principal_key(client_id: str) -> str:
    return f"{_PRINCIPALS}{client_id.lower()}"


def _object_index_key(object_id: str) -> str:
    """Index from object id (principalId) to client id, so either finds the principal."""
    return f"identity/objects/{object_id.lower()}"


def _app_index_key(app_object_id: str) -> str:
    return f"identity/apps/{app_object_id.lower()}"


def _mi_index_key(resource_group: str, name: str) -> str:
    return f"{_MI_INDEX}{resource_group.lower()}/{name.lower()}"


def new_client_secret() -> str:
    # Entra's client secrets are 40 characters; the "~" marks ours as strongroom-made. Never a leading
    # "-": `az login --password -abc...` (and most CLIs) would read the secret as an option.
    while True:
        secret = secrets.token_urlsafe(30) + "~SR"
        if not secret.startswith("-"):
            return secret


def managed_identity_id(subscription_id: str, resource_group: str, name: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/{MI_TYPE}/{name}"


def password_credential(secret: str, display_name: str | None, end: int | None) -> dict[str, Any]:
    """The stored form of a client secret: its digest and Graph's metadata, never the value."""
    return {
        "keyId": str(uuid.uuid4()),
        "hash": _digest(secret),
        "hint": secret[:3],
        "displayName": display_name,
        "start": now(),
        "end": end,
    }


class Directory:
    def __init__(self, store: SealedStore) -> None:
        self.store = store

    # -- tenant --------------------------------------------------------------

    def tenant(self) -> Tenant | None:
        rec = records.load(self.store, TENANT_KEY)
        return None if rec is None else Tenant(**rec)

    def bootstrap(self, display_name: str = "strongroom-admin") -> tuple[Tenant, Principal, str]:
        """Create the tenant and its admin principal; returns the admin's secret once."""
        secret = new_client_secret()
        admin = Principal(
            client_id=str(uuid.uuid4()),
            object_id=str(uuid.uuid4()),
            display_name=display_name,
            secret_hashes=[{"keyId": str(uuid.uuid4()), "hash": _digest(secret), "hint": secret[:3]}],
            created=now(),
        )
        tenant = Tenant(tenant_id=str(uuid.uuid4()), subscription_id=str(uuid.uuid4()), admin_object_id=admin.object_id)
        self.store.write({TENANT_KEY: records.dump(asdict(tenant)), **self._principal_writes(admin)})
        return tenant, admin, secret

    # -- principals ----------------------------------------------------------

    def _principal_writes(self, principal: Principal) -> dict[str, bytes | None]:
        writes: dict[str, bytes | None] = {
            _principal_key(principal.client_id): records.dump(asdict(principal)),
            _object_index_key(principal.object_id): principal.client_id.encode(),
        }
        if principal.app_object_id:
            writes[_app_index_key(principal.app_object_id)] = principal.client_id.encode()
        if principal.is_managed_identity and principal.resource_group and principal.name:
            writes[_mi_index_key(principal.resource_group, principal.name)] = principal.client_id.encode()
        return writes

    def save(self, principal: Principal) -> None:
        self.store.write(self._principal_writes(principal))

    def remove(self, principal: Principal, extra: dict[str, bytes | None] | None = None) -> None:
        """Delete the principal and its indexes (plus `extra` writes, e.g. its federated credentials) atomically."""
        writes: dict[str, bytes | None] = {k: None for k in self._principal_writes(principal)}
        writes.update(extra or {})
        self.store.write(writes)

    def find(self, identifier: str) -> Principal | None:
        """The principal whose client id (appId) or object id (principalId) is `identifier`."""
        found = self.principal(identifier)
        if found is not None:
            return found
        client_id = self.store.get(_object_index_key(identifier))
        return None if client_id is None else self.principal(client_id.decode())

    def principal(self, client_id: str) -> Principal | None:
        if not client_id or "/" in client_id:
            return None
        rec = records.load(self.store, _principal_key(client_id))
        return None if rec is None else Principal(**rec)

    def principals(self) -> list[Principal]:
        return [Principal(**records.json_load(raw)) for _, raw in self.store.scan(_PRINCIPALS)]

    def application(self, identifier: str) -> Principal | None:
        """An app registration by appId or application object id (as `az ad app --id` accepts)."""
        found = self.principal(identifier)
        if found is None:
            client_id = self.store.get(_app_index_key(identifier)) if "/" not in identifier else None
            found = None if client_id is None else self.principal(client_id.decode())
        return found if found is not None and found.app_object_id else None

    # -- client secrets and certificates -------------------------------------

    def match_secret(self, principal: Principal, secret: str) -> dict[str, Any] | None:
        """The password credential `secret` belongs to, expired or not (the caller decides what expiry means)."""
        digest = _digest(secret)
        for cred in principal.secret_hashes:
            if hmac.compare_digest(digest, cred["hash"]):
                return cred
        return None

    def check_secret(self, principal: Principal, secret: str) -> bool:
        cred = self.match_secret(principal, secret)
        return cred is not None and (cred.get("end") is None or cred["end"] > now())

    def certificate(self, principal: Principal, *, sha1: str | None = None, sha256: str | None = None) -> dict[str, Any] | None:
        """The registered certificate with this thumbprint (hex, any case)."""
        for cert in principal.certificates:
            if sha256 and cert["thumbprintSha256"].lower() == sha256.lower():
                return cert
            if sha1 and cert["thumbprint"].lower() == sha1.lower():
                return cert
        return None

    # -- app registrations ---------------------------------------------------

    def create_application(self, display_name: str) -> Principal:
        app = Principal(
            client_id=str(uuid.uuid4()),
            object_id=str(uuid.uuid4()),
            app_object_id=str(uuid.uuid4()),
            display_name=display_name,
            created=now(),
        )
        self.save(app)
        return app

    def applications(self) -> list[Principal]:
        return [p for p in self.principals() if p.app_object_id]

    # -- resource groups and managed identities -------------------------------

    def ensure_resource_group(self, name: str, location: str = DEFAULT_LOCATION) -> dict[str, Any]:
        """Resource groups exist once something names them (`-g rg`); the first spelling is kept."""
        _check_resource_group_name(name)
        key = _RESOURCE_GROUPS + name.lower()
        rec = records.load(self.store, key)
        if rec is None:
            rec = {"name": name, "created": now(), "location": location, "tags": {}}
            self.store.write({key: records.dump(rec)})
        return rec

    def put_resource_group(self, name: str, location: str, tags: dict[str, str] | None) -> tuple[dict[str, Any], bool]:
        """ARM's PUT of a resource group: create it, or update its tags; its location never changes (as in Azure)."""
        _check_resource_group_name(name)
        key = _RESOURCE_GROUPS + name.lower()
        rec = records.load(self.store, key)
        created = rec is None
        if rec is None:
            rec = {"name": name, "created": now(), "location": location, "tags": tags or {}}
        else:
            if location.replace(" ", "").lower() != str(rec.get("location", DEFAULT_LOCATION)).replace(" ", "").lower():
                raise DirectoryError(
                    409,
                    "InvalidResourceGroupLocation",
                    f"Invalid resource group location '{location}'. The Resource group already exists in location "
                    f"'{rec.get('location', DEFAULT_LOCATION)}'.",
                )
            if tags is not None:
                rec["tags"] = tags
        self.store.write({key: records.dump(rec)})
        return rec, created

    def delete_resource_group(self, name: str) -> None:
        """Remove the group's record; the caller has checked that nothing lives in it."""
        if self.resource_group(name) is not None:
            self.store.write({_RESOURCE_GROUPS + name.lower(): None})

    def resource_group(self, name: str) -> dict[str, Any] | None:
        return records.load(self.store, _RESOURCE_GROUPS + name.lower()) if "/" not in name else None

    def resource_groups(self) -> list[dict[str, Any]]:
        return [records.json_load(raw) for _, raw in self.store.scan(_RESOURCE_GROUPS)]

    def managed_identity(self, resource_group: str, name: str) -> Principal | None:
        if "/" in resource_group or "/" in name:
            return None
        client_id = self.store.get(_mi_index_key(resource_group, name))
        return None if client_id is None else self.principal(client_id.decode())

    def managed_identities(self, resource_group: str | None = None) -> list[Principal]:
        prefix = _MI_INDEX + (f"{resource_group.lower()}/" if resource_group else "")
        found = (self.principal(raw.decode()) for _, raw in self.store.scan(prefix))
        return [p for p in found if p is not None]

    def put_managed_identity(
        self,
        subscription_id: str,
        resource_group: str,
        name: str,
        location: str,
        tags: dict[str, str] | None,
    ) -> tuple[Principal, bool]:
        """Create the identity, or update its tags if it exists (ARM PUT); returns (identity, created)."""
        if not _MI_NAME.match(name):
            raise DirectoryError(
                400,
                "InvalidResourceName",
                f"Resource name {name} is invalid. The name can be between 3 and 128 characters long and can contain "
                "only letters, numbers, hyphens and underscores, and must start with a letter or a number.",
            )
        rg = self.ensure_resource_group(resource_group)["name"]
        existing = self.managed_identity(rg, name)
        if existing is not None:
            if tags is not None:
                existing.tags = tags
            self.save(existing)
            return existing, False
        identity = Principal(
            client_id=str(uuid.uuid4()),
            object_id=str(uuid.uuid4()),
            display_name=name,
            created=now(),
            kind="ManagedIdentity",
            resource_id=managed_identity_id(subscription_id, rg, name),
            resource_group=rg,
            name=name,
            location=location,
            tags=tags or {},
        )
        self.save(identity)
        return identity, True

    def managed_identity_by_resource_id(self, resource_id: str) -> Principal | None:
        """`/subscriptions/../resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}`."""
        parts = resource_id.strip("/").split("/")
        if len(parts) != 8 or parts[2].lower() != "resourcegroups" or "/".join(parts[5:7]).lower() != MI_TYPE.lower():
            return None
        found = self.managed_identity(parts[3], parts[7])
        return found if found is not None and found.resource_id and found.resource_id.lower() == resource_id.lower() else None
