"""Role assignments and custom role definitions: storage and the in-memory index.

Records live behind the barrier under `authz/assignments/{guid}` and
`authz/roles/{guid}`. Every change rewrites `authz/generation` in the same
atomic batch. Each process keeps a snapshot (assignments grouped by principal,
roles by GUID) and, before using it, reads the *sealed bytes* of the
generation record: one primary-key read, no decryption. A change made by any
worker or process reseals that record (fresh nonce, so different bytes), the
next request anywhere sees the difference and rebuilds the snapshot. So a
removed assignment denies the very next request in every worker; the price is
one SQLite point read per authorization (a few microseconds).
"""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from strongroom.authz.roles import BUILTIN_ROLES, RoleDefinition, guid_of, normalize_role_name, role_definition_id
from strongroom.authz.scopes import contains
from strongroom.barrier import SealedStore, records

ASSIGNMENTS = "authz/assignments/"
ROLES = "authz/roles/"
GENERATION = "authz/generation"
ROLE_ASSIGNMENTS = "providers/Microsoft.Authorization/roleAssignments"


def arm_time() -> str:
    """ARM's timestamp spelling: 2026-01-01T12:00:00.0000000Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


@dataclass
class RoleAssignment:
    name: str  # the GUID
    scope: str
    role_definition_guid: str
    principal_id: str
    principal_type: str = "ServicePrincipal"
    description: str | None = None
    condition: str | None = None
    condition_version: str | None = None
    created_on: str = ""
    updated_on: str = ""
    created_by: str | None = None
    updated_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.scope}/{ROLE_ASSIGNMENTS}/{self.name}"

    def role_definition_id(self, subscription_id: str) -> str:
        return role_definition_id(subscription_id, self.role_definition_guid)

    def to_arm(self, subscription_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "Microsoft.Authorization/roleAssignments",
            "name": self.name,
            "properties": {
                "roleDefinitionId": self.role_definition_id(subscription_id),
                "principalId": self.principal_id,
                "principalType": self.principal_type,
                "scope": self.scope,
                "condition": self.condition,
                "conditionVersion": self.condition_version,
                "createdOn": self.created_on,
                "updatedOn": self.updated_on,
                "createdBy": self.created_by,
                "updatedBy": self.updated_by,
                "delegatedManagedIdentityResourceId": None,
                "description": self.description,
            },
        }


@dataclass(frozen=True)
class Grant:
    """One assignment as evaluation sees it."""

    assignment: RoleAssignment
    scope_lower: str
    role: RoleDefinition | None  # None: the role definition was deleted (orphaned assignment)


@dataclass(frozen=True)
class Snapshot:
    token: bytes | None
    assignments: dict[str, RoleAssignment]
    by_principal: dict[str, tuple[Grant, ...]]
    roles: dict[str, RoleDefinition]

    def grants_for(self, principal_id: str) -> tuple[Grant, ...]:
        return self.by_principal.get(principal_id.lower(), ())

    def role(self, guid: str) -> RoleDefinition | None:
        return self.roles.get(guid.lower())

    def role_by_name(self, role_name: str) -> RoleDefinition | None:
        """The role whose name equals `role_name` after normalisation (built-in roles included)."""
        wanted = normalize_role_name(role_name)
        return next((r for r in self.roles.values() if normalize_role_name(r.role_name) == wanted), None)

    def applying_to(self, resource_id: str) -> list[Grant]:
        """Every grant whose scope contains `resource_id` (for access reviews)."""
        return [g for grants in self.by_principal.values() for g in grants if contains(g.scope_lower, resource_id)]


def _build(token: bytes | None, assignments: list[RoleAssignment], custom: list[RoleDefinition]) -> Snapshot:
    roles = {r.name: r for r in BUILTIN_ROLES}
    roles.update({r.name: r for r in custom})
    by_principal: dict[str, list[Grant]] = {}
    for a in assignments:
        by_principal.setdefault(a.principal_id.lower(), []).append(
            Grant(a, a.scope.lower().rstrip("/"), roles.get(a.role_definition_guid.lower()))
        )
    return Snapshot(
        token,
        {a.name: a for a in assignments},
        {k: tuple(v) for k, v in by_principal.items()},
        roles,
    )


class AuthzStore:
    def __init__(self, store: SealedStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._checked: tuple[object, Snapshot] | None = None  # (the store's change token, the snapshot valid under it)

    # -- reading --------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current index; rebuilt when any process changed assignments or roles.

        While the request's change token (`SealedStore.change_token`) is the one the
        snapshot was last checked under, nothing was committed anywhere since: no read.
        Otherwise one unopened read of the generation record tells whether to rebuild.
        """
        changes = self.store.change_token()
        checked = self._checked
        if changes is not None and checked is not None and checked[0] == changes:
            return checked[1]
        snap = self._current()
        if changes is not None:
            self._checked = (changes, snap)
        return snap

    def _current(self) -> Snapshot:
        token = self.store.fingerprint(GENERATION)
        snap = self._snapshot
        if snap is not None and snap.token == token:
            return snap
        with self._lock:
            snap = self._snapshot
            if snap is not None and snap.token == token:
                return snap
            assignments = [RoleAssignment(**records.json_load(raw)) for _, raw in self.store.scan(ASSIGNMENTS)]
            custom = [RoleDefinition.from_record(records.json_load(raw)) for _, raw in self.store.scan(ROLES)]
            snap = _build(token, assignments, custom)
            self._snapshot = snap
            return snap

    # -- writing --------------------------------------------------------------

    def _generation_write(self) -> dict[str, bytes | None]:
        return {GENERATION: os.urandom(16).hex().encode()}

    def assignment_writes(self, *put: RoleAssignment, delete: tuple[RoleAssignment, ...] = ()) -> dict[str, bytes | None]:
        """The batch that stores/removes assignments (and bumps the generation); for callers that batch it with more."""
        changes: dict[str, bytes | None] = {}
        for a in delete:
            changes[ASSIGNMENTS + a.name] = None
        for a in put:
            changes[ASSIGNMENTS + a.name] = records.dump(asdict(a))
        return {**changes, **self._generation_write()}

    def _commit(self, changes: dict[str, bytes | None]) -> None:
        self.store.write(changes)
        self._snapshot = self._checked = None  # this process sees its own change at once

    def put_assignment(self, a: RoleAssignment) -> None:
        self._commit(self.assignment_writes(a))

    def delete_assignment(self, a: RoleAssignment) -> None:
        self._commit(self.assignment_writes(delete=(a,)))

    def put_role(self, role: RoleDefinition) -> None:
        self._commit({ROLES + role.name: records.dump(role.to_record()), **self._generation_write()})

    def delete_role(self, role: RoleDefinition) -> None:
        self._commit({ROLES + role.name: None, **self._generation_write()})

    def invalidate(self) -> None:
        self._snapshot = self._checked = None

    # -- helpers ----------------------------------------------------------------

    def at_or_below(self, scope: str) -> list[RoleAssignment]:
        s = scope.lower().rstrip("/")
        return [a for a in self.snapshot().assignments.values() if contains(s, a.scope)]

    def remove_at_or_below(self, scope: str) -> int:
        """Delete every assignment at or below `scope` (a purged vault's leftovers)."""
        stale = self.at_or_below(scope)
        if stale:
            self._commit(self.assignment_writes(delete=tuple(stale)))
        return len(stale)


def new_assignment(scope: str, role_guid: str, principal_id: str, principal_type: str, created_by: str | None,
                   name: str | None = None, description: str | None = None, condition: str | None = None,
                   condition_version: str | None = None) -> RoleAssignment:
    t = arm_time()
    return RoleAssignment(
        name=(name or str(uuid.uuid4())).lower(),
        scope=scope,
        role_definition_guid=guid_of(role_guid),
        principal_id=principal_id.lower(),
        principal_type=principal_type,
        description=description,
        condition=condition,
        condition_version=condition_version,
        created_on=t,
        updated_on=t,
        created_by=created_by,
        updated_by=created_by,
    )

