"""The tenant and its principals (service principals with client secrets).

Client secrets are stored only as SHA-256 digests: they are 40+ random
characters, so a fast hash is enough and keeps the hot token path cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from strongroom.barrier import SealedStore
from strongroom.keyvault import records
from strongroom.util.clock import now

TENANT_KEY = "identity/tenant"


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
    resource id is `resource_id`.
    """

    client_id: str
    object_id: str
    display_name: str
    secret_hashes: list[dict[str, Any]] = field(default_factory=list)
    created: int = 0
    kind: str = "ServicePrincipal"
    resource_id: str | None = None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _principal_key(client_id: str) -> str:
    return f"identity/principals/{client_id.lower()}"


def _object_index_key(object_id: str) -> str:
    """Index from object id (principalId) to client id, so either finds the principal."""
    return f"identity/objects/{object_id.lower()}"


def new_client_secret() -> str:
    # Entra's client secrets are 40 characters; the "~" marks ours as strongroom-made.
    return secrets.token_urlsafe(30) + "~SR"


class Directory:
    def __init__(self, store: SealedStore) -> None:
        self.store = store

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

    def _principal_writes(self, principal: Principal) -> dict[str, bytes | None]:
        return {
            _principal_key(principal.client_id): records.dump(asdict(principal)),
            _object_index_key(principal.object_id): principal.client_id.encode(),
        }

    def save(self, principal: Principal) -> None:
        self.store.write(self._principal_writes(principal))

    def remove(self, principal: Principal) -> None:
        self.store.write({_principal_key(principal.client_id): None, _object_index_key(principal.object_id): None})

    def find(self, identifier: str) -> Principal | None:
        """The principal whose client id (appId) or object id (principalId) is `identifier`."""
        found = self.principal(identifier)
        if found is not None:
            return found
        client_id = self.store.get(_object_index_key(identifier))
        return None if client_id is None else self.principal(client_id.decode())

    def principal(self, client_id: str) -> Principal | None:
        rec = records.load(self.store, _principal_key(client_id))
        return None if rec is None else Principal(**rec)

    def check_secret(self, principal: Principal, secret: str) -> bool:
        digest = _digest(secret)
        return any(hmac.compare_digest(digest, s["hash"]) for s in principal.secret_hashes)
